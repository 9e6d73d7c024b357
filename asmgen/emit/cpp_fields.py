"""The C++ statements that write a resolver's patch fields into its working
memory, for every C++ writer: both headers (through the helpers of
cpp_header.prelude) and LLVM's OrcABISupport.cpp (`asmgen patch`: plain
memcpy, since LLVM's file has no such helpers for its resolvers).

Host byte order is the target's, as everywhere in ORC.  Every patch takes one
of ADDRESS_PARAMS (build/pipeline.py checks it).
"""

from __future__ import annotations

import re

from asmgen.build.patchkinds import KINDS
from asmgen.build.table import Table
from asmgen.emit.units import CppStyle

INDENT = "  "


def resolver_field_lines(table: Table, style: CppStyle) -> list[str]:
    """One indented statement a line (no newline), writing every field."""
    lines = []
    for patch in table.patches:
        for index, field in enumerate(patch.fields):
            ctype = f"uint{field.size * 8}_t"
            where = f"ResolverWorkingMem + {patch.name}Offset"
            if field.offset != patch.offset:
                where += f" + {field.offset - patch.offset:#x}"
            expr = re.sub(r"\bvalue\b", patch.name + style.value, KINDS[field.kind].expr)
            if not style.inline_fields:
                lines.append(_helper_call(field, ctype, where, expr, style))
                continue
            var = f"{patch.name}Field" + (str(index) if len(patch.fields) > 1 else "")
            lines += _inline(field, ctype, where, expr, var)
    return lines


def _helper_call(field, ctype: str, where: str, expr: str, style: CppStyle) -> str:
    if field.whole_word:
        # The table holds zero here: write the whole instruction word.
        value = f"{field.base:#x}"
        if field.bits:
            value += f" | ((({expr}) & {(1 << field.bits) - 1:#x}) << {field.shift})"
        return f"{INDENT}{style.helpers}writeWord<{ctype}>({where}, {value});"
    return (
        f"{INDENT}{style.helpers}patchField<{ctype}>({where}, "
        f"{ctype}({field.mask:#x}ULL), {field.shift}, {expr});"
    )


def _inline(field, ctype: str, where: str, expr: str, var: str) -> list[str]:
    shifted = f"uint64_t({expr})" + (f" << {field.shift}" if field.shift else "")
    bits = f"({shifted}) & {field.mask:#x}ULL"
    if field.whole_word:  # the table holds zero; write base | field
        value = f"{field.base:#x}" + (f" | {ctype}({bits})" if field.bits else "")
        lines = [f"{INDENT}{ctype} {var} = {value};"]
    elif not field.bits:
        return []
    elif field.shift == 0 and field.bits == field.size * 8:
        lines = [f"{INDENT}{ctype} {var} = {expr};"]
    else:
        lines = [
            f"{INDENT}{ctype} {var};",
            f"{INDENT}memcpy(&{var}, {where}, sizeof({var}));",
            f"{INDENT}{var} = ({var} & ~{ctype}({field.mask:#x}ULL)) | {ctype}({bits});",
        ]
    return [*lines, f"{INDENT}memcpy({where}, &{var}, sizeof({var}));"]
