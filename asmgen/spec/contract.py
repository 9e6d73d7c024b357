"""Contract checks: where the spec's resolver would break its convention.

Each one is refused before anything is built, unless the spec declares that
deviation by name (`deviations:`, convention.DEVIATIONS): a table reproduced
on purpose.  A declared deviation the spec does not make is refused too, so
declarations stay true.  `asmgen review` skips these checks, to show what such
an edit does.
"""

from __future__ import annotations

from pathlib import Path

from asmgen.errors import AsmgenError
from asmgen.spec.lifetimes import check_lifetimes
from asmgen.spec.schema import REENTRY_ARGS, Spec
from asmgen.spec.serving import lost_registers


def check_contract(spec: Spec, where: dict[tuple, int], path: Path) -> None:
    arch = spec.arch_info
    keeper = arch.frame_pointer
    if keeper and keeper not in spec.call.callee_saved:
        raise AsmgenError(
            f"convention: {spec.convention} does not make {keeper} callee-saved, and the "
            "resolver's frame is addressed through it after the re-entry call",
            path,
            where.get(("convention",)),
        )
    args = spec.call.int_args[:REENTRY_ARGS]
    if spec.resolver.scratch in args:
        raise AsmgenError(
            f"resolver.scratch: {spec.resolver.scratch} carries an argument of the "
            "re-entry call; pick another register",
            path,
            where.get(("resolver", "scratch")),
        )
    # Roles the templates cannot give a register, before what the resolver keeps.
    check_lifetimes(spec, where, path)
    if len(spec.call.int_args) < REENTRY_ARGS and spec.home_reserved != spec.call.shadow_space:
        raise AsmgenError(
            f"resolver.shadow_space: the re-entry call passes arguments on the stack, "
            f"{spec.call.shadow_space:#x} bytes above sp ({spec.convention}); another home "
            "area would move them",
            path,
            where.get(("resolver", "shadow_space")),
        )
    if arch.frame_style == "store" and spec.call.entry_align < spec.call.stack_align:
        raise AsmgenError(
            f"resolver.incoming_align: a {arch.name} resolver does not realign its frame, so "
            f"it relies on {spec.convention}'s {spec.call.stack_align:#x}; remove it",
            path,
            where.get(("resolver", "incoming_align")),
        )
    broken = _deviations(spec, where)
    declared = {d.field: i for i, d in enumerate(spec.deviations)}
    for name, (message, line) in broken.items():
        if name not in declared:
            raise AsmgenError(
                message,
                path,
                line,
                hint=f"fix the resolver, or declare a `{name}` deviation (deviations:) "
                "to reproduce a known-bad table",
            )
    for name, index in declared.items():
        if name not in broken:
            raise AsmgenError(
                f"deviations[{index}]: declares {name}, but the resolver keeps "
                f"{spec.convention}'s {name}; remove the declaration",
                path,
                where.get(("deviations", index), where.get(("deviations",))),
            )
    _check_serves(spec, where, path)


def _deviations(spec: Spec, where: dict[tuple, int]) -> dict[str, tuple[str, int | None]]:
    """Each convention fact the resolver breaks: name -> (message, line)."""
    call, resolver = spec.call, spec.resolver
    conv = spec.convention
    found: dict[str, tuple[str, int | None]] = {}
    if spec.home_reserved < call.shadow_space:
        found["home_area"] = (
            f"resolver.shadow_space: reserves {spec.home_reserved:#x} bytes, but {conv} gives "
            f"the callee a {call.shadow_space:#x}-byte home area that it may overwrite",
            where.get(("resolver", "shadow_space")),
        )
    if resolver.incoming_align and resolver.incoming_align > call.stack_align:
        found["stack_align"] = (
            f"resolver.incoming_align: {resolver.incoming_align:#x} is more than {conv} "
            f"guarantees at a call ({call.stack_align:#x})",
            where.get(("resolver", "incoming_align")),
        )
    if resolver.frame_align and resolver.frame_align < call.stack_align:
        found["stack_align"] = (
            f"resolver.frame_align: {resolver.frame_align:#x} is less than {conv}'s stack "
            f"alignment ({call.stack_align:#x}), which misaligns the call",
            where.get(("resolver", "frame_align")),
        )
    saved = spec.arch_info.with_parts(set(resolver.saves) | set(resolver.fp_saves))
    lost = [name for name in call.int_args if name not in saved]
    if lost:
        found["int_args"] = (
            f"resolver.saves: does not keep {', '.join(lost)}, integer argument "
            f"register(s) of {conv}",
            where.get(("resolver", "saves")),
        )
    whole_state = spec.arch_info.vector_area(resolver.vector_state.kind) is not None
    lost = [name for name in call.fp_args if name not in saved]
    if lost and not whole_state:
        found["fp_args"] = (
            f"resolver.fp_saves: does not keep {', '.join(lost)}, FP argument "
            f"register(s) of {conv}",
            where.get(("resolver", "fp_saves"), where.get(("resolver", "vector_state"))),
        )
    for role in ("scratch", "temp", "landing"):
        name = getattr(resolver, role)
        if name in call.callee_saved and name not in saved:
            found.setdefault(
                "callee_saved",
                (
                    f"resolver.{role}: {name} is callee-saved in {conv} but not in resolver.saves",
                    where.get(("resolver", role)),
                ),
            )
    return found


def _check_serves(spec: Spec, where: dict[tuple, int], path: Path) -> None:
    """A claimed caller convention the spec alone shows lost: a register the
    caller passes or keeps that the resolver neither saves nor leaves to the
    re-entry function (C's callee-saved).  A reproduced table that knowingly
    loses one declares the `caller_conventions` check instead, and verify
    proves the loss."""
    if any(v.check == "caller_conventions" for v in spec.expected_violations):
        return
    for i, caller in enumerate(spec.served):
        lost = lost_registers(spec, caller)
        if lost:
            raise AsmgenError(
                f"serves[{i}]: claims {caller.name}, but the resolver loses "
                f"{', '.join(lost)}: {caller.name} passes or keeps values there, the "
                f"resolver does not save them and {spec.convention}'s C callee may clobber them",
                path,
                where.get(("serves", i), where.get(("serves",))),
                hint="save them (resolver.saves, resolver.fp_saves), or drop the claim",
            )
