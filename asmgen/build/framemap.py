"""The stack frame at the call to the re-entry function, as regions to draw.

Every region is an address range measured from sp at the call (sp just before
the call instruction pushes its return address), computed from the spec and
its Frame, never typed.  Column 0 is what the resolver built; column 1 is
what the convention lets the callee write (its home area).  Overlaps and
broken alignment rules become problems attached to the regions involved.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from itertools import pairwise

from asmgen.build.frame import Frame
from asmgen.build.vector_layout import parts as vector_parts
from asmgen.spec.schema import Spec

RESOLVER, CALLEE = 0, 1
# What the re-entry function's arguments carry, in order.
ARG_NAMES = ("context", "trampoline address")


@dataclass(frozen=True)
class Region:
    lo: int  # offset from sp at the call
    size: int
    label: str
    # return, frame_pointer, save, saved_sp, padding, vector, arg, shadow, home, part, overlap
    kind: str
    column: int = RESOLVER
    problem: int | None = None  # index into FrameMap.problems
    reg: str | None = None  # the register whose value the slot holds

    @property
    def hi(self) -> int:
        return self.lo + self.size


@dataclass(frozen=True)
class FrameMap:
    regions: tuple[Region, ...]
    parts: tuple[Region, ...]  # pieces of the vector-state area (its VectorArea layout)
    overlaps: tuple[Region, ...]  # byte ranges two columns both claim; each has a problem
    top: int  # bytes from sp up to the top of the picture
    ref: int  # bytes from sp up to the point the convention keeps aligned
    ref_label: str  # what that point is
    entry: int  # bytes from sp up to sp at the resolver's first instruction
    gap: int  # most bytes a realignment may insert just above `ref` (drawn as 0)
    slot: int
    align: int  # the alignment the call needs (call.stack_align)
    sp_misalignment: int  # bytes sp at the call lies past an `align` boundary
    problems: tuple[str, ...]

    @property
    def sp_aligned(self) -> bool:
        return self.sp_misalignment == 0

    def resolver_regions(self) -> list[Region]:
        return [r for r in self.regions if r.column == RESOLVER]

    def save_offset(self, reg: str) -> int | None:
        for region in self.regions:
            if region.reg == reg:
                return region.lo
        return None

    def vector_region(self) -> Region | None:
        return next((r for r in self.regions if r.kind == "vector"), None)


def span(lo: int, hi: int) -> str:
    return f"[sp+{lo:#x}, sp+{hi:#x})"


def _push_regions(spec: Spec, frame: Frame) -> tuple[list[Region], int]:
    """Push style: return addresses and pushes, highest first.  Returns (regions, top)."""
    slot = frame.slot
    regions: list[Region] = []
    # With realignment the return addresses, the frame pointer and the saved sp
    # sit above the realigned point, across a gap drawn at its smallest (0).
    top = frame.size_at_call + (4 * slot if frame.realign else 0)
    if frame.vector_realign:
        # sp is rounded down (`and`) below the pushes: the gap is drawn at its
        # smallest (0), the reference is the realigned sp under the vector area.
        top = frame.return_addresses + frame.pushes + frame.vector_alloc + frame.shadow
        top += frame.vector_min_area
    at = top

    def take(size: int, label: str, kind: str, reg: str | None = None) -> None:
        nonlocal at
        at -= size
        if size:
            regions.append(Region(at, size, label, kind, reg=reg))

    take(slot, "caller's return address", "return")
    # A trampoline that jumps to the resolver (trampoline.identity) pushed none.
    take(frame.return_addresses - slot, "trampoline's return address", "return")
    fp = _frame_pointer(spec)
    take(slot, f"saved {fp} (frame pointer)", "frame_pointer", fp)
    if frame.realign:
        take(slot, "saved sp (before realigning)", "saved_sp")
    for reg in spec.resolver.saves:
        take(slot, f"saved {reg}", "save", reg)
    take(frame.padding, "alignment padding", "padding")
    vector = spec.resolver.vector_state
    if frame.vector_slots:
        # q-regs: one slot per register, highest first.
        for reg, _ in reversed(frame.vector_slots):
            size = spec.arch_info.register(reg).bits // 8
            take(size, f"saved {reg}", "save", reg)
    elif frame.vector_dynamic:
        # Sized by CPUID at run time: drawn at the smallest size the format allows.
        least = frame.vector_min_area
        label = f"vector state ({vector.kind}, CPUID-sized; at least {least:#x})"
        take(least, label, "vector")
    else:
        take(frame.vector_area, f"vector state ({vector.kind})", "vector")
    args = frame.arg_offsets
    take(frame.arg_area - len(args) * slot, "argument area padding", "padding")
    for i in reversed(range(len(args))):
        take(slot, f"argument {i + 1} ({ARG_NAMES[i]})", "arg")
    take(frame.shadow, "shadow space", "shadow")
    assert at == 0, "the frame's parts do not add up to its size"
    return regions, top


def _store_regions(spec: Spec, frame: Frame) -> tuple[list[Region], int]:
    """RISC: one block of `frame.size` bytes above the shadow space."""
    arch = spec.arch_info
    base = frame.shadow
    regions = [Region(0, frame.shadow, "shadow space", "shadow")] if frame.shadow else []
    end = base
    # The convention's frame header, as far as the shadow space does not
    # cover it: the re-entry function saves its return address (and CR)
    # there, the resolver its TOC pointer.
    head = max(0, spec.call.link_area - frame.shadow)
    if head:
        regions.append(Region(base, head, "frame header (chain, CR, LR, TOC)", "header"))
        end = base + head
    for reg, offset in frame.save_offsets:
        size = arch.register(reg).bits // 8
        kind = "fp_save" if reg in spec.resolver.fp_saves else "save"
        regions.append(Region(base + offset, size, _saved(spec, reg), kind, reg=reg))
        end = max(end, base + offset + size)
    record_lo = base + frame.size - frame.record
    if frame.record:
        # The frame record: frame pointer below the saved link, as `stp` stores them.
        fp, link = spec.resolver.frame_pointer, spec.trampoline.saved_link
        regions.append(
            Region(record_lo, frame.slot, f"saved {fp} (frame pointer)", "frame_pointer", reg=fp)
        )
        regions.append(
            Region(record_lo + frame.slot, frame.slot, _saved(spec, link), "save", reg=link)
        )
    if record_lo > end:
        regions.append(Region(end, record_lo - end, "alignment padding", "padding"))
    return sorted(regions, key=lambda r: -r.lo), frame.size_at_call


def _ref_label(frame: Frame) -> str:
    if frame.realign or frame.vector_realign:
        return "sp after the resolver realigns it"
    if frame.return_addresses:
        return "sp before the caller's call"
    return "sp at the resolver's entry"


def _saved(spec: Spec, reg: str) -> str:
    """A save slot's label; registers that carry a return address say so."""
    if reg == spec.trampoline.link:
        return f"saved {reg} (trampoline's return address)"
    if reg == spec.trampoline.saved_link:
        return f"saved {reg} (caller's return address)"
    return f"saved {reg}"


