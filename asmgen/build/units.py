"""Trampolines and indirect stubs from templates, their fields found by assembling.

Each arch has `trampoline.s.j2` and `stub.s.j2` beside its resolver template.
Each renders one unit (one trampoline, one stub); a block is copies of it.  A
unit's one patch names what it points at (`ResolverPtr`, `ResolverAddr` or
`StubPtr`, see unitruntime.py).  Fields are discovered with layout's
machinery: the unit is assembled with each field all clear and all set.

A PC-relative field whose kind takes a displacement is written in the
template as `Label + D` (D from `patch()`), so the assembler, not asmgen,
encodes it.  asmgen measures D from the place the kind says the hardware uses
(the label's statement, or the end of the field's statement: the "6" of
LLVM's `OffsetToPtr - 6` is the assembled size of a RIP-relative indirect
call), and
checks the claim: with D at that place the assembler must clear the field.
Sizes, base words and the stub-to-pointer range all follow from what was
assembled.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

from asmgen.build.discover import assemble_template, discover_patch_points, rendered_into
from asmgen.build.frame import compute_frame
from asmgen.build.gather import parallel
from asmgen.build.patchkinds import KINDS
from asmgen.build.render import FieldUse
from asmgen.build.runtime import Field, PatchPoint
from asmgen.build.source import Assembly, ListingLine, Statement
from asmgen.build.unitruntime import (
    RESOLVER_ADDR,
    RESOLVER_PTR,
    STUB_PTR,
    Unit,
    UnitField,
    write_stubs,
    write_trampolines,
)
from asmgen.errors import AsmgenError
from asmgen.spec import Spec

TEMPLATES = {"trampoline": "trampoline.s.j2", "stub": "stub.s.j2"}
TARGETS = {"trampoline": (RESOLVER_PTR, RESOLVER_ADDR), "stub": (STUB_PTR,)}
# The label a trampoline template puts at its return address: the resolver
# subtracts `trampoline.call_size` from it to find the trampoline.
RETURN_LABEL = "TrampolineReturn"
# LLVM keeps StubToPointerMaxDisplacement in an `unsigned`.
UNSIGNED_MAX = (1 << 32) - 1
# The smallest page size of the arches ORC supports: LocalIndirectStubsInfo
# rounds stub blocks to whole pages and asserts the stub size divides them.
MIN_PAGE_SIZE = 0x1000


@dataclass(frozen=True)
class UnitTable:
    """One trampoline or stub, as assembled, with its fields."""

    role: str  # "trampoline" or "stub"
    spec: Spec
    template_path: Path
    unit: Unit
    statements: tuple[Statement, ...]
    labels: dict[str, int]
    patches: tuple[PatchPoint, ...]  # the unit's one patch, as layout found it
    listing: tuple[ListingLine, ...] | None = None  # as for Table.listing

    @property
    def size(self) -> int:
        return self.unit.size

    @property
    def code(self) -> bytes:
        return self.unit.code

    @property
    def byteorder(self) -> str:
        return self.spec.endian


def _signed(bits: int, width: int) -> int:
    return bits - (1 << width) if bits >> (width - 1) else bits


def _displacement_for(kind_name: str, bits: int, bias: int) -> int:
    """The displacement from the label that the assembler encodes as `bits`."""
    kind = KINDS[kind_name]
    return (_signed(bits, kind.bits) << kind.shift) + bias


def _biases(spec: Spec, path: Path, fields, base: Assembly) -> dict[int, int]:
    """For every PC-relative field: where its displacement is measured from,
    as an offset from the patch's label."""
    biases = {}
    for index, use in enumerate(fields):
        kind = KINDS[use.kind]
        if not kind.pcrel:
            continue
        if use.patch not in base.labels:
            raise AsmgenError(
                f"patch {use.patch!r} has no label; a PC-relative field is measured from it",
                path,
            )
        if kind.anchor == "next":
            holder = rendered_into(base.statements, index)
            if holder is None:
                raise AsmgenError(
                    f"patch field {use.patch} ({use.kind}) is not in a statement", path
                )
            stmt = base.statements[holder]
            biases[index] = stmt.offset + stmt.size - base.labels[use.patch]
        else:
            biases[index] = 0
    return biases


