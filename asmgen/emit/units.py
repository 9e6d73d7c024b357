"""The trampoline and stub parts of each generated file (Python, C++, JSON).

The emitters of the resolver tables call in here, so that each output keeps
one shape: the per-ABI object or struct gains the sizes and the two block
writers beside its resolver.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass

from asmgen.build import unitruntime
from asmgen.build.patchkinds import KINDS
from asmgen.build.table import Table
from asmgen.build.unitruntime import RESOLVER_PTR, UnitField
from asmgen.build.units import UnitTable, max_displacement
from asmgen.emit.explain import lines_of

# ---------------------------------------------------------------- Python


def python_runtime_source() -> str:
    """unitruntime.py without its docstring, future import and relative import."""
    body = inspect.getsource(unitruntime).split('"""', 2)[2]
    body = body.replace("from __future__ import annotations\n", "")
    body = re.sub(r"^from \.runtime import .*\n", "", body, flags=re.MULTILINE)
    # The generated module imports these names once, at the top of runtime.py.
    body = body.replace("from collections.abc import Callable, Mapping\n", "")
    body = body.replace("from dataclasses import dataclass\n", "")
    return body.strip() + "\n"


def unit_kinds(table: Table) -> set[str]:
    if table.units is None:
        return set()
    return {
        f.field.kind
        for unit in (table.units.trampoline, table.units.stub)
        for f in unit.unit.fields
    }


def _unit_repr(unit: UnitTable) -> str:
    fields = "".join(
        f"            UnitField(\n"
        f"                Field({f.field.offset:#x}, {f.field.size}, {f.field.shift}, "
        f"{f.field.bits}, {f.field.kind!r}),\n"
        f"                {f.anchor if f.anchor is None else hex(f.anchor)}, {f.low:#x}, "
        f"{f.high:#x}, {f.align}, {f.limit!r},\n"
        f"            ),\n"
        for f in unit.unit.fields
    )
    return (
        f"Unit(\n        bytes.fromhex({unit.code.hex()!r}),\n        {unit.unit.target!r},\n"
        f"        (\n{fields}        ),\n    )"
    )


def python_fields(table: Table) -> str:
    """Keyword arguments of the generated `ResolverTable(...)` for the units."""
    units = table.units
    if units is None:
        return ""
    return (
        f"    stub_to_pointer_max_displacement={units.stub_to_pointer_max_displacement:#x},\n"
        f"    trampoline={_unit_repr(units.trampoline)},\n"
        f"    stub={_unit_repr(units.stub)},\n"
    )


PYTHON_CLASS_FIELDS = """    stub_to_pointer_max_displacement: int = 0
    trampoline: Unit | None = None
    stub: Unit | None = None
"""

PYTHON_METHODS = '''
    def _unit(self, unit: Unit | None) -> Unit:
        if unit is None:
            raise ValueError(f"{self.abi}: no trampolines or stubs")
        return unit

    @property
    def trampoline_size(self) -> int:
        return self._unit(self.trampoline).size

    @property
    def stub_size(self) -> int:
        return self._unit(self.stub).size

    def write_trampolines(self, block_addr: int, resolver_addr: int, n: int) -> bytes:
        """`n` trampolines linked at `block_addr` that call the resolver (through
        the pointer slot after them, where the arch needs one)."""
        return write_trampolines(
            self._unit(self.trampoline),
            self.pointer_size,
            self.byteorder,
            ENCODERS,
            block_addr,
            resolver_addr,
            n,
        )

    def write_stubs(self, stubs_addr: int, ptrs_addr: int, n: int) -> bytes:
        """`n` stubs linked at `stubs_addr`; stub I jumps through the pointer at
        `ptrs_addr + I * pointer_size`."""
        return write_stubs(
            self._unit(self.stub),
            self.pointer_size,
            self.byteorder,
            ENCODERS,
            stubs_addr,
            ptrs_addr,
            n,
        )
'''

# ---------------------------------------------------------------- C++


