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
from asmgen.spec.schema import WHOLE_STATE_KINDS, Spec


def saved_registers(spec: Spec) -> set[str]:
    """The registers the resolver saves before the re-entry call and restores
    after it (at their 128-bit width, for a whole-state vector save)."""
    resolver = spec.resolver
    saved = {*resolver.saves, *resolver.fp_saves}
    if resolver.vector_state.kind in WHOLE_STATE_KINDS:
        saved |= {r.name for r in spec.arch_info.registers if r.cls == "vec"}
    return saved


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
