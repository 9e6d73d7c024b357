"""The contract checks of `asmgen verify`, named once.

A spec's `expected_violations` names checks from here; verify runs them and
reports them in this order.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Check:
    name: str
    short: str  # column heading in verify's table
    proves: str


CHECKS: dict[str, Check] = {
    check.name: check
    for check in (
        Check("ctx_arg", "ctx", "ctx arrives where the convention puts the first argument"),
        Check(
            "trampoline_arg",
            "tramp",
            "the trampoline's address arrives as the second argument",
        ),
        Check("stack_align", "align", "sp is aligned to call.stack_align at the call"),
        Check(
            "shadow_space",
            "home",
            "the resolver neither keeps live data in nor reads the callee's home area",
        ),
        Check("int_args", "iargs", "integer argument registers survive to the landing"),
        Check(
            "fp_args",
            "fargs",
            "FP/vector argument registers survive to the landing (full width)",
        ),
        Check("callee_saved", "saved", "callee-saved registers survive to the landing"),
        Check(
            "caller_conventions",
            "callers",
            "every register a served caller convention (`serves`) passes or keeps reaches "
            "the landing",
        ),
        Check("stack_pointer", "sp", "sp at the landing equals sp at the stub"),
        Check("return_address", "ret", "the caller's return address survives to the landing"),
        Check(
            "fp_control",
            "fpctl",
            "FP control state (call.fp_control) survives to the landing",
        ),
        Check("landing_pc", "pc", "pc reaches the address the re-entry function returned"),
        Check(
            "shadow_stack",
            "shstk",
            "every return returns to the address its call pushed (CET shadow stack, Arm "
            "GCS), and the landing's own return pops the caller's call",
        ),
        Check(
            "convention",
            "conv",
            "compiled code for the target keeps the convention file's facts",
        ),
        Check(
            "native",
            "native",
            "the real CPU runs trampoline -> resolver -> C re-entry -> landing",
        ),
        Check(
            "vector_width",
            "vwide",
            "native: FP argument registers survive at full YMM/ZMM width",
        ),
        Check(
            "frame_align",
            "frame*",
            "static: the frame computed from the spec keeps the call aligned",
        ),
    )
}