@dataclass(frozen=True)
class CppStyle:
    """Where the C++ writers go: the standalone header (uint64_t addresses,
    inline, helpers in `detail::`), the ORC-ready header (LLVM's ExecutorAddr,
    inline, helpers in `orcabi_detail::`, writeResolverCode also takes its own
    target address as LLVM calls it) or LLVM's OrcABISupport.cpp (ExecutorAddr,
    out of line, file-static helpers)."""

    address: str  # parameter type of an address
    value: str  # appended to an address parameter to get its uint64_t
    helpers: str  # qualifier of patchField / displacement
    helper_storage: str  # before a helper's definition
    storage: str  # before a writer's (out-of-class) definition
    # The resolver's fields are written with plain memcpy statements rather
    # than the headers' helpers (emit/cpp_fields.py).
    inline_fields: bool = False


HEADER = CppStyle("uint64_t", "", "detail::", "inline ", "inline ")
ORC = CppStyle("llvm::orc::ExecutorAddr", ".getValue()", "orcabi_detail::", "inline ", "inline ")
LLVM = CppStyle("ExecutorAddr", ".getValue()", "", "static ", "", inline_fields=True)

PATCH_FIELD = "patchField"
DISPLACEMENT = "displacement"


def cpp_helpers(style: CppStyle) -> dict[str, str]:
    """The helper definitions the unit writers call, by name."""
    storage = style.helper_storage
    return {
        PATCH_FIELD: f"""/// Replaces the bits under Mask in the container at Loc (target byte
/// order, which ORC assumes equals the host's) with Value shifted into place.
template <typename T>
{storage}void {PATCH_FIELD}(char *Loc, T Mask, unsigned Shift, uint64_t Value) {{
  T Word;
  memcpy(&Word, Loc, sizeof(T));
  Word = (Word & ~Mask) | (static_cast<T>(Value << Shift) & Mask);
  memcpy(Loc, &Word, sizeof(T));
}}
""",
        DISPLACEMENT: f"""/// Target - From in the target's address width, sign-extended: the
/// displacement a PC-relative field holds.
{storage}int64_t {DISPLACEMENT}(uint64_t Target, uint64_t From, unsigned PointerSize) {{
  uint64_t D = Target - From;
  if (PointerSize < 8) {{
    uint64_t Sign = 1ULL << (8 * PointerSize - 1);
    D &= (Sign << 1) - 1;
    return static_cast<int64_t>(D ^ Sign) - static_cast<int64_t>(Sign);
  }}
  return static_cast<int64_t>(D);
}}
""",
    }


def helpers_used(table: Table) -> list[str]:
    """Names from cpp_helpers() that the table's unit writers call."""
    units = table.units
    if units is None:
        return []
    fields = [f for unit in (units.trampoline, units.stub) for f in unit.unit.fields]
    used = [PATCH_FIELD] if fields else []
    if any(f.anchor is not None for f in fields):
        used.append(DISPLACEMENT)
    return used


def unit_constants(table: Table) -> dict[str, int]:
    """The class constants of the units, in LLVM's order."""
    units = table.units
    if units is None:
        return {}
    return {
        "PointerSize": units.pointer_size,
        "TrampolineSize": units.trampoline.size,
        "StubSize": units.stub.size,
        "StubToPointerMaxDisplacement": max_displacement(units.stub, units.pointer_size),
    }


def cpp_members(table: Table) -> str:
    return "".join(
        f"  static constexpr unsigned {name} = "
        + (f"{value:#x}" if name == "StubToPointerMaxDisplacement" else f"{value}")
        + ";\n"
        for name, value in unit_constants(table).items()
    )


TRAMPOLINES_FN = "writeTrampolines"
STUBS_FN = "writeIndirectStubsBlock"


def signatures(style: CppStyle, scope: str = "") -> dict[str, str]:
    """`void [scope::]writeTrampolines(...)` and the stubs writer, with LLVM's
    parameter names."""
    a = style.address
    return {
        TRAMPOLINES_FN: f"void {scope}{TRAMPOLINES_FN}(char *TrampolineBlockWorkingMem, "
        f"{a} TrampolineBlockTargetAddress, {a} ResolverAddr, unsigned NumTrampolines)",
        STUBS_FN: f"void {scope}{STUBS_FN}(char *StubsBlockWorkingMem, "
        f"{a} StubsBlockTargetAddress, {a} PointersBlockTargetAddress, unsigned NumStubs)",
    }


