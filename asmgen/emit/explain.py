"""The annotated listing `asmgen explain` prints, also embedded in the docs pages."""

from __future__ import annotations

from asmgen.build.disasm import format_listing, listing
from asmgen.build.table import Table

WIDTH = 10  # bytes column


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
    text = "\n".join(lines) + "\n\n" + format_listing(listing(table), WIDTH)
    # The arch's trampoline and stub, where it has templates for them.
    for unit in (table.units.trampoline, table.units.stub) if table.units else ():
        text += f"\n{unit.role}: {unit.size:#x} bytes, reaches {unit.unit.target}\n"
        text += format_listing(listing(unit), WIDTH)
    return text
