"""Emit the C++ tables in the style of LLVM's OrcABISupport.

One struct per ABI, named like LLVM's class, with the table as an array of
LLVM's element type (bytes, or instruction words for RISC arches), one
instruction a line with its offset and disassembly as a comment, the patch
offset constants, and a writeResolverCode that applies every field.
"""

from __future__ import annotations

import textwrap

from asmgen.build.patchkinds import ADDRESS_PARAMS
from asmgen.build.table import Table
from asmgen.emit import units as emit_units
from asmgen.emit import unwind as emit_unwind
from asmgen.emit.cpp_fields import resolver_field_lines
from asmgen.emit.cpp_rows import resolver_rows
from asmgen.emit.provenance import header_lines
from asmgen.spec.serving import serving_lines

# LLVM also passes the resolver's own address; asmgen's resolvers do not need
# it (no patch takes it), but the ORC-ready header accepts it as LLVM calls.
RESOLVER_TARGET = "ResolverTargetAddress"


def prelude(style: emit_units.CppStyle) -> str:
    """The helpers the writers call, in the namespace `style.helpers` names."""
    namespace = style.helpers.removesuffix("::")
    return (
        f"""namespace {namespace} {{
/// Writes a whole container that the table leaves zero (an instruction word
/// completed at run time).
template <typename T> inline void writeWord(char *Loc, uint64_t Value) {{
  T Word = static_cast<T>(Value);
  memcpy(Loc, &Word, sizeof(T));
}}

"""
        + "\n".join(emit_units.cpp_helpers(style).values())
        + f"}} // namespace {namespace}\n"
    )


def comment_lines(paragraphs: list[str], width: int = 76) -> list[str]:
    """Paragraphs wrapped for `/// ` comments within clang-format's column limit."""
    return [line for text in paragraphs for line in textwrap.wrap(text, width)]


def abi_block(
    table: Table,
    style: emit_units.CppStyle = emit_units.HEADER,
    name: str | None = None,
    doc: str = "",
    resolver_target: bool = False,
) -> str:
    """One ABI's struct and its inline writer definitions: named `name` (the
    spec's class name by default), addresses typed by `style`, `doc` lines
    after the description; with `resolver_target`, writeResolverCode takes the
    resolver's own address first, as LLVM passes it."""
    spec = table.spec
    name = name or spec.class_name
    element = spec.arch_info.element
    names = ((RESOLVER_TARGET,) if resolver_target else ()) + ADDRESS_PARAMS
    params = ", ".join(f"{style.address} {p}" for p in names)
    unused = (
        f"  (void){RESOLVER_TARGET}; // the code does not depend on where it is\n"
        if resolver_target
        else ""
    )
    offsets = "".join(
        f"  static constexpr unsigned {p.name}Offset = {p.offset:#x};\n" for p in table.patches
    )
    body = "\n".join(resolver_rows(table))
    serving = "".join(f"/// {line}\n" for line in comment_lines(serving_lines(spec)))
    comment = "".join(f"/// {line}\n" if line else "///\n" for line in doc.splitlines())
    return f"""
/// {spec.abi}: {spec.description}
{serving}{comment}struct {name} {{
  static constexpr unsigned ResolverCodeSize = {len(table.code):#x};
{offsets}{emit_units.cpp_members(table)}{emit_unwind.cpp_members(table)}
  static void writeResolverCode(char *ResolverWorkingMem, {params});
{emit_units.cpp_declarations(table, style)}}};

inline void {name}::writeResolverCode(char *ResolverWorkingMem, {params}) {{
{unused}  // clang-format off
  const {element} ResolverCode[] = {{
{body}
  }};
  // clang-format on
  static_assert(sizeof(ResolverCode) == ResolverCodeSize,
                "ResolverCodeSize must match the table");
  memcpy(ResolverWorkingMem, ResolverCode, sizeof(ResolverCode));
{chr(10).join(resolver_field_lines(table, style))}
}}
{emit_units.cpp_bodies(table, style, name)}"""


INCLUDES = "#include <cassert>\n#include <cstdint>\n#include <cstring>\n"


def emit_cpp(tables: list[Table]) -> str:
    header = "".join(f"// {line}\n" for line in header_lines(tables))
    text = (
        header
        + "\n#ifndef ASMGEN_ORC_RESOLVERS_H\n#define ASMGEN_ORC_RESOLVERS_H\n\n"
        + INCLUDES
        + "\nnamespace asmgen {\n"
        + prelude(emit_units.HEADER)
        + "".join(abi_block(t) for t in tables)
        + "\n} // namespace asmgen\n\n#endif // ASMGEN_ORC_RESOLVERS_H\n"
    )
    return text
