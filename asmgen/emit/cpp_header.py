"""Emit the C++ tables in the style of LLVM's OrcABISupport.

One struct per ABI, named like LLVM's class, with the table as an array of
LLVM's element type (bytes, or instruction words for RISC arches), one
instruction a line with its offset and disassembly as a comment, the patch
offset constants, and a writeResolverCode that applies every field.
"""

from __future__ import annotations

import re

from asmgen.build.patchkinds import KINDS
from asmgen.build.table import Table
from asmgen.emit import units as emit_units
from asmgen.emit import unwind as emit_unwind
from asmgen.emit.clangformat import clang_format
from asmgen.emit.cpp_rows import resolver_rows
from asmgen.emit.provenance import header_lines
from asmgen.errors import AsmgenError

# LLVM's names for the addresses the resolver is patched with.
ADDRESS_PARAMS = ("ReentryFnAddr", "ReentryCtxAddr")

_PRELUDE = (
    """
#include <cassert>
#include <cstdint>
#include <cstring>

namespace asmgen {
namespace detail {
/// Writes a whole container that the table leaves zero (an instruction word
/// completed at run time).
template <typename T> inline void writeWord(char *Loc, uint64_t Value) {
  T Word = static_cast<T>(Value);
  memcpy(Loc, &Word, sizeof(T));
}

"""
    + "\n".join(emit_units.cpp_helpers(emit_units.HEADER).values())
    + """} // namespace detail
"""
)


def _field_call(table: Table) -> list[str]:
    calls = []
    for patch in table.patches:
        if any(f.bits for f in patch.fields) and patch.name not in ADDRESS_PARAMS:
            raise AsmgenError(
                f"patch {patch.name!r} takes an address, but the C++ writeResolverCode only "
                f"receives {' and '.join(ADDRESS_PARAMS)}",
                table.template_path,
                next((s.template_line for s in table.statements if s.offset == patch.offset), None),
            )
        for field in patch.fields:
            ctype = f"uint{field.size * 8}_t"
            where = f"ResolverWorkingMem + {patch.name}Offset"
            if field.offset != patch.offset:
                where += f" + {field.offset - patch.offset:#x}"
            expr = re.sub(r"\bvalue\b", patch.name, KINDS[field.kind].expr)
            if field.whole_word:
                # The table holds zero here: write the whole instruction word.
                value = f"{field.base:#x}"
                if field.bits:
                    value += f" | ((({expr}) & {(1 << field.bits) - 1:#x}) << {field.shift})"
                calls.append(f"  detail::writeWord<{ctype}>({where}, {value});")
            else:
                calls.append(
                    f"  detail::patchField<{ctype}>({where}, "
                    f"{ctype}({field.mask:#x}ULL), {field.shift}, {expr});"
                )
    return calls


def _abi_block(table: Table) -> str:
    spec = table.spec
    name = spec.class_name
    element = spec.arch_info.element
    params = ", ".join(f"uint64_t {p}" for p in ADDRESS_PARAMS)
    offsets = "".join(
        f"  static constexpr unsigned {p.name}Offset = {p.offset:#x};\n" for p in table.patches
    )
    body = "\n".join(resolver_rows(table))
    return f"""
/// {spec.abi}: {spec.description}
struct {name} {{
  static constexpr unsigned ResolverCodeSize = {len(table.code):#x};
{offsets}{emit_units.cpp_members(table)}{emit_unwind.cpp_members(table)}
  static void writeResolverCode(char *ResolverWorkingMem, {params});
{emit_units.cpp_declarations(table)}}};

inline void {name}::writeResolverCode(char *ResolverWorkingMem, {params}) {{
  // clang-format off
  const {element} ResolverCode[] = {{
{body}
  }};
  // clang-format on
  static_assert(sizeof(ResolverCode) == ResolverCodeSize,
                "ResolverCodeSize must match the table");
  memcpy(ResolverWorkingMem, ResolverCode, sizeof(ResolverCode));
{chr(10).join(_field_call(table))}
}}
{emit_units.cpp_bodies(table)}"""


def emit_cpp(tables: list[Table]) -> str:
    header = "".join(f"// {line}\n" for line in header_lines(tables))
    text = (
        header
        + "\n#ifndef ASMGEN_ORC_RESOLVERS_H\n#define ASMGEN_ORC_RESOLVERS_H\n"
        + _PRELUDE
        + "".join(_abi_block(t) for t in tables)
        + "\n} // namespace asmgen\n\n#endif // ASMGEN_ORC_RESOLVERS_H\n"
    )
    return clang_format(text, "orc_resolvers.h")
