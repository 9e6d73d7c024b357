"""Draw a FrameMap as SVG, to scale: one slot is SLOT_PX pixels high.

Addresses grow upwards, as in the usual stack picture.  The SVG is built with
ElementTree (escaping, well-formed output) and holds only integers or
fixed-precision numbers, so the same frame always gives the same bytes.
"""

from __future__ import annotations

import textwrap
import xml.etree.ElementTree as ET

from asmgen.build.framemap import CALLEE, FrameMap, Region

SLOT_PX = 16
FONT = "DejaVu Sans Mono, Menlo, Consolas, monospace"
AXIS_X, COL0_X, COL0_W, COL1_X, COL1_W = 10, 110, 300, 440, 200
WIDTH = 680
TOP_Y = 56
WARN_FILL, WARN_STROKE = "#f6b3ad", "#c0392b"
FILL = {
    "return": "#cfe0f3",
    "frame_pointer": "#dcd3f0",
    "save": "#e2efd9",
    "fp_save": "#d9ecef",
    "saved_sp": "#dcd3f0",
    "arg": "#f3d9e8",
    "padding": "#eeeeee",
    "vector": "#fbe5bf",
    "shadow": "#cdeeea",
    "home": "#cdeeea",
    "header": "#e6e0cc",
}
WRAP = 84  # characters per line of a problem's explanation


def _num(value: float) -> str:
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return text if text != "-0" else "0"


def _el(parent: ET.Element, tag: str, text: str | None = None, **attrs) -> ET.Element:
    node = ET.SubElement(
        parent,
        tag,
        {
            k.rstrip("_").replace("_", "-"): _num(v) if isinstance(v, int | float) else v
            for k, v in attrs.items()
        },
    )
    if text is not None:
        node.text = text
    return node


def _text(parent, x, y, text, size=11, anchor="start", fill="#1a1a1a", weight=None):
    attrs = dict(x=x, y=y, font_size=size, text_anchor=anchor, fill=fill)
    if weight:
        attrs["font_weight"] = weight
    return _el(parent, "text", text, **attrs)


def _column(region: Region) -> tuple[int, int]:
    return (COL1_X, COL1_W) if region.column == CALLEE else (COL0_X, COL0_W)


def _badge(parent: ET.Element, x: float, y: float, problem: int) -> None:
    """A numbered red dot that points at the problem list below the drawing."""
    group = _el(parent, "g", class_="badge")
    _el(group, "circle", cx=x, cy=y, r=7, fill=WARN_STROKE)
    _text(
        group, x, y + 4, str(problem + 1), size=10, anchor="middle", fill="#ffffff", weight="bold"
    )


def _legend(fmap: FrameMap) -> list[str]:
    lines = [f"{fmap.ref_label}: sp+{fmap.ref:#x}, {fmap.align}-byte aligned by the convention"]
    if fmap.gap:
        lines.append(f"realigning may leave 0 to {fmap.gap:#x} bytes above that point; drawn as 0")
    return lines


