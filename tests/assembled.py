"""The tests' oracle for instantiated tables: the template rendered with every
field's real value and assembled, which is what `Table.instantiate` must equal."""

from __future__ import annotations

from pathlib import Path

from asmgen.build.discover import assemble_template
from asmgen.build.frame import compute_frame
from asmgen.build.patchkinds import KINDS
from asmgen.build.render import FieldUse
from asmgen.spec import Spec


def assemble_with_addresses(spec: Spec, template_path: Path, addresses: dict[str, int]) -> bytes:
    """The code the assembler makes when every field is rendered with its real
    value: what `Table.instantiate(addresses)` must equal."""

    def value(index: int, use: FieldUse) -> int:
        kind = KINDS[use.kind]
        return kind.encode(addresses[use.patch]) if kind.carries_address else 0

    return assemble_template(spec, template_path, compute_frame(spec), value)[1].code
