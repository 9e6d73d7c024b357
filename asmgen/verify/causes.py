"""Causes, not symptoms: what in the table's own code makes a check fail.

A check observes a symptom (the re-entry function ran twice, the FP control
word changed, a fault).  These functions read the code that ran (the
instantiated resolver, decoded) and the frame computed from the spec to name
the instruction or the frame slot behind it, generically: from the arch's
facts (`Arch.delay_slots`) and the frame map, never from an ABI's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

from asmgen.build.disasm import capstone_for
from asmgen.build.framemap import frame_map
from asmgen.build.vector_layout import fields as vector_fields
from asmgen.spec.schema import Spec


@dataclass(frozen=True)
class Instruction:
    offset: int
    mnemonic: str
    operands: str

    @property
    def text(self) -> str:
        return f"{self.mnemonic} {self.operands}".strip()


def decode(spec: Spec, code: bytes) -> list[Instruction]:
    """The resolver's instructions (empty where asmgen has no disassembler)."""
    cs = capstone_for(spec.arch_info, spec.endian, spec.syntax)
    if cs is None:
        return []
    return [Instruction(i.address, i.mnemonic, i.op_str) for i in cs.disasm(code, 0)]


def late_delay_slot_writes(spec: Spec, code: bytes, region: str = "resolver") -> list[str]:
    """Each branch whose delay slot writes a register the branch reads.

    The branch has read the register before its delay slot runs, so that write
    comes too late to steer it: the branch goes where the register pointed
    before (some of LLVM 19's resolvers put the landing move in the delay slot of
    `jr $t9`, so the jump takes t9 as restored from the frame, the resolver's
    own address, and the resolver runs again).
    """
    slots = spec.arch_info.delay_slots
    if slots is None:
        return []
    insns = decode(spec, code)
    found = []
    for index, (branch, slot) in enumerate(pairwise(insns)):
        if not slots.is_branch(branch.mnemonic, branch.operands):
            continue
        late = slots.reads(branch.mnemonic, branch.operands)
        late &= slots.writes(slot.mnemonic, slot.operands)
        for reg in sorted(late):
            text = (
                f"`{branch.text}` at {region}+{branch.offset:#x} reads {reg} before "
                f"`{slot.text}` in its delay slot ({region}+{slot.offset:#x}) writes it"
            )
            before = next(
                (i for i in reversed(insns[:index]) if reg in slots.writes(i.mnemonic, i.operands)),
                None,
            )
            if before is not None:
                text += (
                    f"; the jump takes {reg} as `{before.text}` at {region}+{before.offset:#x} "
                    "left it"
                )
            found.append(text)
    return found


def home_area_contents(spec: Spec, frame, lo: int, hi: int) -> list[str]:
    """What the resolver keeps at [sp+lo, sp+hi) of the callee's home area at the
    call: the frame's regions and, inside a vector-state area, its fields."""
    fmap = frame_map(spec, frame)
    out = []
    for region in fmap.resolver_regions():
        start, end = max(lo, region.lo), min(hi, region.hi)
        if start >= end or region.kind == "shadow":
            continue
        if region.kind != "vector":
            out.append(f"{region.label} at sp+{start:#x}")
            continue
        kind = spec.resolver.vector_state.kind
        out.append(vector_area(kind, spec.arch_info, start - region.lo, end - region.lo))
    return out


def vector_area(kind: str, arch, lo: int, hi: int) -> str:
    """Bytes [lo, hi) of a vector-state area (`arch.vector_area(kind)`) and the
    fields they hold."""
    inside = [
        f"{name} ({_bytes(off, off + size)})"
        for off, size, name in vector_fields(kind, arch)
        if off < hi and lo < off + size
    ]
    return f"{kind} area {_bytes(lo, hi)}" + (f": {', '.join(inside)}" if inside else "")


def _bytes(lo: int, hi: int) -> str:
    return f"byte {lo:#x}" if hi - lo == 1 else f"bytes {lo:#x}-{hi - 1:#x}"