def render_svg(title: str, fmap: FrameMap, header: str) -> str:
    scale = SLOT_PX / fmap.slot

    def y(offset: int) -> float:
        return TOP_Y + (fmap.top - offset) * scale

    bottom = y(0)
    notes = [textwrap.wrap(f"{i + 1}. {p}", WRAP) for i, p in enumerate(fmap.problems)]
    height = bottom + 42 + 14 * len(_legend(fmap)) + sum(len(n) * 14 + 4 for n in notes)
    svg = ET.Element(
        "svg",
        {
            "xmlns": "http://www.w3.org/2000/svg",
            "width": _num(WIDTH),
            "height": _num(height),
            "viewBox": f"0 0 {_num(WIDTH)} {_num(height)}",
            "font-family": FONT,
        },
    )
    svg.append(ET.Comment(f" {header} "))
    _el(svg, "title", title)
    _el(svg, "rect", x=0, y=0, width=WIDTH, height=height, fill="#ffffff")
    _text(svg, AXIS_X, 20, title, size=14, weight="bold")
    _text(svg, COL0_X + COL0_W / 2, TOP_Y - 8, "resolver's frame", anchor="middle")
    _text(svg, COL1_X + COL1_W / 2, TOP_Y - 8, "callee may write", anchor="middle")

    for region in fmap.regions:
        x, w = _column(region)
        warn = region.problem is not None
        fill = WARN_FILL if warn and region.kind == "home" else FILL[region.kind]
        group = _el(svg, "g", class_=f"region {region.kind}" + (" problem" if warn else ""))
        _el(
            group,
            "rect",
            x=x,
            y=y(region.hi),
            width=w,
            height=region.size * scale,
            fill=fill,
            stroke=WARN_STROKE if warn else "#555555",
            stroke_width=2 if warn else 1,
        )
    for band in fmap.overlaps:
        group = _el(svg, "g", class_="overlap problem")
        _el(
            group,
            "rect",
            x=COL0_X,
            y=y(band.hi),
            width=COL0_W,
            height=band.size * scale,
            fill=WARN_FILL,
            stroke=WARN_STROKE,
            stroke_width=2,
        )
    # The pieces of the vector-state area, each at its place.
    for part in fmap.parts:
        group = _el(svg, "g", class_="part")
        _el(
            group,
            "line",
            x1=COL0_X,
            y1=y(part.lo),
            x2=COL0_X + COL0_W * 0.6,
            y2=y(part.lo),
            stroke="#999999",
            stroke_dasharray="3 3",
        )
        _text(group, COL0_X + 8, y(part.hi) + 11, part.label, size=9, fill="#444444")
    for region in fmap.regions:
        x, w = _column(region)
        inside = bool(fmap.parts) and region.kind == "vector"
        if inside:
            # The parts are labelled on the left; name the whole area top right.
            mid = y(region.hi) + 16
            _text(
                svg,
                x + w - 8,
                mid,
                f"{region.label}  {region.size:#x}",
                anchor="end",
                weight="bold",
            )
        else:
            mid = y(region.hi) + region.size * scale / 2 + 4
            _text(svg, x + 8, mid, region.label)
            _text(svg, x + w - 8, mid, f"{region.size:#x}", anchor="end", fill="#555555")
        if region.problem is not None:
            _badge(svg, x + w + 10, mid - 4, region.problem)
    # The point the convention keeps aligned, which the call's alignment counts from.
    ref = _el(svg, "g", class_="reference")
    _el(
        ref,
        "line",
        x1=COL0_X,
        y1=y(fmap.ref),
        x2=COL1_X - 4,
        y2=y(fmap.ref),
        stroke="#1f5fa8",
        stroke_width=2,
        stroke_dasharray="6 3",
    )
    _text(ref, COL1_X, y(fmap.ref) + 4, f"<- {fmap.ref_label}", size=10, fill="#1f5fa8")
    # Offsets on the left, one at each boundary of the resolver's frame.
    edges = sorted({fmap.top} | {r.lo for r in fmap.resolver_regions()}, reverse=True)
    for offset in edges:
        label = f"sp+{offset:#x}" if offset else "sp"
        _text(
            svg,
            COL0_X - 6,
            y(offset) + 4,
            label,
            size=10,
            anchor="end",
            weight=None if offset else "bold",
        )
    # Where sp sits, and whether it keeps the convention's alignment.
    ok = fmap.sp_aligned
    colour = "#1a1a1a" if ok else WARN_STROKE
    _el(
        svg,
        "line",
        x1=COL0_X,
        y1=bottom,
        x2=COL1_X + COL1_W,
        y2=bottom,
        stroke=colour,
        stroke_width=2,
    )
    verdict = (
        f"sp at the call: {fmap.align}-byte aligned"
        if ok
        else f"sp at the call: {fmap.sp_misalignment:#x} past a {fmap.align}-byte boundary"
    )
    _text(svg, AXIS_X, bottom + 18, verdict, fill=colour, weight="bold")
    for i, line in enumerate(_legend(fmap)):
        _text(svg, AXIS_X, bottom + 34 + 14 * i, line, size=10, fill="#555555")
    line_y = bottom + 42 + 14 * len(_legend(fmap))
    for lines in notes:
        for line in lines:
            _text(svg, AXIS_X, line_y, line, fill=WARN_STROKE, size=11)
            line_y += 14
        line_y += 4
    ET.indent(svg)
    return ET.tostring(svg, encoding="unicode") + "\n"
