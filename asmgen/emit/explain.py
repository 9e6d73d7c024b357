"""The annotated listing `asmgen explain` prints, also embedded in the docs pages."""

from __future__ import annotations

from asmgen.build.source import ListingLine
from asmgen.build.table import Table

WIDTH = 10  # bytes column


def lines_of(table) -> tuple[ListingLine, ...]:
    """The listing build computed for a Table or UnitTable."""
    if table.listing is None:
        raise ValueError(f"{table.spec.abi}: built without a listing (build.pipeline.build)")
    return table.listing


def format_listing(lines: list[ListingLine], width: int) -> str:
    """Plain-text listing, as `asmgen explain` prints it."""
    digits = max(2, len(f"{lines[-1].offset:x}")) if lines else 2
    out = []
    for line in lines:
        for label in line.labels:
            out.append(f"{label}:")
        note = f"  ; patch {'; '.join(line.notes)}" if line.notes else ""
        out.append(
            f"  {line.offset:#0{digits + 2}x}  {line.data.hex():<{width * 2}}  {line.text}{note}"
        )
    return "\n".join(out) + "\n"


def explain_text(table: Table) -> str:
    spec = table.spec
    lines = [
        f"{spec.abi} ({spec.class_name}), {spec.arch}, {spec.endian}-endian",
        f"size: {len(table.code):#x} bytes",
    ]
    for patch in table.patches:
        lines.append(
            f"patch {patch.name}: offset {patch.offset:#x}, {patch.size} bytes, {patch.kind}"
        )
    text = "\n".join(lines) + "\n\n" + format_listing(lines_of(table), WIDTH)
    # The arch's trampoline and stub, where it has templates for them.
    for unit in (table.units.trampoline, table.units.stub) if table.units else ():
        text += f"\n{unit.role}: {unit.size:#x} bytes, reaches {unit.unit.target}\n"
        text += format_listing(lines_of(unit), WIDTH)
    return text
