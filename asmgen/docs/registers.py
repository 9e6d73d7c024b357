"""The register table: each register's role in the convention and what the
resolver does with it, derived from the spec's fields and the frame map."""

from __future__ import annotations

from dataclasses import dataclass

from asmgen.build.framemap import FrameMap
from asmgen.build.vector_layout import register_slots
from asmgen.spec import Spec


@dataclass(frozen=True)
class RegisterRow:
    name: str
    cls: str
    role: str
    resolver: str
    problem: str = ""  # non-empty when the resolver's handling breaks the convention


def _roles(spec: Spec, name: str) -> list[str]:
    call = spec.call
    roles = []
    if name == spec.arch_info.stack_pointer:
        return ["stack pointer"]
    if name in call.int_args:
        roles.append(f"integer argument {call.int_args.index(name) + 1}")
    if name in call.fp_args:
        roles.append(f"FP argument {call.fp_args.index(name) + 1}")
    if name in call.result_regs:
        roles.append("return value")
    if name in call.fp_control:
        roles.append("FP control state (call.fp_control)")
    elif spec.arch_info.register(name).cls == "ctl":
        roles.append("control state")
    else:
        roles.append("callee-saved" if name in call.callee_saved else "caller-saved")
    return roles


def _uses(spec: Spec, name: str) -> list[str]:
    """What the resolver puts in a register around the re-entry call."""
    call = spec.call
    uses = []
    if call.int_args[:1] == (name,):
        uses.append("passes the context (re-entry argument 1)")
    if call.int_args[1:2] == (name,):
        uses.append("passes the trampoline address (re-entry argument 2)")
    if name == spec.resolver.scratch:
        uses.append("holds the re-entry function's address")
    if name in call.result_regs:
        uses.append("receives the landing address")
    resolver, trampoline = spec.resolver, spec.trampoline
    if name == resolver.temp:
        uses.append("carries the trampoline address to its stack slot")
    if name == resolver.landing:
        uses.append("holds the landing address while registers are restored")
    if name == trampoline.link:
        uses.append("arrives holding the trampoline's return address")
    if name == trampoline.saved_link:
        uses.append("arrives holding the caller's return address (kept by the trampoline)")
    return uses


def _vector_slot(spec: Spec, fmap: FrameMap, name: str) -> int | None:
    """Offset from sp of a vector register's slot inside an fxsave-style area."""
    area = fmap.vector_region()
    slots = register_slots(spec.resolver.vector_state.kind, spec.arch_info)
    if area is None or name not in slots:
        return None
    return area.lo + slots[name]


def register_rows(spec: Spec, fmap: FrameMap) -> list[RegisterRow]:
    rows = []
    args = set(spec.call.int_args) | set(spec.call.fp_args)
    for reg in spec.arch_info.registers:
        roles = _roles(spec, reg.name)
        uses = _uses(spec, reg.name)
        saved = fmap.save_offset(reg.name)
        vector = _vector_slot(spec, fmap, reg.name)
        problem = ""
        if reg.name == spec.arch_info.stack_pointer:
            action = f"lowered by {fmap.entry:#x} bytes at the call, then restored"
        elif saved is not None:
            order = (
                "frame pointer, pushed first" if reg.name == spec.arch_info.frame_pointer else ""
            )
            action = f"saved at sp+{saved:#x}" + (f" ({order})" if order else "") + "; restored"
        elif vector is not None:
            kind = spec.resolver.vector_state.kind
            action = f"saved in the {kind} area at sp+{vector:#x}; restored"
        elif reg.part_of is not None and fmap.save_offset(reg.part_of) is not None:
            at = fmap.save_offset(reg.part_of)
            action = f"saved as part of {reg.part_of} at sp+{at:#x}; restored"
        elif uses:
            action = "clobbered"
        elif reg.name in spec.call.callee_saved:
            action = "untouched (the re-entry function preserves it)"
        elif reg.name in spec.call.fp_control:
            action = "untouched (the re-entry function preserves its control bits)"
        else:
            action = "not saved"
            if reg.name in args:
                problem = "argument register not saved: the re-entry call may clobber it"
        if uses:
            action = "; ".join(uses) + "; " + action
        rows.append(RegisterRow(reg.name, reg.cls, ", ".join(roles), action, problem))
    return rows
