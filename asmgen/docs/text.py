"""The frame picture as plain text: the Markdown fallback for the SVG."""

from __future__ import annotations

from asmgen.build.framemap import CALLEE, FrameMap, span

BOX = 46  # characters inside the box


def _mark(index: int | None) -> str:
    return f" [!{index + 1}]" if index is not None else ""


def frame_text(fmap: FrameMap) -> str:
    """Highest address first; each row is one region of the resolver's frame."""
    rule = " " * 11 + "+" + "-" * BOX + "+"
    out = [f"{'offset':>9}  | {'contents':<{BOX - 8}} {'bytes':>5} |", rule]
    for region in sorted(fmap.resolver_regions(), key=lambda r: -r.lo):
        name = region.label + _mark(region.problem)
        out.append(
            f"{'sp+' + format(region.lo, '#x'):>9}  | {name:<{BOX - 8}} {region.size:>#5x} |"
        )
        out.append(rule)
    state = (
        f"{fmap.align}-byte aligned"
        if fmap.sp_aligned
        else f"MISALIGNED: {fmap.sp_misalignment:#x} past a {fmap.align}-byte boundary"
    )
    out[-1] += f" <- sp at the call ({state})"
    # Mark the aligned reference point on the boundary line below its region.
    out.append(f"{fmap.ref_label}: sp+{fmap.ref:#x}, {fmap.align}-byte aligned by the convention")
    if fmap.gap:
        out.append(f"realigning may leave 0 to {fmap.gap:#x} bytes above it; drawn as 0")
    for region in fmap.regions:
        if region.column == CALLEE:
            out.append(
                f"{region.label} (the callee may write it): "
                f"{span(region.lo, region.hi)}{_mark(region.problem)}"
            )
    return "\n".join(out) + "\n"
