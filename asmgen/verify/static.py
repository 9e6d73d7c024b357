"""Static checks: the frame computed from the spec against the call's
alignment, and the served caller conventions against what the spec saves.

No code runs.  They are the only checks for arches that unicorn cannot
emulate (no `emulator` in their record), and a cross-check for the others.
"""

from __future__ import annotations

from asmgen.spec.serving import beyond_contract, lost_registers
from asmgen.verify.model import FAIL, NA, PASS, CheckResult, Finding, Subject


def frame_check(subject: Subject) -> CheckResult:
    frame = subject.frame
    if frame is None:
        why = "no spec describes this code's frame: stack_align runs it to check the alignment"
        return CheckResult("frame_align", NA, "static", [], why)
    size, align = frame.size_at_call, frame.align
    note = f"{size:#x} bytes from the aligned point to sp at the call; call.stack_align {align:#x}"
    if size % align == 0:
        return CheckResult("frame_align", PASS, "static", [], note)
    finding = Finding(
        "frame size at the call",
        f"a multiple of {align:#x}",
        f"{size:#x} (sp off by {size % align:#x})",
    )
    return CheckResult("frame_align", FAIL, "static", [finding], note)


def callers_check(subject: Subject) -> CheckResult:
    """What the spec alone says of each served caller convention (serving.py):
    a register it needs that the resolver neither saves nor leaves to the
    re-entry function's callee-saved ones."""
    spec = subject.spec
    if not any(beyond_contract(spec, c) for c in spec.served):
        why = "the served conventions pass and keep nothing beyond the contract"
        return CheckResult("caller_conventions", NA, "static", [], why)
    found = [
        Finding(f"{reg} broke {caller.name}", f"kept by {caller.name}", "not saved, not kept by C")
        for caller in spec.served
        for reg in lost_registers(spec, caller)
    ]
    return CheckResult("caller_conventions", FAIL if found else PASS, "static", found)
