"""The lazy-call chain around the resolver, linked at real addresses.

caller --call--> stub I --jump through pointer I--> trampoline I --call--> resolver

The stubs, their pointers and the trampolines are the table's own: blocks
written by the subject's `write_stubs` and `write_trampolines` (the generated
module's table object, or asmgen's in-memory `Table`), the same code a JIT
gets.  Pointer I holds trampoline I, so a stub that reads a neighbour's
pointer arrives at another trampoline, and the resolver passes on an address
the re-entry function does not expect.

Only the scaffolding is encoded here, per arch: the caller (a direct call of
the stub, so that the stub is entered as a call enters it) and the re-entry
function's return.  Every encoder takes (at, target, order).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from asmgen.verify.model import ChainUnits

# Units in each block; the caller calls stub USED, neither the first nor the last.
UNITS, USED = 4, 2


@dataclass(frozen=True)
class Placement:
    """Where each block is linked."""

    stubs: int
    pointers: int
    trampolines: int
    resolver: int


@dataclass(frozen=True)
class Linked:
    """The blocks as linked at a Placement, with the addresses the chain must pass."""

    blocks: tuple[tuple[str, int, bytes], ...]  # (what, address, bytes)
    stub: int  # the stub the caller calls
    trampoline: int  # where that stub must arrive: the resolver's second argument


def link(units: ChainUnits, at: Placement, pointer_size: int, order: str) -> Linked:
    """Write the table's stubs, their pointers and its trampolines for `at`.
    Raises ValueError when a block cannot reach its target from there."""
    tramp_size = units.trampoline_size
    trampolines = units.write_trampolines(at.trampolines, at.resolver, UNITS)
    stubs = units.write_stubs(at.stubs, at.pointers, UNITS)
    pointers = b"".join(
        (at.trampolines + i * tramp_size).to_bytes(pointer_size, order) for i in range(UNITS)
    )
    return Linked(
        (
            ("stubs", at.stubs, stubs),
            ("pointers", at.pointers, pointers),
            ("trampolines", at.trampolines, trampolines),
        ),
        at.stubs + USED * units.stub_size,
        at.trampolines + USED * tramp_size,
    )


# -- scaffolding: the caller's call and the re-entry function's return ------

Encoder = Callable[[int, int, str], bytes]


def _rel32(at: int, length: int, target: int) -> bytes:
    disp = target - (at + length)
    if not -(1 << 31) <= disp < 1 << 31:
        raise ValueError(f"target {target:#x} out of rel32 range of {at:#x}")
    return disp.to_bytes(4, "little", signed=True)


def words(order: str, *values: int) -> bytes:
    return b"".join(v.to_bytes(4, order) for v in values)


def _field(value: int, bits: int, shift: int = 0) -> int:
    return (value & ((1 << bits) - 1)) << shift


def _x86_call(at: int, target: int, order: str) -> bytes:
    return b"\xe8" + _rel32(at, 5, target)


def _reach(at: int, target: int, bits: int) -> int:
    off = target - at
    if not -(1 << (bits - 1)) <= off < 1 << (bits - 1):
        raise ValueError(f"a call from {at:#x} cannot reach {target:#x}")
    return off


def _a64_bl(at: int, target: int, order: str) -> bytes:
    return words(order, 0x94000000 | _field(_reach(at, target, 28) >> 2, 26))


def _mips_jal(at: int, target: int, order: str) -> bytes:
    if (at + 4) >> 28 != target >> 28:
        raise ValueError(f"jal from {at:#x} cannot reach {target:#x}")
    return words(order, 0x0C000000 | _field(target >> 2, 26), 0)  # jal; nop


def _rv_jal(at: int, target: int, order: str) -> bytes:
    off = _reach(at, target, 21)
    imm = (
        _field(off >> 20, 1, 31)
        | _field(off >> 1, 10, 21)
        | _field(off >> 11, 1, 20)
        | _field(off >> 12, 8, 12)
    )
    return words(order, 0x6F | 1 << 7 | imm)  # jal ra, target


@dataclass(frozen=True)
class Scaffold:
    caller: Encoder  # a direct call of target
    ret: Callable[[str], bytes]  # a function's return, for the re-entry function


_X86 = Scaffold(_x86_call, lambda order: b"\xc3")
_MIPS = Scaffold(_mips_jal, lambda order: words(order, 0x03E00008, 0))  # jr ra; nop

SCAFFOLDS: dict[str, Scaffold] = {
    "x86_64": _X86,
    "i386": _X86,
    "aarch64": Scaffold(_a64_bl, lambda order: words(order, 0xD65F03C0)),
    "mips32": _MIPS,
    "mips64": _MIPS,
    "riscv64": Scaffold(_rv_jal, lambda order: words(order, 0x00008067)),
}
