"""A table's unwind information, built by the formats its arch's record
lists (`Arch.unwind`, spec `unwind`)."""

from __future__ import annotations

from dataclasses import dataclass

from asmgen.arches.model import UnwindError, UnwindFormat
from asmgen.spec import Spec

__all__ = ["Unwind", "UnwindError", "resolver_unwind", "trampoline_unwind"]


@dataclass(frozen=True)
class Unwind:
    """A table's unwind information in the spec's format (`kind`): the
    resolver's, and one trampoline's where the format covers trampolines.
    build.pipeline computes it once; the emitters format it."""

    kind: str
    resolver: object
    trampoline: object | None = None


def _format(spec: Spec) -> UnwindFormat:
    return dict(spec.arch_info.unwind)[spec.unwind]


def resolver_unwind(spec: Spec, code: bytes):
    """The spec's unwind information for its resolver `code`; UnwindError
    when the code has no frame the format describes."""
    return _format(spec).resolver(code)


def trampoline_unwind(spec: Spec, code: bytes):
    """The same for one trampoline, or None where the format covers none;
    ValueError when the trampoline cannot be described."""
    build = _format(spec).trampoline
    return None if build is None else build(code)
