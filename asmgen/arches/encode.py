"""Encoders for the scaffold instructions (direct calls, returns) of verify's chain."""

from __future__ import annotations


def rel32(at: int, length: int, target: int) -> bytes:
    disp = target - (at + length)
    if not -(1 << 31) <= disp < 1 << 31:
        raise ValueError(f"target {target:#x} out of rel32 range of {at:#x}")
    return disp.to_bytes(4, "little", signed=True)


def words(order: str, *values: int) -> bytes:
    return b"".join(v.to_bytes(4, order) for v in values)


def field(value: int, bits: int, shift: int = 0) -> int:
    return (value & ((1 << bits) - 1)) << shift


def reach(at: int, target: int, bits: int) -> int:
    off = target - at
    if not -(1 << (bits - 1)) <= off < 1 << (bits - 1):
        raise ValueError(f"a call from {at:#x} cannot reach {target:#x}")
    return off


# JITLink edge fixups (JITLinkEdge.fixup): write the field of the edge at
# `offset` in `code` for a fixup address `pc` and a target `target` (S + A).
# Little-endian instruction words unless a fixup says otherwise; the psABIs'
# formulas.


def _or_word(code: bytearray, offset: int, bits: int) -> None:
    word = int.from_bytes(code[offset : offset + 4], "little") | bits
    code[offset : offset + 4] = word.to_bytes(4, "little")


def fix_branch_pcrel32(code: bytearray, offset: int, pc: int, target: int) -> None:
    """x86-64 BranchPCRel32: target - (pc + 4), a signed 32-bit field."""
    code[offset : offset + 4] = rel32(pc, 4, target)


def fix_branch26(code: bytearray, offset: int, pc: int, target: int) -> None:
    """AArch64 B/BL imm26 and LoongArch-style word offsets: (target - pc) / 4."""
    _or_word(code, offset, field(reach(pc, target, 28) >> 2, 26))


def fix_page21(code: bytearray, offset: int, pc: int, target: int) -> None:
    """AArch64 ADRP: the 4 KiB page difference, immlo (bits 29-30) and immhi (5-23)."""
    pages = (target >> 12) - (pc >> 12)
    if not -(1 << 20) <= pages < 1 << 20:
        raise ValueError(f"adrp at {pc:#x} cannot reach {target:#x}")
    _or_word(code, offset, field(pages, 2, 29) | field(pages >> 2, 19, 5))


def fix_pageoffset12_ld64(code: bytearray, offset: int, pc: int, target: int) -> None:
    """AArch64 64-bit LDR's unsigned offset: the target's page offset / 8 (bits 10-21)."""
    if target % 8:
        raise ValueError(f"{target:#x} is not 8-byte aligned for a 64-bit load")
    _or_word(code, offset, field((target & 0xFFF) >> 3, 12, 10))


def _hi_lo(pc: int, target: int) -> tuple[int, int]:
    delta = target - pc
    if not -(1 << 31) - 0x800 <= delta < (1 << 31) - 0x800:
        raise ValueError(f"a hi20/lo12 pair at {pc:#x} cannot reach {target:#x}")
    hi = (delta + 0x800) >> 12
    return hi, delta - (hi << 12)


def fix_pcrel_hi20(code: bytearray, offset: int, pc: int, target: int) -> None:
    """RISC-V AUIPC: the upper 20 bits of target - pc, rounded for the low part."""
    _or_word(code, offset, field(_hi_lo(pc, target)[0], 20, 12))


def fix_pcrel_lo12_i(code: bytearray, offset: int, pc: int, target: int) -> None:
    """RISC-V I-type low 12 bits of its AUIPC's target - pc (`pc` is the AUIPC's)."""
    _or_word(code, offset, field(_hi_lo(pc, target)[1], 12, 20))


def fix_call_plt(code: bytearray, offset: int, pc: int, target: int) -> None:
    """RISC-V AUIPC + JALR pair (CALL_PLT)."""
    fix_pcrel_hi20(code, offset, pc, target)
    fix_pcrel_lo12_i(code, offset + 4, pc, target)


def fix_delta32dbl(code: bytearray, offset: int, pc: int, target: int) -> None:
    """s390x relative-long operand (JITLink systemz Delta32dbl): (target - pc) / 2,
    a signed big-endian 32-bit field; target - pc even and within 33 bits."""
    delta = target - pc
    if delta % 2:
        raise ValueError(f"{target:#x} is not a halfword from {pc:#x}")
    if not -(1 << 32) <= delta < 1 << 32:
        raise ValueError(f"a relative-long operand at {pc:#x} cannot reach {target:#x}")
    code[offset : offset + 4] = (delta >> 1).to_bytes(4, "big", signed=True)


def fix_call_branch_delta(code: bytearray, offset: int, pc: int, target: int) -> None:
    """PowerPC64 `bl` (JITLink ppc64 CallBranchDelta): target - pc in the
    LI field (bits 2-25 of the word), a signed 26-bit byte offset."""
    delta = reach(pc, target, 26)
    if delta % 4:
        raise ValueError(f"{target:#x} is not a word from {pc:#x}")
    _or_word(code, offset, delta & 0x03FFFFFC)


def _half16(code: bytearray, offset: int, value: int) -> None:
    code[offset : offset + 2] = (value & 0xFFFF).to_bytes(2, "little")


def _delta32(pc: int, target: int) -> int:
    delta = target - pc
    if not -(1 << 31) <= delta < 1 << 31:
        raise ValueError(f"a 16-bit pair at {pc:#x} cannot reach {target:#x}")
    return delta


def fix_delta16ha(code: bytearray, offset: int, pc: int, target: int) -> None:
    """PowerPC64 @ha of target - pc (JITLink ppc64 Delta16HA): the high half,
    rounded for the signed low half; the halfword at `offset` (little-endian)."""
    _half16(code, offset, (_delta32(pc, target) + 0x8000) >> 16)


def fix_delta16lo(code: bytearray, offset: int, pc: int, target: int) -> None:
    """PowerPC64 @l of target - pc (JITLink ppc64 Delta16LO)."""
    _half16(code, offset, _delta32(pc, target))