def build_unit(spec: Spec, template_path: Path, role: str) -> UnitTable:
    frame = compute_frame(spec)
    # Units hold their assembled base words, whatever the resolver table does,
    # and the resolver's placeholders are not theirs.
    spec = spec.model_copy(
        update={
            "table": spec.table.model_copy(update={"patched_words": "assembled"}),
            "placeholders": {},
        }
    )

    def first_pass(index: int, use: FieldUse) -> int:
        return 0

    rendered, first = assemble_template(spec, template_path, frame, first_pass)
    path = rendered.path
    biases = _biases(spec, path, rendered.fields, first)

    def operand(index: int, use: FieldUse, bits: int) -> int:
        if KINDS[use.kind].operand == "displacement":
            return _displacement_for(use.kind, bits, biases[index])
        return bits

    def clear(index: int, use: FieldUse) -> int:
        return operand(index, use, 0)

    rendered, base = assemble_template(spec, template_path, frame, clear, first.labels)

    def probe(values: dict[int, int]) -> Assembly:
        def value(index: int, use: FieldUse) -> int:
            bits = values.get(index)
            return clear(index, use) if bits is None else operand(index, use, bits)

        return assemble_template(spec, template_path, frame, value, base.labels)[1]

    points = discover_patch_points(spec, rendered, base, probe)
    names = [p.name for p in points]
    if len(points) != 1 or names[0] not in TARGETS[role]:
        raise AsmgenError(
            f"a {role} template has one patch, named {' or '.join(TARGETS[role])}; "
            f"found {', '.join(names) or 'none'}",
            path,
        )
    point = points[0]
    order = spec.endian
    unit_fields = []
    for field in point.fields:
        stored = int.from_bytes(base.code[field.offset : field.offset + field.size], order)
        if stored & field.mask:
            raise AsmgenError(
                f"patch field {point.name} ({field.kind}) is not clear when its displacement "
                f"is measured where {field.kind} says the hardware measures it from; "
                f"the assembler encoded {(stored & field.mask) >> field.shift:#x}",
                path,
            )
    indices = [i for i, use in enumerate(rendered.fields) if use.patch == point.name]
    for index, field in zip(indices, point.fields, strict=True):
        unit_fields.append(_unit_field(field, base.labels[point.name] + biases.get(index, 0)))
    unit = Unit(base.code, point.name, tuple(unit_fields))
    table = UnitTable(role, spec, template_path, unit, base.statements, base.labels, points)
    if role == "trampoline":
        _check_call_size(spec, table, path)
    if role == "stub" and MIN_PAGE_SIZE % table.size:
        # getIndirectStubsBlockSizes asserts it: a page holds whole stubs.
        raise AsmgenError(
            f"the stub is {table.size:#x} bytes, which does not divide a {MIN_PAGE_SIZE:#x}-byte "
            "page; LLVM allocates stubs by the page",
            path,
            hint="pad the stub to a power of two (.balign)",
        )
    return table


def _unit_field(field: Field, anchor: int) -> UnitField:
    """`anchor`: the unit offset a PC-relative field's displacement is measured from."""
    kind = KINDS[field.kind]
    low, high = kind.value_range(field.bits)
    return UnitField(field, anchor if kind.pcrel else None, low, high, kind.align, kind.limit)


def _check_call_size(spec: Spec, table: UnitTable, path: Path) -> None:
    if RETURN_LABEL not in table.labels:
        raise AsmgenError(
            f"a trampoline template marks its return address with `{RETURN_LABEL}:`", path
        )
    returns_at = table.labels[RETURN_LABEL]
    if returns_at != spec.trampoline.call_size:
        raise AsmgenError(
            f"trampoline.call_size is {spec.trampoline.call_size:#x}, but the trampoline "
            f"returns at offset {returns_at:#x}: the resolver would not find its trampoline",
            path,
            # The call whose return address that is.
            next(
                (s.template_line for s in table.statements if s.offset + s.size == returns_at), None
            ),
        )


