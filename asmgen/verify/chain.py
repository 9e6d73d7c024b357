"""The lazy-call chain around the resolver, linked at real addresses.

caller --call--> stub I --jump through pointer I--> trampoline I --call--> resolver

The stubs, their pointers and the trampolines are the table's own: blocks
written by the subject's `write_stubs` and `write_trampolines` (the generated
module's table object, or asmgen's in-memory `Table`), the same code a JIT
gets.  Pointer I holds trampoline I, so a stub that reads a neighbour's
pointer arrives at another trampoline, and the resolver passes on an address
the re-entry function does not expect.

The scaffolding around the chain (the caller's direct call of the stub, so
the stub is entered as a call enters it, and the re-entry function's return)
is each arch's `Arch.scaffold`.
"""

from __future__ import annotations

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
