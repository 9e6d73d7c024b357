"""The hypothesis settings every fuzz test shares: reproducible, no deadline."""

from __future__ import annotations

from hypothesis import HealthCheck, settings


def fuzz_settings(examples: int) -> settings:
    # Derandomized, so a run fails or passes alike everywhere; no database, so
    # a run leaves nothing behind.
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
