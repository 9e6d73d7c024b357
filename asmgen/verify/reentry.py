"""Run LLVM's newer reentry path (build/reentry.py) through verify's emulation.

The reentry routine, its trampoline blocks and its jump-stub blocks are
linked the way JITLink links them: each block's bytes are copied and every
edge is applied with the arch's JITLink fixup (`Arch.jitlink_edges`), the
trampolines' edge to the routine, the stubs' edges to their pointers, the
routine's to the resolve function (verify's re-entry hook).  The chain then
runs in unicorn exactly as for the OrcABISupport tables, so every emulated
check applies: arguments and callee-saved registers at the landing, the
alignment at the call, the caller's return address, the shadow stack.  The
one difference: the resolve function takes the trampoline address alone.

Wrong edges show as a failed run: a trampoline that does not reach the
routine, a stub that jumps through the wrong pointer, a routine that calls
the wrong place.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from asmgen.build.frame import compute_frame
from asmgen.build.reentry import POINTER, RESOLVE, ROUTINE, Block, Reentry
from asmgen.spec import Spec
from asmgen.verify.emulate import RESOLVER
from asmgen.verify.model import Subject

# The farthest every stub's pointer is placed from it (within every arch's
# page or hi20/lo12 reach).
STUB_REACH = 1 << 30


def link_block(spec: Spec, block: Block, address: int, symbols: dict[str, int]) -> bytes:
    """The block's bytes at `address` with every edge applied as JITLink does.
    Raises ValueError for an edge no fixup is known for or a target out of reach."""
    facts = {e.kind: e for e in spec.arch_info.jitlink_edges}
    code = bytearray(block.code)
    by_offset = {e.offset: e for e in block.edges}

    def target_of(name: str, addend: int) -> int:
        if name.startswith("block+"):
            return address + int(name.removeprefix("block+"), 16) + addend
        if name not in symbols:
            raise ValueError(f"edge target {name!r} is not linked")
        return symbols[name] + addend

    for edge in block.edges:
        fact = facts.get(edge.kind)
        if fact is None or fact.fixup is None:
            raise ValueError(f"no JITLink fixup for {spec.arch} edge kind {edge.kind!r}")
        if fact.paired:
            # The edge names its partner's place: take the partner's pc and target.
            partner_at = target_of(edge.target, edge.addend) - address
            partner = by_offset.get(partner_at)
            if partner is None:
                raise ValueError(f"{edge.kind} at {edge.offset:#x} names no edge")
            pc, target = address + partner.offset, target_of(partner.target, partner.addend)
        else:
            pc, target = address + edge.offset, target_of(edge.target, edge.addend)
        fact.fixup(code, edge.offset, pc, target)
    return bytes(code)


def _stride(block: Block) -> int:
    return -(-len(block.code) // block.alignment) * block.alignment


@dataclass(frozen=True)
class ReentryUnits:
    """The reentry trampolines and jump stubs as verify's chain links them."""

    spec: Spec
    reentry: Reentry

    @property
    def trampoline_size(self) -> int:
        return _stride(self.reentry.trampoline)

    @property
    def stub_size(self) -> int:
        return _stride(self.reentry.stub)

    @property
    def stub_to_pointer_max_displacement(self) -> int:
        return STUB_REACH

    def write_trampolines(self, block_addr: int, resolver_addr: int, n: int) -> bytes:
        size, block = self.trampoline_size, self.reentry.trampoline
        out = b""
        for i in range(n):
            code = link_block(self.spec, block, block_addr + i * size, {ROUTINE: resolver_addr})
            out += code.ljust(size, b"\0")
        return out

    def write_stubs(self, stubs_addr: int, ptrs_addr: int, n: int) -> bytes:
        size, block, slot = self.stub_size, self.reentry.stub, self.spec.pointer_size
        out = b""
        for i in range(n):
            symbols = {POINTER: ptrs_addr + i * slot}
            out += link_block(self.spec, block, stubs_addr + i * size, symbols).ljust(size, b"\0")
        return out


def reentry_subject(spec: Spec, spec_path: Path, reentry: Reentry) -> Subject:
    """A verify Subject for the reentry path: the routine linked where the
    emulation puts the resolver, its resolve call reaching the re-entry hook."""
    facts = spec.arch_info.emulator
    base = facts.base if facts is not None else 0

    def instantiate(fn_addr: int, ctx_addr: int) -> bytes:
        return link_block(spec, reentry.routine, base + RESOLVER, {RESOLVE: fn_addr})

    units = ReentryUnits(spec, reentry)
    source = f"reentry routine {ROUTINE} (LLVM's newer path)"
    return Subject(
        spec, spec_path, compute_frame(spec), instantiate, source, units, takes_context=False
    )