def cpp_declarations(table: Table, style: CppStyle = HEADER) -> str:
    if table.units is None:
        return ""
    return "".join(f"  static {s};\n" for s in signatures(style).values())


def _unit_array(unit: UnitTable, name: str, element: str) -> list[str]:
    size = 1 if element == "uint8_t" else 4
    rows = []
    for line in lines_of(unit):
        values = [
            f"0x{int.from_bytes(line.data[i : i + size], unit.byteorder):0{2 * size}x}"
            for i in range(0, len(line.data), size)
        ]
        rows.append((", ".join(values) + ",", f"{line.offset:#04x}: {line.text}"))
    column = max(len(v) for v, _ in rows) + 1
    return [
        "  // clang-format off",
        f"  const {element} {name}[] = {{",
        *(f"      {v:<{column}}// {c}" for v, c in rows),
        "  };",
        "  // clang-format on",
    ]


def _field_lines(
    unit_field: UnitField, names: dict[int, str], unit: UnitTable, target: str, style: CppStyle
) -> list[str]:
    """Statements that set one field; `names` maps each anchor to the variable
    that holds the displacement from it (declared by its first field)."""
    field = unit_field.field
    kind = KINDS[field.kind]
    lines = []
    if unit_field.anchor is None:
        value = target
        if unit_field.high < (1 << 64) - 1:
            lines.append(
                f'  assert({target} <= {unit_field.high:#x}ULL && "{kind.name}: address");'
            )
    else:
        if unit_field.anchor not in names:
            names[unit_field.anchor] = f"{unit.unit.target}Disp" + (
                str(len(names)) if names else ""
            )
            lines.append(
                f"  int64_t {names[unit_field.anchor]} = {style.helpers}{DISPLACEMENT}({target}, "
                f"UnitAddr + {unit_field.anchor:#x}, {unit.spec.pointer_size});"
            )
        value = names[unit_field.anchor]
        if not kind.partner:
            lines.append(
                f"  assert({value} >= {unit_field.low:#x}LL && {value} <= "
                f'{unit_field.high:#x}LL && "{unit_field.limit or kind.name}");'
            )
        if unit_field.align > 1:
            lines.append(
                f'  assert({value} % {unit_field.align} == 0 && "{kind.name}: misaligned");'
            )
    ctype = f"uint{field.size * 8}_t"
    expr = re.sub(r"\bvalue\b", value, kind.expr)
    lines.append(
        f"  {style.helpers}{PATCH_FIELD}<{ctype}>(Unit + {field.offset:#x}, "
        f"{ctype}({field.mask:#x}ULL), {field.shift}, {expr});"
    )
    return lines


def _loop(
    unit: UnitTable,
    style: CppStyle,
    array: str,
    mem: str,
    addr: str,
    count: str,
    size: str,
    target: str,
) -> list[str]:
    body: list[str] = []
    names: dict[int, str] = {}
    for unit_field in unit.unit.fields:
        body += _field_lines(unit_field, names, unit, target, style)
    indented = ["  " + line for line in body]
    pc_relative = any(f.anchor is not None for f in unit.unit.fields)
    return [
        f"  for (unsigned I = 0; I != {count}; ++I) {{",
        f"    char *Unit = {mem} + I * {size};",
        *([f"    uint64_t UnitAddr = {addr}{style.value} + I * {size};"] if pc_relative else []),
        f"    memcpy(Unit, {array}, {size});",
        *indented,
        "  }",
    ]


def _note(unit: UnitTable, note: bool) -> list[str]:
    path = unit.template_path
    return [f"  // Generated by asmgen from {path.parent.name}/{path.name}."] if note else []


