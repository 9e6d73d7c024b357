"""The stack frame at the call to the re-entry function, as regions to draw.

Every region is an address range measured from sp at the call (sp just before
the call instruction pushes its return address), computed from the spec and
its Frame, never typed.  Column 0 is what the resolver built; column 1 is
what the convention lets the callee write (its home area).  Overlaps and
broken alignment rules become problems attached to the regions involved.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

from ..frame import Frame
from ..spec import Spec
from .vector_layout import parts as vector_parts

RESOLVER, CALLEE = 0, 1


@dataclass(frozen=True)
class Region:
    lo: int  # offset from sp at the call
    size: int
    label: str
    kind: str  # return, frame_pointer, save, padding, vector, shadow, home, part, overlap
    column: int = RESOLVER
    problem: int | None = None  # index into FrameMap.problems

    @property
    def hi(self) -> int:
        return self.lo + self.size


@dataclass(frozen=True)
class FrameMap:
    regions: tuple[Region, ...]
    parts: tuple[Region, ...]  # pieces of the vector-state area (fxsave layout)
    overlaps: tuple[Region, ...]  # byte ranges two columns both claim; each has a problem
    top: int  # bytes from sp up to the aligned reference point (sp before the caller's call)
    entry: int  # bytes from sp up to sp at the resolver's first instruction
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
            if region.kind in ("save", "frame_pointer") and region.label == reg:
                return region.lo
        return None

    def vector_region(self) -> Region | None:
        return next((r for r in self.regions if r.kind == "vector"), None)


def span(lo: int, hi: int) -> str:
    return f"[sp+{lo:#x}, sp+{hi:#x})"


def _resolver_regions(spec: Spec, frame: Frame) -> list[Region]:
    """The resolver's own frame, from the top (highest address) down."""
    slot = frame.slot
    regions = []
    at = frame.size_at_call

    def take(size: int, label: str, kind: str) -> None:
        nonlocal at
        at -= size
        if size:
            regions.append(Region(at, size, label, kind))

    take(slot, "caller's return address", "return")
    take(slot, "trampoline's return address", "return")
    take(slot, spec.arch_info.frame_pointer or "frame pointer", "frame_pointer")
    for reg in spec.resolver.saves:
        take(slot, reg, "save")
    take(frame.padding, "alignment padding", "padding")
    vector = spec.resolver.vector_state
    take(frame.vector_area, f"vector state ({vector.kind})", "vector")
    take(frame.shadow, "shadow space", "shadow")
    assert at == 0, "the frame's parts do not add up to its size"
    return regions


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
    regions = _resolver_regions(spec, frame)
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
    # What the callee may write must lie in space the resolver reserved for it.
    for i, region in enumerate(list(regions)):
        if region.column != CALLEE:
            continue
        for j, other in enumerate(list(regions)):
            if other.column != RESOLVER or other.kind == "shadow":
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
        if vector.align > frame.align or depth % vector.align:
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
        top=frame.size_at_call,
        entry=frame.size_at_call - frame.return_addresses,
        slot=frame.slot,
        align=frame.align,
        sp_misalignment=misalignment,
        problems=tuple(problems),
    )


def _with_problem(region: Region, index: int) -> Region:
    if region.problem is not None:
        return region
    return Region(region.lo, region.size, region.label, region.kind, region.column, index)
