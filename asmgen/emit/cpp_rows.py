"""The rows of a C++ `ResolverCode[]` initializer, one instruction a line.

Shared by the C++ header (emit_cpp) and the LLVM patch (llvm_patch), so both
print a table the same way: LLVM's element type (bytes, or instruction words
for RISC arches), each row commented with its offset and the disassembly.
"""

from __future__ import annotations

from asmgen.build.table import Table
from asmgen.emit.explain import lines_of


def element_values(table: Table, data: bytes) -> list[int]:
    """`data` as the table's C++ elements, read in the target's byte order."""
    unit = table.spec.arch_info.element_size
    return [int.from_bytes(data[i : i + unit], table.byteorder) for i in range(0, len(data), unit)]


def format_element(table: Table, value: int) -> str:
    return f"0x{value:0{2 * table.spec.arch_info.element_size}x}"


def resolver_rows(table: Table, indent: int = 6, split_words: bool = False) -> list[str]:
    """Initializer lines: values, then `// 0xNN: text`; a label is a comment line.

    With `split_words`, a line of several instruction words (a data slot) takes
    one row per word, each commented with its offset: clang-format keeps such
    a table as it is.
    """
    digits = max(2, len(f"{len(table.code):x}"))
    unit = table.spec.arch_info.element_size
    rows: list[tuple[str, str]] = []  # (values, comment); a label has no values
    for line in lines_of(table):
        for label in line.labels:
            rows.append(("", f"{label}:"))
        words = [format_element(table, v) for v in element_values(table, line.data)]
        if split_words and unit > 1:
            for index, word in enumerate(words):
                offset = f"{line.offset + index * unit:#0{digits + 2}x}:"
                rows.append((word + ",", f"{offset} {line.text}" if index == 0 else offset))
            continue
        rows.append((", ".join(words) + ",", f"{line.offset:#0{digits + 2}x}: {line.text}"))
    column = max(len(values) for values, _ in rows) + 1
    pad = " " * indent
    return [
        f"{pad}{values:<{column}}// {comment}" if values else f"{pad}// {comment}"
        for values, comment in rows
    ]
