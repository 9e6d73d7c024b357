"""Which registers a table stores to the stack and loads back, read from its code.

`asmgen review` reports saved and restored registers from the instructions
themselves, not from the spec, so a review shows what the bytes do.  A store
is an instruction that writes stack memory (addressed from the stack pointer,
or a push) from a register; a load is the reverse.  capstone's operand access
flags say which way data moves where it has them (capstone's operand
access).  For the load/store arches where it has none (capstone reports no
access), the direction comes from the load/store naming those ISAs share:
stores begin with `s`, loads with `l` (after an `f`/`v`/`c.` prefix: `fsd`,
`vst`, `c.sdsp`).  Where capstone has no decoder at all (`Arch.disassembler`
is llvm-mc), the same rule reads llvm-mc's text: the first operand is the
data register, and the stack pointer must appear among the others.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from asmgen.arches import Arch


@dataclass(frozen=True)
class StackTransfers:
    saved: tuple[str, ...]  # in program order, first store of each register
    restored: tuple[str, ...]  # in program order, first load of each register


def _direction(mnemonic: str) -> str | None:
    name = mnemonic.removeprefix("c.")
    # An FP or vector form (fsd, vst, vl).
    name = name[1:] if name[:1] in ("f", "v") and name[1:2] in ("s", "l") else name
    return {"s": "store", "l": "load"}.get(name[:1])


def _transfer(insn, stack_names: set[str]) -> tuple[str, list[str]] | None:
    import capstone

    if {capstone.CS_GRP_CALL, capstone.CS_GRP_JUMP, capstone.CS_GRP_RET} & set(insn.groups):
        return None
    regs, mems = [], []
    for op in insn.operands:
        if op.type == capstone.CS_OP_REG:
            regs.append((insn.reg_name(op.reg), getattr(op, "access", 0)))
        elif op.type == capstone.CS_OP_MEM:
            mems.append((insn.reg_name(op.mem.base) if op.mem.base else None, op))
    has_access = any(access for _, access in regs)
    if not mems:
        # push/pop: the stack access is implicit in a stack-pointer update.
        try:
            read, written = insn.regs_access()
        except capstone.CsError:
            return None
        implicit = {insn.reg_name(r) for r in read} & {insn.reg_name(r) for r in written}
        if not has_access or not implicit & stack_names:
            return None
        stores = [r for r, access in regs if access == capstone.CS_AC_READ]
        loads = [r for r, access in regs if access == capstone.CS_AC_WRITE]
        return ("store", stores) if stores else ("load", loads) if loads else None
    if len(mems) != 1 or mems[0][0] not in stack_names:
        return None
    data = [(r, access) for r, access in regs if r not in stack_names]
    if not data:
        return None
    if has_access:
        # Post/pre-indexed forms read and write the base, never the data registers.
        if all(access == capstone.CS_AC_READ for _, access in data):
            return "store", [r for r, _ in data]
        if all(access == capstone.CS_AC_WRITE for _, access in data):
            return "load", [r for r, _ in data]
        return None
    direction = _direction(insn.mnemonic)
    return (direction, [r for r, _ in data]) if direction else None


def _spellings(cs, arch: Arch) -> dict[str, str]:
    """capstone's name for each register of the arch table -> the table's spelling.

    capstone prints some registers by alias (`x29` as `fp`, say); reports
    use the names specs use.
    """
    import importlib

    prefix = arch.capstone[0].removeprefix("CS_ARCH_")
    consts = importlib.import_module(f"capstone.{prefix.lower()}_const")
    out = {}
    for reg in arch.registers:
        bare = reg.name.lstrip("$")
        reg_id = getattr(consts, f"{prefix}_REG_{bare.upper()}", None)
        shown = cs.reg_name(reg_id) if reg_id is not None else None
        out[shown or bare] = reg.name
    out.update(arch.capstone_names)
    return out


def stack_transfers(cs, arch: Arch, code: bytes) -> StackTransfers | None:
    """Saved and restored registers of `code`; None where there is no detail decoder."""
    if cs is None:
        return None
    spelling = _spellings(cs, arch)
    stack_names = {shown for shown, name in spelling.items() if name == arch.stack_pointer}
    stack_names.add(arch.stack_pointer.lstrip("$"))
    saved: list[str] = []
    restored: list[str] = []
    pos = 0
    while pos < len(code):
        start = pos
        for insn in cs.disasm(code[pos:], pos):
            pos = insn.address + insn.size
            found = _transfer(insn, stack_names)
            if found is None:
                continue
            direction, regs = found
            target = saved if direction == "store" else restored
            names = [spelling.get(r, r) for r in map(arch.disasm_register, regs)]
            target.extend(r for r in names if r not in target)
        if pos == start:
            pos += arch.element_size
    return StackTransfers(tuple(saved), tuple(restored))


def stack_transfers_text(arch: Arch, texts: list[str]) -> StackTransfers:
    """The same report from instruction text, for arches without a capstone decoder."""
    names = {reg.name.lstrip("$"): reg.name for reg in arch.registers}
    sp = arch.stack_pointer.lstrip("$")
    saved: list[str] = []
    restored: list[str] = []
    for text in texts:
        mnemonic, _, operands = text.partition(" ")
        direction = _direction(mnemonic)
        parts = [re.findall(r"[\w.]+", part.replace("$", "")) for part in operands.split(",")]
        if not direction or len(parts) < 2 or len(parts[0]) != 1 or parts[0][0] not in names:
            continue
        if not any(sp in part for part in parts[1:]):
            continue
        target = saved if direction == "store" else restored
        reg = names[parts[0][0]]
        if reg not in target:
            target.append(reg)
    return StackTransfers(tuple(saved), tuple(restored))
