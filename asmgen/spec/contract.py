"""Contract checks: what `asmgen verify` would find broken in the table, refused
before anything is built unless the spec declares it."""

from __future__ import annotations

from pathlib import Path

from asmgen.errors import AsmgenError
from asmgen.spec.lifetimes import check_lifetimes
from asmgen.spec.schema import REENTRY_ARGS, Spec


def check_contract(spec: Spec, where: dict[tuple, int], path: Path) -> None:
    """What `asmgen verify` would find broken in the table: refused up front,
    unless the spec declares it (a table reproduced on purpose).  `asmgen
    review` skips these checks, to show what such an edit does."""
    arch = spec.arch_info
    declared = {v.check for v in spec.expected_violations}
    keeper = arch.frame_pointer
    if keeper and keeper not in spec.call.callee_saved:
        raise AsmgenError(
            f"call.callee_saved: lacks {keeper}, which the resolver's frame is addressed "
            "through after the re-entry call",
            path,
            where.get(("call", "callee_saved"), where.get(("call",))),
        )
    frame_align = spec.resolver.frame_align
    if frame_align and frame_align < spec.call.stack_align and "frame_align" not in declared:
        raise AsmgenError(
            f"resolver.frame_align: {frame_align:#x} is less than call.stack_align "
            f"({spec.call.stack_align:#x}), which misaligns the call",
            path,
            where.get(("resolver", "frame_align")),
            hint="only to reproduce a known-bad table, and then declare frame_align "
            "in expected_violations",
        )
    if (
        arch.frame_style == "store"
        and spec.call.entry_align < spec.call.stack_align
        and "stack_align" not in declared
    ):
        raise AsmgenError(
            f"call.incoming_align: a {arch.name} resolver does not realign its frame, so "
            "the stack must arrive aligned to call.stack_align",
            path,
            where.get(("call", "incoming_align")),
        )
    args = spec.call.int_args[:REENTRY_ARGS]
    if spec.resolver.scratch in args:
        raise AsmgenError(
            f"resolver.scratch: {spec.resolver.scratch} carries an argument of the "
            "re-entry call; pick another register",
            path,
            where.get(("resolver", "scratch")),
        )
    _check_preserved(spec, where, path)
    check_lifetimes(spec, where, path)


def _check_preserved(spec: Spec, where: dict[tuple, int], path: Path) -> None:
    """The resolver is invisible to the function it resolves: argument registers
    and callee-saved registers it uses must be saved and restored.  A spec that
    reproduces a table known to break this says so in expected_violations."""
    declared = {v.check for v in spec.expected_violations}
    call, resolver = spec.call, spec.resolver
    saved = set(resolver.saves) | set(resolver.fp_saves)
    if "int_args" not in declared:
        for i, name in enumerate(call.int_args):
            if name not in saved:
                raise AsmgenError(
                    f"call.int_args[{i}]: {name} is an argument register that resolver.saves "
                    "does not keep",
                    path,
                    where.get(("call", "int_args", i), where.get(("call", "int_args"))),
                    hint="add it to resolver.saves, or declare the fp_args/int_args "
                    "violation in expected_violations",
                )
    whole_state = resolver.vector_state.kind in ("fxsave", "fxsave64", "xsave64")
    if "fp_args" not in declared and not whole_state:
        for i, name in enumerate(call.fp_args):
            if name not in saved:
                raise AsmgenError(
                    f"call.fp_args[{i}]: {name} is an argument register that "
                    "resolver.fp_saves does not keep",
                    path,
                    where.get(("call", "fp_args", i), where.get(("call", "fp_args"))),
                )
    for name in call.result_regs:
        if name in call.callee_saved:
            raise AsmgenError(
                f"call.return_reg: {name} carries the result, so it cannot be callee-saved",
                path,
                where.get(("call", "return_reg")),
            )
    if "callee_saved" not in declared:
        for role in ("scratch", "temp", "landing"):
            name = getattr(resolver, role)
            if name in call.callee_saved and name not in saved:
                raise AsmgenError(
                    f"resolver.{role}: {name} is callee-saved but not in resolver.saves",
                    path,
                    where.get(("resolver", role)),
                )
