"""`asmgen review --verify`: the verify verdict of each side, so a review shows
which ABI contract checks a change makes pass or fail.

The code verified is the side's own table, trampolines and stubs (its
tables.json record, patched and linked by the same runtime code the generated
module carries); the contract is that side's spec.  A side without specs (a
bare tables.json) has no verdict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from asmgen.build.frame import compute_frame
from asmgen.build.patchkinds import ENCODERS
from asmgen.build.runtime import Field, PatchPoint, apply_patches
from asmgen.build.unitruntime import Unit, UnitField
from asmgen.build.units import UnitBlocks
from asmgen.spec import Spec


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


def _unit(record: dict) -> Unit:
    fields = tuple(
        UnitField(
            Field(f["offset"], f["size"], f["shift"], f["width"], f["kind"]),
            f["anchor"] if f["pc_relative"] else None,
            f["range"][0],
            f["range"][1],
            f["align"],
            "",
        )
        for f in record["fields"]
    )
    return Unit(bytes.fromhex(record["hex"]), record["target"], fields)


def _units(record: dict) -> UnitBlocks | None:
    """None for a record from before trampolines and stubs were generated."""
    if "trampoline" not in record or "stub" not in record:
        return None
    return UnitBlocks(
        _unit(record["trampoline"]),
        _unit(record["stub"]),
        record["stub"]["stub_to_pointer_max_displacement"],
        record["pointer_size"],
        record.get("endian", "little"),
    )


# verify's outcomes in review words: what the check found, and whether the spec declared it.
_WORDS = {
    "ok": "pass",
    "FAIL": "FAIL",
    "declared": "fail (declared)",
    "XPASS": "pass (XPASS: declared violation not found)",
    "n/a": "n/a",
}
FAILED = "FAIL"
# Checks in a reviewer's words: what a failing one means.
CHECK_WORDS = {
    "ctx_arg": "context argument",
    "trampoline_arg": "trampoline argument",
    "stack_align": "alignment",
    "shadow_space": "home area",
    "int_args": "integer arguments",
    "fp_args": "FP arguments",
    "callee_saved": "saved registers",
    "stack_pointer": "stack pointer",
    "return_address": "return address",
    "fp_control": "FP state",
    "landing_pc": "re-entry",
    "shadow_stack": "shadow stack",
    "convention": "convention facts",
    "native": "native run",
    "vector_width": "vector width",
    "frame_align": "frame alignment",
}

# Findings shown per failing method; the rest are counted.
SHOWN = 3


@dataclass(frozen=True)
class Verdict:
    """One side's `asmgen verify` outcome for one table."""

    outcomes: dict[str, str]  # check -> outcome, in review words
    # check -> what each failing method found, one text per method (failing checks only)
    details: dict[str, list[str]]
    about: str = ""  # what the code was verified against, and where it came from
    causes: dict[str, str] = field(default_factory=dict)  # check -> its cause, read from the code


def _detail(outcome) -> list[str]:
    parts = []
    for run in outcome.runs or [outcome.result]:
        if run.status != "fail":
            continue
        found = [f"{f.what}: expected {f.expected}, got {f.got}" for f in run.findings[:SHOWN]]
        if len(run.findings) > SHOWN:
            found.append(f"{len(run.findings) - SHOWN} more")
        text = f"{run.method}: " + "; ".join(found)
        parts.append(text + (f" ({run.note})" if run.note else ""))
    return parts


def from_report(report, about: str = "", causes: dict[str, str] | None = None) -> Verdict:
    """A verify AbiReport in review words."""
    outcomes = {check: _WORDS[o.outcome] for check, o in report.outcomes.items()}
    details = {
        check: _detail(o) for check, o in report.outcomes.items() if o.outcome not in ("ok", "n/a")
    }
    return Verdict(outcomes, details, about, causes or {})


def verdict(record: dict, spec: Spec, spec_path: Path, source: str) -> Verdict:
    """The outcome of each check, as `asmgen verify` finds it for this table and spec."""
    from asmgen.verify.model import Subject
    from asmgen.verify.runner import verify_subject

    code = bytes.fromhex(record["hex"])
    points = _patch_points(record)
    order = record.get("endian", "little")

    def instantiate(fn_addr: int, ctx_addr: int) -> bytes:
        values = {"ReentryFnAddr": fn_addr, "ReentryCtxAddr": ctx_addr}
        return apply_patches(code, points, values, order, ENCODERS)

    frame = compute_frame(spec)
    subject = Subject(spec, spec_path, frame, instantiate, source, _units(record))
    return from_report(verify_subject(subject))
