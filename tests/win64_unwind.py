"""A small, independent decoder and virtual unwinder for Win64 unwind data,
used by tests/test_unwind.py to check asmgen.unwind's encoder.

Format (Microsoft x64 exception handling documentation):

UNWIND_INFO
    byte 0: version (bits 0-2, must be 1) and flags (bits 3-7)
    byte 1: size of prolog in bytes
    byte 2: count of unwind-code slots
    byte 3: frame register (bits 0-3) and scaled frame offset (bits 4-7, x16)
    then the unwind codes, 2 bytes each, in reverse prolog order:
        byte 0: prolog offset just after the operation
        byte 1: operation (bits 0-3) and operation info (bits 4-7)
    padded to an even number of slots.
RUNTIME_FUNCTION
    three little-endian uint32: begin, end, and the UNWIND_INFO's address,
    each relative to the image (here: the resolver's first byte).

Virtual unwind from offset `pc` of the function: in an epilog (the code from
pc on is an optional `lea rsp,[rbp+d]`/`add rsp,imm`, pops, `ret`) the epilog
is simulated forward; otherwise every code whose prolog offset is at most pc
is undone in array order.  Then the return address is at [rsp].
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

UWOP = {0: "PUSH_NONVOL", 1: "ALLOC_LARGE", 2: "ALLOC_SMALL", 3: "SET_FPREG"}
REGS = ("rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", *(f"r{i}" for i in range(8, 16)))


@dataclass(frozen=True)
class UnwindInfo:
    version: int
    flags: int
    prolog_size: int
    frame_register: str | None
    frame_offset: int
    codes: tuple[tuple[int, str, int], ...]  # (prolog offset, operation, info)


def decode_unwind_info(data: bytes) -> UnwindInfo:
    head, prolog, count, frame = data[0], data[1], data[2], data[3]
    codes = []
    i = 0
    while i < count:
        offset, opbyte = data[4 + 2 * i], data[5 + 2 * i]
        op, info = UWOP[opbyte & 0xF], opbyte >> 4
        if op == "ALLOC_LARGE":
            raise NotImplementedError("not produced for these resolvers")
        codes.append((offset, op, info))
        i += 1
    return UnwindInfo(
        version=head & 0x7,
        flags=head >> 3,
        prolog_size=prolog,
        frame_register=REGS[frame & 0xF] if frame & 0xF else None,
        frame_offset=(frame >> 4) * 16,
        codes=tuple(codes),
    )


def decode_runtime_function(data: bytes) -> tuple[int, int, int]:
    return struct.unpack("<III", data[:12])


def _epilog(code: bytes, pc: int):
    """The epilog instructions from pc on, or None when pc is not in one."""
    import capstone

    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    steps = []
    for insn in md.disasm(code[pc:], pc):
        op = insn.op_str.replace(" ", "")
        if insn.mnemonic in ("ret", "jmp"):
            # A tail jump ends the shadow-stack variants' epilog (see
            # docs/variants.md for what Windows' own unwinder recognises).
            return steps
        if insn.mnemonic == "pop":
            steps.append(("pop", op))
        elif not steps and insn.mnemonic == "lea" and op.startswith("rsp,[rbp"):
            steps.append(("lea", int(op[len("rsp,[rbp") : -1] or "0", 0)))
        elif not steps and insn.mnemonic == "add" and op.startswith("rsp,"):
            steps.append(("add", int(op[4:], 0)))
        else:
            return None
    return None


def virtual_unwind(info: UnwindInfo, code: bytes, pc: int, regs: dict, read64) -> dict:
    """Caller's rsp, rip and restored registers, from the state at offset pc."""
    regs = dict(regs)
    epilog = _epilog(code, pc)
    if epilog is not None:
        for kind, arg in epilog:
            if kind == "lea":
                regs["rsp"] = regs["rbp"] + arg
            elif kind == "add":
                regs["rsp"] += arg
            else:
                regs[arg] = read64(regs["rsp"])
                regs["rsp"] += 8
    else:
        for offset, op, opinfo in info.codes:
            if pc < info.prolog_size and offset > pc:
                continue
            if op == "PUSH_NONVOL":
                regs[REGS[opinfo]] = read64(regs["rsp"])
                regs["rsp"] += 8
            elif op == "ALLOC_SMALL":
                regs["rsp"] += opinfo * 8 + 8
            elif op == "SET_FPREG":
                regs["rsp"] = regs[info.frame_register] - info.frame_offset
    regs["rip"] = read64(regs["rsp"])
    regs["rsp"] += 8
    return regs
