"""Static frame check: the frame computed from the spec against the call's alignment.

No code runs.  It is the only check for arches that unicorn cannot emulate
(LoongArch64), and a cross-check for the others.
"""

from __future__ import annotations

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
