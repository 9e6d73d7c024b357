"""`asmgen review --verify`: the verify verdict of each side, so a review shows
which ABI contract checks a change makes pass or fail.

The code verified is the side's own table (its tables.json record, patched by
the same runtime code the generated module carries); the contract is that
side's spec.  A side without specs (a bare tables.json) has no verdict.
"""

from __future__ import annotations

from pathlib import Path

from .frame import compute_frame
from .patchkinds import ENCODERS
from .runtime import Field, PatchPoint, apply_patches
from .spec import Spec


def _patch_points(record: dict) -> tuple[PatchPoint, ...]:
    points = []
    for name, patch in record.get("patches", {}).items():
        fields = tuple(
            Field(
                f["offset"],
                f["size"],
                f["shift"],
                f["bits"],
                f["kind"],
                f.get("base", 0),
                f.get("whole_word", False),
            )
            for f in patch["fields"]
        )
        points.append(PatchPoint(name, patch["offset"], patch["size"], patch["kind"], fields))
    return tuple(points)


# verify's outcomes in review words: what the check found, and whether the spec declared it.
_WORDS = {
    "ok": "pass",
    "FAIL": "FAIL",
    "declared": "fail (declared)",
    "XPASS": "pass (XPASS: declared violation not found)",
    "n/a": "n/a",
}


def verdict(record: dict, spec: Spec, spec_path: Path, source: str) -> dict[str, str]:
    """check name -> outcome, as `asmgen verify` finds it for this table and spec."""
    from .verify.model import Subject
    from .verify.runner import verify_subject

    code = bytes.fromhex(record["hex"])
    points = _patch_points(record)
    order = record.get("endian", "little")

    def instantiate(fn_addr: int, ctx_addr: int) -> bytes:
        values = {"ReentryFnAddr": fn_addr, "ReentryCtxAddr": ctx_addr}
        return apply_patches(code, points, values, order, ENCODERS)

    subject = Subject(spec, spec_path, compute_frame(spec), instantiate, source)
    report = verify_subject(subject)
    return {check: _WORDS[outcome.outcome] for check, outcome in report.outcomes.items()}
