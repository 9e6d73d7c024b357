"""Where a JIT'd caller of lazy_jit_test.cpp's conv cases keeps its values.

The caller computes its values, calls the lazily compiled callee, then stores
each value into its slot of the case's record.  Read from its machine code
(capstone): a store after the call whose source register was not written
since the call stores a value that register held across the call; a source
written in between (a reload) means the value waited on the stack.
"""

from __future__ import annotations

import re

import capstone
from capstone import x86

_GPR8 = {"al": "rax", "bl": "rbx", "cl": "rcx", "dl": "rdx", "sil": "rsi", "dil": "rdi"}
_GPR8 |= {"bpl": "rbp", "spl": "rsp"}


def full_register(name: str) -> tuple[str, int]:
    """capstone's name as asmgen's, with the bits the instruction used:
    ('r11', 64), ('xmm9', 256) for ymm9."""
    vector = re.fullmatch(r"([xyz])mm(\d+)", name)
    if vector:
        return f"xmm{vector.group(2)}", {"x": 128, "y": 256, "z": 512}[vector.group(1)]
    numbered = re.fullmatch(r"(r\d+)[dwb]?", name)
    if numbered:
        return numbered.group(1), 64
    if name in _GPR8:
        return _GPR8[name], 64
    legacy = re.fullmatch(r"[re]?([a-d]x|si|di|bp|sp|ip)", name)
    return ("r" + legacy.group(1) if legacy else name), 64


def value_at(slot: int, layout: dict) -> int | None:
    """The value index stored at byte `slot` of a case's record."""
    ints, base, size = layout["ints"], layout["vector_base"], layout["vector_slot"]
    if slot < base:
        return slot // 8 if slot % 8 == 0 and slot // 8 < ints else None
    index, rest = divmod(slot - base, size)
    return ints + index if rest == 0 and index < layout["vectors"] else None


def held_registers(code: bytes, layout: dict, case: int) -> list[tuple[str, int] | None]:
    """Per value of case `case`: (register, bits) it was held in across the
    call, or None (on the stack)."""
    cs = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    cs.detail = True
    insns = list(cs.disasm(code, 0))
    calls = [i for i, insn in enumerate(insns) if insn.group(capstone.CS_GRP_CALL)]
    if len(calls) != 1:
        raise ValueError(f"the caller makes {len(calls)} calls, expected 1")
    base = case * layout["case_bytes"]
    count = layout["ints"] + layout["vectors"]
    held: list[tuple[str, int] | None] = [None] * count
    stored = [False] * count
    written: set[str] = set()
    for insn in insns[calls[0] + 1 :]:
        if insn.group(capstone.CS_GRP_RET):
            break
        ops = insn.operands
        if len(ops) == 2 and ops[0].type == x86.X86_OP_MEM and ops[1].type == x86.X86_OP_REG:
            value = value_at(ops[0].mem.disp - base, layout)
            if value is not None:
                reg = full_register(insn.reg_name(ops[1].reg))
                held[value] = None if reg[0] in written else reg
                stored[value] = True
        _, writes = insn.regs_access()
        written |= {full_register(insn.reg_name(r))[0] for r in writes}
    missing = [k for k, done in enumerate(stored) if not done]
    if missing:
        raise ValueError(f"no store found for values {missing}")
    return held
