"""The code around the resolver in the lazy-call chain: caller, stub, trampoline.

caller --call--> stub --jump through pointer--> trampoline --call--> resolver.

NOT GENERATED YET: asmgen does not emit trampolines and indirect stubs yet, so
they are encoded here from LLVM's facts (its writeTrampolines and
writeIndirectStubsBlock instruction words, e.g. x86-64 trampoline base word
0xf1c40000000015ff = `ff 15 <disp32>` + `c4 f1` padding, stub
0xf1c40000000025ff = `ff 25 <disp32>`).  This is the one place to switch to
the generated trampolines and stubs when they land.  Each trampoline ends its
call `trampoline.call_size` bytes after its start, which the resolver relies
on.  The caller is test scaffolding, not a table.

Every encoder takes (at, slot, target, order): its own address, a pointer slot
that holds `target`, the target itself and the byte order; each uses what its
arch's code needs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from ..patchkinds import KINDS

Encoder = Callable[[int, int, int, str], bytes]


def _rel32(at: int, length: int, target: int) -> bytes:
    disp = target - (at + length)
    if not -(1 << 31) <= disp < 1 << 31:
        raise ValueError(f"target {target:#x} out of rel32 range of {at:#x}")
    return disp.to_bytes(4, "little", signed=True)


def words(order: str, *values: int) -> bytes:
    return b"".join(v.to_bytes(4, order) for v in values)


def _field(value: int, bits: int, shift: int = 0) -> int:
    return (value & ((1 << bits) - 1)) << shift


@dataclass(frozen=True)
class ChainEncoders:
    caller: Encoder  # a direct call of target
    stub: Encoder  # jump to the address held in slot
    trampoline: Encoder  # call the resolver (target, also held in slot)
    ret: Callable[[str], bytes]  # a function's return, for the re-entry function


# -- x86 -------------------------------------------------------------------

X86_64 = ChainEncoders(
    caller=lambda at, slot, target, order: b"\xe8" + _rel32(at, 5, target),
    stub=lambda at, slot, target, order: b"\xff\x25" + _rel32(at, 6, slot) + b"\xc4\xf1",
    trampoline=lambda at, slot, target, order: b"\xff\x15" + _rel32(at, 6, slot) + b"\xc4\xf1",
    ret=lambda order: b"\xc3",
)

# LLVM's i386 trampoline calls the resolver directly (0xf1c4c400000000e8);
# its stub jumps through an absolute pointer (0xf1c40000000025ff).
I386 = ChainEncoders(
    caller=lambda at, slot, target, order: b"\xe8" + _rel32(at, 5, target),
    stub=lambda at, slot, target, order: b"\xff\x25" + slot.to_bytes(4, "little") + b"\xc4\xf1",
    trampoline=lambda at, slot, target, order: b"\xe8" + _rel32(at, 5, target) + b"\xc4\xc4\xf1",
    ret=lambda order: b"\xc3",
)

# -- AArch64 ----------------------------------------------------------------


def _a64_ldr_x16(at: int, slot: int) -> int:
    return 0x58000010 | _field((slot - at) >> 2, 19, 5)


AARCH64 = ChainEncoders(
    # bl target
    caller=lambda at, slot, target, order: words(
        order, 0x94000000 | _field((target - at) >> 2, 26)
    ),
    # ldr x16, slot; br x16
    stub=lambda at, slot, target, order: words(order, _a64_ldr_x16(at, slot), 0xD61F0200),
    # mov x17, x30; ldr x16, slot; blr x16
    trampoline=lambda at, slot, target, order: words(
        order, 0xAA1E03F1, _a64_ldr_x16(at + 4, slot), 0xD63F0200
    ),
    ret=lambda order: words(order, 0xD65F03C0),
)

# -- MIPS -------------------------------------------------------------------

T9, T8, RA = 25, 24, 31


def _hi(value: int) -> int:
    return KINDS["hi16"].encode(value & 0xFFFFFFFF)


def _mips_jal(at: int, target: int) -> int:
    if (at + 4) >> 28 != target >> 28:
        raise ValueError(f"jal from {at:#x} cannot reach {target:#x}")
    return 0x0C000000 | _field(target >> 2, 26)


def _mips_load_t9(value: int, pointer_size: int) -> list[int]:
    """lui/daddiu/dsll ... leaving the value's %lo for the final instruction."""
    if pointer_size == 4:
        return [0x3C190000 | _hi(value)]
    return [
        0x3C190000 | KINDS["highest16"].encode(value),  # lui    t9, %highest
        0x67390000 | KINDS["higher16"].encode(value),  # daddiu t9, t9, %higher
        0x0019CC38,  # dsll   t9, t9, 16
        0x67390000 | _hi(value),  # daddiu t9, t9, %hi
        0x0019CC38,  # dsll   t9, t9, 16
    ]


