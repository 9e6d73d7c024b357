"""Find every patch field by assembling, by assembling.

A field's place is never typed.  The template is assembled once with every
field at its placeholder (the table), and then, per field, with the field's
bits all clear and all set.  The bits that differ are the field: the byte
offset, the container the C++ reads and writes, the shift and the width all
follow from them.

Fields of zero bits (`runtime_word`) carry no address: they mark a whole
instruction word the JIT writes at run time, and are found by the statement
they are rendered into.  Every field records its container's *base*: the
container with the field's bits clear.  When the spec's
``table.patched_words`` is ``zero`` the table holds zero in every field's
container, and patching writes ``base | field`` (as some of LLVM's tables are built).

Templates may use ``label(name)`` for PC-relative operands; the template is
rendered and assembled until the label offsets it was given are the ones
the assembler reports.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from asmgen.build.assemble import assemble
from asmgen.build.frame import Frame
from asmgen.build.gather import parallel
from asmgen.build.patchkinds import KINDS
from asmgen.build.render import FieldUse, Rendered, render
from asmgen.build.runtime import Field, PatchPoint
from asmgen.build.source import Assembly, Statement
from asmgen.errors import AsmgenError
from asmgen.spec import Spec


@dataclass(frozen=True)
class FoundField:
    field: Field
    statement: int  # index of the statement that holds the field


def _patch_point(name: str, fields: list[Field]) -> PatchPoint:
    """LLVM's `<Name>Offset` constant points at the first field's container."""
    kind = "+".join(f.kind for f in fields)
    return PatchPoint(name, fields[0].offset, fields[0].size, kind, tuple(fields))


# Renders needed for `label()` operands to settle; two suffice unless an
# operand's value changes an instruction's size.
MAX_PASSES = 6


def assemble_template(
    spec: Spec,
    template_path: Path,
    frame: Frame,
    field_value: Callable[[int, FieldUse], int],
    labels: dict[str, int] | None = None,
) -> tuple[Rendered, Assembly]:
    """Render and assemble until the offsets `label()` returned are the real ones."""
    known = labels
    for _ in range(MAX_PASSES):
        rendered = render(spec, template_path, frame, field_value, known)
        assembly = assemble(spec, rendered)
        if not rendered.labels_used:
            return rendered, assembly
        missing = sorted(rendered.labels_used - set(assembly.labels))
        if missing:
            # Render once more with the real labels: label() reports the line.
            render(spec, template_path, frame, field_value, assembly.labels)
            raise AsmgenError(f"template: label({missing[0]!r}): no such label", template_path)
        if known is not None and all(
            known.get(name) == assembly.labels[name] for name in rendered.labels_used
        ):
            return rendered, assembly
        known = assembly.labels
    raise AsmgenError(
        f"label offsets do not settle after {MAX_PASSES} passes "
        "(an operand computed with label() changes an instruction's size)",
        template_path,
    )


def _statement_at(statements: tuple[Statement, ...], offset: int) -> int:
    for index, stmt in enumerate(statements):
        if stmt.offset <= offset < stmt.offset + stmt.size:
            return index
    raise IndexError(offset)


def rendered_into(statements: tuple[Statement, ...], field: int) -> int | None:
    for index, stmt in enumerate(statements):
        if field in stmt.fields:
            return index
    return None


def _container(
    spec: Spec,
    stmt: Statement,
    first: int,
    last: int,
    whole: bool,
    use: FieldUse,
    path: Path,
) -> tuple[int, int]:
    """The bytes a field is read and written in: whole instruction words on RISC
    arches, the whole statement when the table holds zero in its place."""
    if whole:
        start, size = stmt.offset, stmt.size
    else:
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
    return start, size


# probe({field index: bits}) assembles with those fields set, every other at its placeholder.
Probe = Callable[[dict[int, int]], Assembly]


def _batch_probes(rendered: Rendered, base: Assembly, probe: Probe) -> tuple | None:
    """All address fields clear, then all set, in two assemblies instead of two per field.

    Valid only when every field has a statement of its own and every changed byte
    falls inside one of them; otherwise each field is probed alone, which also
    gives the precise error for a misplaced field.
    """
    carrying = [i for i, use in enumerate(rendered.fields) if KINDS[use.kind].carries_address]
    holders = [rendered_into(base.statements, i) for i in carrying]
    if len(carrying) < 2 or None in holders or len(set(holders)) != len(holders):
        return None
    # Side by side: in a parallel build their assemblies go out together (gather.py).
    clear, full = parallel(
        [
            partial(probe, dict.fromkeys(carrying, 0)),
            partial(probe, {i: KINDS[rendered.fields[i].kind].mask for i in carrying}),
        ]
    )
    if len(clear.code) != len(base.code) or len(full.code) != len(base.code):
        return None
    inside = set()
    for holder in holders:
        stmt = base.statements[holder]
        inside.update(range(stmt.offset, stmt.offset + stmt.size))
    changed = (i for i, (a, b) in enumerate(zip(clear.code, full.code, strict=True)) if a != b)
    if any(i not in inside for i in changed):
        return None
    return clear, full


def _discover(
    spec: Spec,
    base: Assembly,
    index: int,
    use: FieldUse,
    probe: Probe,
    path: Path,
    batch: tuple | None = None,
    line: int | None = None,
) -> FoundField:
    """Where field `index` lands; `line` is the template line of its `patch` call."""
    kind = KINDS[use.kind]
    order = spec.endian
    whole = spec.table.patched_words == "zero"
    holder = rendered_into(base.statements, index)
    if not kind.carries_address:
        if holder is None:
            raise AsmgenError(
                f"patch field {use.patch} ({use.kind}) is not rendered into a statement",
                path,
                line,
            )
        stmt = base.statements[holder]
        start, size = _container(
            spec, stmt, stmt.offset, stmt.offset + stmt.size - 1, True, use, path
        )
        word = int.from_bytes(base.code[start : start + size], order)
        return FoundField(Field(start, size, 0, 0, kind.name, word, whole), holder)
    if batch is not None:
        clear, full = batch
        # Other fields changed too: look only inside this field's statement.
        stmt = base.statements[holder]
        window = range(stmt.offset, stmt.offset + stmt.size)
    else:
        clear, full = parallel([partial(probe, {index: 0}), partial(probe, {index: kind.mask})])
        window = range(len(base.code))
    if len(clear.code) != len(base.code) or len(full.code) != len(base.code):
        raise AsmgenError(
            f"patch field {use.patch} ({use.kind}) changes the code size with its value; "
            "use an instruction form with a fixed-width field",
            path,
            line,
        )
    changed = [i for i in window if clear.code[i] != full.code[i]]
    if not changed:
        raise AsmgenError(
            f"patch field {use.patch} ({use.kind}) does not reach the assembled code",
            path,
            line,
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
    if holder is not None and holder != stmt_index:
        raise AsmgenError(
            f"patch field {use.patch} ({use.kind}) changes a statement other than the one "
            "it is rendered into",
            path,
            stmt.template_line,
        )
    start, size = _container(spec, stmt, first, last, whole, use, path)
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
    word = int.from_bytes(clear.code[span], order)
    return FoundField(Field(start, size, shift, bits, kind.name, word, whole), stmt_index)


def discover_patch_points(
    spec: Spec, rendered: Rendered, base: Assembly, probe: Probe, spec_path: Path | None = None
) -> tuple[PatchPoint, ...]:
    path = rendered.path
    batch = _batch_probes(rendered, base, probe)
    fields: dict[str, list[FoundField]] = {}
    lines = rendered.field_lines
    for index, use in enumerate(rendered.fields):
        line = lines[index] if index < len(lines) else None
        found = _discover(spec, base, index, use, probe, path, batch, line)
        fields.setdefault(use.patch, []).append(found)
    unknown = sorted(set(spec.placeholders) - set(fields))
    if unknown:
        raise AsmgenError(
            f"placeholders: no patch field named {unknown[0]!r} in {path.name}",
            spec_path or path,
            spec.line_of("placeholders", unknown[0]) if spec_path else None,
        )
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