def max_displacement(stub: UnitTable, pointer_size: int) -> int:
    """The largest |pointer - stub| that every stub can reach, either way
    (LLVM's StubToPointerMaxDisplacement)."""
    limit = (1 << (8 * pointer_size)) - 1
    for unit_field in stub.unit.fields:
        if unit_field.anchor is None or unit_field.high - unit_field.low >= limit:
            continue
        # A pointer D bytes past the stub gives the field D - anchor.
        reach_up = unit_field.high + unit_field.anchor
        reach_down = -(unit_field.low + unit_field.anchor)
        limit = min(limit, reach_up, reach_down)
    return min(limit, UNSIGNED_MAX)


@dataclass(frozen=True)
class UnitBlocks:
    """The trampoline/stub interface verify runs (verify.model.Units) over two
    units' runtime records: what a spec's built units give, and what review
    reads back from a tables.json record.  The generated module's table
    objects offer the same interface with the same unitruntime functions."""

    trampoline: Unit
    stub: Unit
    stub_to_pointer_max_displacement: int
    pointer_size: int
    byteorder: str

    @property
    def trampoline_size(self) -> int:
        return self.trampoline.size

    @property
    def stub_size(self) -> int:
        return self.stub.size

    def write_trampolines(self, block_addr: int, resolver_addr: int, n: int) -> bytes:
        args = (self.pointer_size, self.byteorder, ENCODERS_FOR_UNITS)
        return write_trampolines(self.trampoline, *args, block_addr, resolver_addr, n)

    def write_stubs(self, stubs_addr: int, ptrs_addr: int, n: int) -> bytes:
        args = (self.pointer_size, self.byteorder, ENCODERS_FOR_UNITS)
        return write_stubs(self.stub, *args, stubs_addr, ptrs_addr, n)


@dataclass(frozen=True)
class Units:
    """A spec's trampoline and stub as assembled (for the emitters), and
    their block writers (`blocks`, which Table's writers use too)."""

    spec: Spec
    trampoline: UnitTable
    stub: UnitTable

    @property
    def pointer_size(self) -> int:
        return self.spec.pointer_size

    @property
    def stub_to_pointer_max_displacement(self) -> int:
        return max_displacement(self.stub, self.pointer_size)

    @property
    def blocks(self) -> UnitBlocks:
        return UnitBlocks(
            self.trampoline.unit,
            self.stub.unit,
            self.stub_to_pointer_max_displacement,
            self.pointer_size,
            self.spec.endian,
        )

    def write_trampolines(self, block_addr: int, resolver_addr: int, n: int) -> bytes:
        return self.blocks.write_trampolines(block_addr, resolver_addr, n)

    def write_stubs(self, stubs_addr: int, ptrs_addr: int, n: int) -> bytes:
        return self.blocks.write_stubs(stubs_addr, ptrs_addr, n)


def _raw(name: str):
    """The kind's expression without its range check: the unit field checks
    the range it was discovered with."""
    kind = KINDS[name]
    code = compile(kind.expr, name, "eval")
    return lambda value: eval(code, {}, {"value": value}) & kind.mask


ENCODERS_FOR_UNITS = {name: _raw(name) for name in KINDS}


def unit_template(spec: Spec, templates_dir: Path, role: str) -> Path:
    return templates_dir / spec.arch / TEMPLATES[role]


def build_units(spec: Spec, templates_dir: Path) -> Units | None:
    """The spec's units, or None when its arch has no trampoline and stub templates."""
    paths = {role: unit_template(spec, templates_dir, role) for role in TEMPLATES}
    present = [role for role, path in paths.items() if path.is_file()]
    if not present:
        return None
    if len(present) != len(paths):
        missing = next(path for path in paths.values() if not path.is_file())
        raise AsmgenError(f"template {missing} not found for arch {spec.arch!r}")
    trampoline, stub = parallel(
        [partial(build_unit, spec, paths[role], role) for role in ("trampoline", "stub")]
    )
    return Units(spec, trampoline, stub)