def cpp_definitions(
    table: Table, style: CppStyle, note: bool = False, class_name: str | None = None
) -> dict[str, str]:
    """`Class::writeTrampolines` and `Class::writeIndirectStubsBlock`, each a
    complete definition (unformatted; callers run clang-format); with `note`,
    each opens with a comment naming its template.  `class_name` defaults to
    the spec's (LLVM's) class name."""
    units = table.units
    if units is None:
        return {}
    sigs = signatures(style, f"{class_name or table.spec.class_name}::")
    element = table.spec.arch_info.element
    pointer = f"uint{units.pointer_size * 8}_t"
    v = style.value
    trampoline = units.trampoline
    lines = [
        f"{style.storage}{sigs[TRAMPOLINES_FN]} {{",
        *_note(trampoline, note),
        *_unit_array(trampoline, "Trampoline", element),
        "  static_assert(sizeof(Trampoline) == TrampolineSize,",
        '                "TrampolineSize must match the template");',
    ]
    if trampoline.unit.target == RESOLVER_PTR:
        lines += [
            "  // The resolver's address sits after the trampolines, pointer-aligned.",
            "  unsigned OffsetToPtr = (NumTrampolines * TrampolineSize + PointerSize - 1) /",
            "                         PointerSize * PointerSize;",
            f"  {pointer} Ptr = static_cast<{pointer}>(ResolverAddr{v});",
            "  memcpy(TrampolineBlockWorkingMem + OffsetToPtr, &Ptr, sizeof(Ptr));",
            f"  uint64_t Target = TrampolineBlockTargetAddress{v} + OffsetToPtr;",
        ]
    else:
        lines.append(f"  uint64_t Target = ResolverAddr{v};")
    lines += _loop(
        trampoline,
        style,
        "Trampoline",
        "TrampolineBlockWorkingMem",
        "TrampolineBlockTargetAddress",
        "NumTrampolines",
        "TrampolineSize",
        "Target",
    )
    lines += ["}"]
    stub = units.stub
    stubs = [
        f"{style.storage}{sigs[STUBS_FN]} {{",
        *_note(stub, note),
        *_unit_array(stub, "Stub", element),
        '  static_assert(sizeof(Stub) == StubSize, "StubSize must match the template");',
    ]
    loop = _loop(
        stub,
        style,
        "Stub",
        "StubsBlockWorkingMem",
        "StubsBlockTargetAddress",
        "NumStubs",
        "StubSize",
        "Target",
    )
    # Stub I jumps through pointer I.
    loop.insert(2, f"    uint64_t Target = PointersBlockTargetAddress{v} + I * PointerSize;")
    stubs += loop
    stubs += ["}"]
    return {TRAMPOLINES_FN: "\n".join(lines), STUBS_FN: "\n".join(stubs)}


def cpp_bodies(table: Table, style: CppStyle = HEADER, class_name: str | None = None) -> str:
    definitions = cpp_definitions(table, style, class_name=class_name)
    if not definitions:
        return ""
    return "\n" + "".join(d + "\n\n" for d in definitions.values())


# ---------------------------------------------------------------- JSON


def _unit_record(unit: UnitTable) -> dict:
    order = unit.byteorder
    element = 1 if unit.spec.arch_info.element == "uint8_t" else 4
    record: dict = {
        "size": unit.size,
        "hex": unit.code.hex(),
        "words": [
            int.from_bytes(unit.code[i : i + element], order) for i in range(0, unit.size, element)
        ]
        if element > 1
        else [],
        "target": unit.unit.target,
        "fields": [],
    }
    if unit.size <= 8:
        # The whole unit as one integer in target byte order: LLVM's base word.
        record["base_word"] = int.from_bytes(unit.code, order)
    for unit_field in unit.unit.fields:
        field = unit_field.field
        kind = KINDS[field.kind]
        if order == "little":
            bit = 8 * field.offset + field.shift
        else:
            bit = 8 * (unit.size - field.offset - field.size) + field.shift
        record["fields"].append(
            {
                "offset": field.offset,
                "size": field.size,
                "shift": field.shift,
                "bit": bit,
                "width": field.bits,
                "kind": field.kind,
                "encoding": kind.expr,
                "pc_relative": unit_field.anchor is not None,
                "anchor": unit_field.anchor,
                "range": [unit_field.low, unit_field.high],
                "align": unit_field.align,
            }
        )
    return record


def json_record(table: Table) -> dict:
    units = table.units
    if units is None:
        return {}
    return {
        "trampoline": _unit_record(units.trampoline)
        | {"pointer_slot": units.trampoline.unit.target == RESOLVER_PTR},
        "stub": _unit_record(units.stub)
        | {"stub_to_pointer_max_displacement": units.stub_to_pointer_max_displacement},
    }