def _mips(pointer_size: int) -> ChainEncoders:
    load = 0x8F390000 if pointer_size == 4 else 0xDF390000  # lw / ld t9, %lo(t9)
    addiu = 0x27390000 if pointer_size == 4 else 0x67390000  # (d)addiu t9, t9, %lo
    return ChainEncoders(
        caller=lambda at, slot, target, order: words(order, _mips_jal(at, target), 0),
        # load t9 from slot; jr t9; nop
        stub=lambda at, slot, target, order: words(
            order, *_mips_load_t9(slot, pointer_size), load | (slot & 0xFFFF), 0x03200008, 0
        ),
        # move t8, ra; t9 = resolver; jalr t9; nop
        trampoline=lambda at, slot, target, order: words(
            order,
            0x03E0C025,
            *_mips_load_t9(target, pointer_size),
            addiu | (target & 0xFFFF),
            0x0320F809,
            0,
        ),
        ret=lambda order: words(order, 0x03E00008, 0),  # jr ra; nop
    )


# -- RISC-V -----------------------------------------------------------------


def _pcrel(at: int, target: int) -> tuple[int, int]:
    off = target - at
    hi = (off + 0x800) >> 12
    return hi & 0xFFFFF, (off - (hi << 12)) & 0xFFF


def _rv_load_jump(at: int, slot: int, scratch: int, link: int) -> tuple[int, int, int]:
    """auipc scratch, %pcrel_hi(slot); ld scratch, %pcrel_lo(scratch); jalr link, scratch."""
    hi, lo = _pcrel(at, slot)
    return (
        0x17 | scratch << 7 | hi << 12,
        0x3003 | scratch << 7 | scratch << 15 | lo << 20,
        0x67 | link << 7 | scratch << 15,
    )


def _rv_jal(at: int, target: int) -> int:
    off = target - at
    imm = (
        _field(off >> 20, 1, 31)
        | _field(off >> 1, 10, 21)
        | _field(off >> 11, 1, 20)
        | _field(off >> 12, 8, 12)
    )
    return 0x6F | 1 << 7 | imm  # jal ra, target


RISCV64 = ChainEncoders(
    caller=lambda at, slot, target, order: words(order, _rv_jal(at, target)),
    stub=lambda at, slot, target, order: words(order, *_rv_load_jump(at, slot, 31, 0)),
    # the trampoline's call links into t1 (x6) through t2 (x7)
    trampoline=lambda at, slot, target, order: words(order, *_rv_load_jump(at, slot, 7, 6)),
    ret=lambda order: words(order, 0x00008067),
)

ENCODERS: dict[str, ChainEncoders] = {
    "x86_64": X86_64,
    "i386": I386,
    "aarch64": AARCH64,
    "mips32": _mips(4),
    "mips64": _mips(8),
    "riscv64": RISCV64,
}


def with_landing_pad(enc: ChainEncoders, pad: bytes) -> ChainEncoders:
    """Trampolines that open with the spec's landing pad (endbr64, `bti c`), as
    the generated ones do: the call follows the pad, and `trampoline.call_size`
    counts it."""
    if not pad:
        return enc
    inner = enc.trampoline

    def trampoline(at: int, slot: int, target: int, order: str) -> bytes:
        return pad + inner(at + len(pad), slot, target, order)

    return dataclasses.replace(enc, trampoline=trampoline)


def landing_pad_bytes(spec) -> bytes:
    """The spec's landing pad, assembled as the templates assemble it."""
    if spec.landing_pad_asm is None:
        return b""
    from ..assemble import _keystone

    encoding, _ = _keystone(spec).asm(spec.landing_pad_asm, 0)
    return bytes(encoding)