def _frame_pointer(spec: Spec) -> str:
    return spec.resolver.frame_pointer or spec.arch_info.frame_pointer or "frame pointer"


def _parts(spec: Spec, regions: list[Region]) -> list[Region]:
    vector = spec.resolver.vector_state
    area = next((r for r in regions if r.kind == "vector"), None)
    if area is None:
        return []
    return [
        Region(area.lo + offset, size, label, "part")
        for offset, size, label in vector_parts(vector.kind, spec.arch_info, area.size)
    ]


def frame_map(spec: Spec, frame: Frame) -> FrameMap:
    if frame.style == "push":
        regions, top = _push_regions(spec, frame)
    else:
        regions, top = _store_regions(spec, frame)
    parts = _parts(spec, regions)
    overlaps: list[Region] = []
    problems: list[str] = []

    def problem(text: str) -> int:
        problems.append(text)
        return len(problems) - 1

    # call.shadow_space is the convention's home area; frame.shadow is what the
    # resolver reserves (less only in a spec that reproduces a defective table).
    home = spec.call.shadow_space
    if home:
        regions.append(Region(0, home, "callee's home area", "home", CALLEE))
    link = spec.call.link_area
    if link:
        # The callee saves its return address (and CR) in the frame header,
        # which the resolver keeps for that.
        regions.append(Region(0, link, "callee's LR, CR", "home", CALLEE))
    # What the callee may write must lie in space the resolver reserved for it.
    for i, region in enumerate(list(regions)):
        if region.column != CALLEE:
            continue
        for j, other in enumerate(list(regions)):
            if other.column != RESOLVER or other.kind in ("shadow", "header"):
                continue
            lo, hi = max(region.lo, other.lo), min(region.hi, other.hi)
            if lo >= hi:
                continue
            hit = [p.label for p in parts if p.lo < hi and lo < p.hi and other.kind == "vector"]
            what = f" ({', '.join(hit)})" if hit else ""
            n = problem(
                f"{region.label} {span(region.lo, region.hi)} lies on the {other.label} at "
                f"{span(lo, hi)}{what}: the convention gives the callee {home:#x} bytes, "
                f"the resolver reserves {frame.shadow:#x}"
            )
            overlaps.append(Region(lo, hi - lo, "overlap", "overlap", RESOLVER, n))
            regions[j] = _with_problem(other, n)
            regions[i] = _with_problem(regions[i], n)
    # Regions of the resolver's own frame never overlap, by construction; check anyway.
    own = sorted((r for r in regions if r.column == RESOLVER), key=lambda r: r.lo)
    for lower, upper in pairwise(own):
        if lower.hi > upper.lo:
            problem(f"{lower.label} overlaps {upper.label}")

    # The reference point is stack_align-aligned, so an address `d` bytes below
    # it is `-d mod align` bytes past a boundary.
    misalignment = -frame.size_at_call % frame.align
    if misalignment:
        problem(
            f"sp at the call is {misalignment:#x} bytes past a {frame.align}-byte "
            f"boundary; the convention needs it {frame.align}-byte aligned"
        )
    vector = spec.resolver.vector_state
    for k, region in enumerate(regions):
        if region.kind != "vector":
            continue
        depth = frame.size_at_call - region.lo
        # A realigned area (`and $-align`) is aligned by construction.
        if (vector.align > frame.align and not frame.vector_realign) or depth % vector.align:
            regions[k] = _with_problem(
                region,
                problem(
                    f"the {region.label} at {span(region.lo, region.hi)} is not "
                    f"{vector.align}-byte aligned"
                ),
            )
    return FrameMap(
        regions=tuple(regions),
        parts=tuple(parts),
        overlaps=tuple(overlaps),
        top=top,
        ref=frame.size_at_call,
        ref_label=_ref_label(frame),
        entry=top - frame.return_addresses,
        gap=frame.align - frame.slot if frame.realign else 0,
        slot=frame.slot,
        align=frame.align,
        sp_misalignment=misalignment,
        problems=tuple(problems),
    )


def _with_problem(region: Region, index: int) -> Region:
    if region.problem is not None:
        return region
    return dataclasses.replace(region, problem=index)
