"""Build the resolver's table: its code and every patch point, found by assembling
(see discover.py)."""

from __future__ import annotations

from pathlib import Path

from asmgen.build.discover import assemble_template, discover_patch_points
from asmgen.build.frame import compute_frame
from asmgen.build.patchkinds import KINDS
from asmgen.build.render import FieldUse
from asmgen.build.source import Assembly
from asmgen.build.table import Table
from asmgen.spec import Spec


def build_table(spec: Spec, spec_path: Path, template_path: Path) -> Table:
    frame = compute_frame(spec)

    def placeholder(index: int, use: FieldUse) -> int:
        kind = KINDS[use.kind]
        return kind.encode(spec.placeholders.get(use.patch, 0)) if kind.carries_address else 0

    rendered, base = assemble_template(spec, template_path, frame, placeholder)

    def probe(values: dict[int, int]) -> Assembly:
        def value(index: int, use: FieldUse) -> int:
            return values[index] if index in values else placeholder(index, use)

        return assemble_template(spec, template_path, frame, value, base.labels)[1]

    patches = discover_patch_points(spec, rendered, base, probe, spec_path)
    code = bytearray(base.code)
    for patch in patches:
        for field in patch.fields:
            if field.whole_word:
                code[field.offset : field.offset + field.size] = bytes(field.size)
    return Table(
        spec=spec,
        spec_path=spec_path,
        template_path=template_path,
        frame=frame,
        code=bytes(code),
        statements=base.statements,
        labels=base.labels,
        patches=patches,
    )
