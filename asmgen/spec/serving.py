"""Which caller conventions a resolver can serve, read from its spec alone.

A caller convention (the convention file's `callers`) passes values in some
registers and keeps values live in others across the call; the lazily
compiled callee needs every one of them as the caller left it.  On the way
there, the trampoline and the stub overwrite their own registers, the resolver
saves some registers and restores them, and the re-entry function (ordinary C
of the spec's convention) keeps its callee-saved registers and may clobber
every other.  A register is lost when nothing keeps it.

The contract checks (contract.py) refuse a spec that claims a convention this
shows lost; verify's `caller_conventions` check proves the rest by running the
code (emulation) and reports this reading as its `static` run.
"""

from __future__ import annotations

from asmgen.spec.convention import CallerConvention
from asmgen.spec.schema import Spec


def saved_registers(spec: Spec) -> set[str]:
    """The registers the resolver saves before the re-entry call and restores
    after it (at their 128-bit width, for a whole-state vector save)."""
    resolver = spec.resolver
    saved = {*resolver.saves, *resolver.fp_saves}
    if spec.arch_info.vector_area(resolver.vector_state.kind) is not None:
        saved |= {r.name for r in spec.arch_info.registers if r.cls == "vec"}
    return spec.arch_info.with_parts(saved)


def overwritten_registers(spec: Spec) -> tuple[set[str], set[str]]:
    """(always, unless saved): registers the stub, the trampoline and the
    resolver write on the way to the callee.  The units' registers and the
    register that carries the landing address are lost whatever the resolver
    saves; its scratch registers and what its vector-state sequence writes
    only when it does not save them."""
    resolver, arch = spec.resolver, spec.arch_info
    always = {
        spec.trampoline.scratch,
        spec.trampoline.link,
        spec.trampoline.saved_link,
        spec.trampoline.identity,
        spec.stub.scratch,
        resolver.landing,
    }
    state = resolver.vector_state
    clobbers = dict(arch.vector_clobbers).get(f"{state.kind}/{state.sizing}", ())
    unless_saved = {resolver.scratch, resolver.temp, *clobbers}
    return always - {None}, unless_saved - {None}


def beyond_contract(spec: Spec, caller: CallerConvention) -> list[str]:
    """The registers `caller` passes or keeps that the spec's own contract does
    not name (its arguments and callee-saved registers are the `int_args`,
    `fp_args` and `callee_saved` checks', and their `deviations:`)."""
    call = spec.call
    own = {*call.int_args, *call.fp_args, *call.callee_saved}
    return [name for name in caller.kept if name not in own]


def lost_registers(spec: Spec, caller: CallerConvention) -> list[str]:
    """The registers beyond the contract that `caller` needs and nothing keeps,
    in the caller's order."""
    saved = saved_registers(spec)
    always, unless_saved = overwritten_registers(spec)
    reentry_keeps = set(spec.convention_info.callee_saved) - unless_saved
    return [
        name
        for name in beyond_contract(spec, caller)
        if name in always or (name not in saved and name not in reentry_keeps)
    ]


def not_served(spec: Spec) -> dict[str, list[str]]:
    """The caller conventions of the spec's platform it does not claim, each
    with the registers the spec's resolver would lose for it (empty when it
    only lacks the claim)."""
    callers = spec.convention_info.caller_conventions
    return {
        name: lost_registers(spec, caller)
        for name, caller in callers.items()
        if name not in spec.serves
    }


def register_ranges(names: list[str]) -> str:
    """['r11', 'xmm8', 'xmm9', 'xmm10'] -> 'r11, xmm8-10' (order kept)."""
    out: list[list] = []  # [prefix, first, last] or [name]
    for name in names:
        stem = name.rstrip("0123456789")
        digits = name[len(stem) :]
        last = out[-1] if out else None
        if digits and last and len(last) == 3 and last[0] == stem and last[2] + 1 == int(digits):
            last[2] = int(digits)
        elif digits:
            out.append([stem, int(digits), int(digits)])
        else:
            out.append([name])
    return ", ".join(
        item[0]
        if len(item) == 1
        else f"{item[0]}{item[1]}" + (f"-{item[2]}" if item[2] > item[1] else "")
        for item in out
    )


def serving_lines(spec: Spec) -> list[str]:
    """What the headers and the patch say of a class: the conventions it
    serves, and, for a narrow one, what it loses for the others."""
    lines = [f"Serves callers of: {', '.join(spec.serves) or 'none declared'}."]
    missing = not_served(spec)
    if missing:
        lost = "; ".join(
            f"{name} ({register_ranges(regs)})" if regs else name for name, regs in missing.items()
        )
        lines.append(
            f"NARROW: it loses what callers of other conventions keep across the call: {lost}. "
            "Not a drop-in replacement for LLVM's class where such callers exist "
            "(docs/variants.md)."
        )
    if any(v.check == "caller_conventions" for v in spec.expected_violations):
        lost = {r: None for caller in spec.served for r in lost_registers(spec, caller)}
        lines.append(
            f"Known loss, declared in its spec: {register_ranges(list(lost))}, for the "
            "conventions above that pass or keep it."
        )
    if any(v.check == "vector_width" for v in spec.expected_violations):
        lines.append(
            "Vector registers: 128 bits kept; the upper parts of ymm/zmm arguments and of "
            "preserve_allcc's ymm registers are lost (the AVX-safe classes keep them)."
        )
    return lines
