"""Find every patch field by assembling, and build the finished table.

A field's place is never typed.  The template is assembled once with every
field at its placeholder (the table), and then, per field, with the field's
bits all clear and all set.  The bits that differ are the field: the byte
offset, the container the C++ reads and writes, the shift and the width all
follow from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .assemble import Assembly, Statement, assemble
from .errors import AsmgenError
from .frame import Frame, compute_frame
from .patchkinds import ENCODERS, KINDS
from .render import FieldUse, Rendered, render
from .runtime import Field, PatchPoint, apply_patches
from .spec import Spec


@dataclass(frozen=True)
class FoundField:
    field: Field
    statement: int  # index of the statement that holds the field


def _patch_point(name: str, fields: list[Field]) -> PatchPoint:
    """LLVM's `<Name>Offset` constant points at the first field's container."""
    kind = "+".join(f.kind for f in fields)
    return PatchPoint(name, fields[0].offset, fields[0].size, kind, tuple(fields))


@dataclass(frozen=True)
class Table:
    spec: Spec
    spec_path: Path
    template_path: Path
    frame: Frame
    code: bytes
    statements: tuple[Statement, ...]
    labels: dict[str, int]
    patches: tuple[PatchPoint, ...]

    @property
    def byteorder(self) -> str:
        return self.spec.endian

    def instantiate(self, addresses: dict[str, int]) -> bytes:
        return apply_patches(self.code, self.patches, addresses, self.byteorder, ENCODERS)


def _statement_at(statements: tuple[Statement, ...], offset: int) -> int:
    for index, stmt in enumerate(statements):
        if stmt.offset <= offset < stmt.offset + stmt.size:
            return index
    raise IndexError(offset)


def _discover(
    spec: Spec,
    base: Assembly,
    index: int,
    use: FieldUse,
    probe,
    path: Path,
) -> FoundField:
    kind = KINDS[use.kind]
    clear = probe(index, 0)
    full = probe(index, kind.mask)
    if len(clear.code) != len(base.code) or len(full.code) != len(base.code):
        raise AsmgenError(
            f"patch field {use.patch} ({use.kind}) changes the code size with its value; "
            "use an instruction form with a fixed-width field",
            path,
        )
    changed = [i for i, (a, b) in enumerate(zip(clear.code, full.code, strict=True)) if a != b]
    if not changed:
        raise AsmgenError(
            f"patch field {use.patch} ({use.kind}) does not reach the assembled code", path
        )
    first, last = changed[0], changed[-1]
    stmt_index = _statement_at(base.statements, first)
    stmt = base.statements[stmt_index]
    if last >= stmt.offset + stmt.size:
        raise AsmgenError(
            f"patch field {use.patch} ({use.kind}) spans more than one statement",
            path,
            stmt.template_line,
        )
    # RISC tables are arrays of instruction words: the container is whole words.
    unit = spec.arch_info.element_size
    start = first - (first - stmt.offset) % unit
    size = last + 1 - start
    size += -size % unit
    if size not in (1, 2, 4, 8):
        raise AsmgenError(
            f"patch field {use.patch} ({use.kind}) spans {size} bytes; "
            "fields must fit one 1-, 2-, 4- or 8-byte container",
            path,
            stmt.template_line,
        )
    order = spec.endian
    span = slice(start, start + size)
    diff = int.from_bytes(clear.code[span], order) ^ int.from_bytes(full.code[span], order)
    shift = (diff & -diff).bit_length() - 1
    bits = diff.bit_count()
    if diff >> shift != (1 << bits) - 1 or bits != kind.bits:
        raise AsmgenError(
            f"patch field {use.patch} ({use.kind}) expects {kind.bits} contiguous bits, "
            f"but the assembler changed mask {diff:#x}",
            path,
            stmt.template_line,
        )
    return FoundField(Field(start, size, shift, bits, kind.name), stmt_index)


def build_table(spec: Spec, spec_path: Path, template_path: Path) -> Table:
    frame = compute_frame(spec)

    def placeholder(index: int, use: FieldUse) -> int:
        return KINDS[use.kind].encode(spec.placeholders.get(use.patch, 0))

    rendered = render(spec, template_path, frame, placeholder)
    base = assemble(spec, rendered)

    def probe(target: int, bits: int) -> Assembly:
        def value(index: int, use: FieldUse) -> int:
            return bits if index == target else placeholder(index, use)

        return assemble(spec, render(spec, template_path, frame, value))

    return Table(
        spec=spec,
        spec_path=spec_path,
        template_path=template_path,
        frame=frame,
        code=base.code,
        statements=base.statements,
        labels=base.labels,
        patches=_patch_points(spec, rendered, base, probe),
    )


def _patch_points(spec: Spec, rendered: Rendered, base: Assembly, probe) -> tuple[PatchPoint, ...]:
    path = rendered.path
    fields: dict[str, list[FoundField]] = {}
    for index, use in enumerate(rendered.fields):
        fields.setdefault(use.patch, []).append(_discover(spec, base, index, use, probe, path))
    unknown = sorted(set(spec.placeholders) - set(fields))
    if unknown:
        raise AsmgenError(f"placeholders: no patch field named {unknown[0]!r}", path)
    points = []
    for name, found in fields.items():
        if name not in base.labels:
            raise AsmgenError(
                f"patch {name!r} has no label; put `{name}:` before the statement "
                "that holds its first field",
                path,
                base.statements[found[0].statement].template_line,
            )
        label = base.labels[name]
        holder = base.statements[found[0].statement]
        if label != holder.offset:
            raise AsmgenError(
                f"label {name!r} (offset {label:#x}) does not mark the statement at "
                f"{holder.offset:#x} that holds the patch's first field",
                path,
                holder.template_line,
            )
        points.append(_patch_point(name, [f.field for f in found]))
    return tuple(points)
