"""Every output file of a set of tables: computed in memory, compared, written.

The emitters only format; the C++ files then go through the pinned
clang-format here, the one place outputs are formatted."""

from __future__ import annotations

from functools import partial

from asmgen.build.gather import parallel
from asmgen.build.table import Table
from asmgen.emit.clangformat import clang_format
from asmgen.emit.compare import report_stale, stale_outputs, write_outputs
from asmgen.emit.cpp_header import emit_cpp
from asmgen.emit.json_tables import emit_json
from asmgen.emit.orc_header import FILENAME as ORC_HEADER
from asmgen.emit.orc_header import emit_orc_header
from asmgen.emit.python_module import emit_python
from asmgen.emit.reentry import emit_reentry_sources

OUTPUTS = {
    "orc_resolvers.py": emit_python,
    "orc_resolvers.h": emit_cpp,
    ORC_HEADER: emit_orc_header,
    "tables.json": emit_json,
}
# The outputs clang-format lays out (LLVM style).
CLANG_FORMATTED = ("orc_resolvers.h", ORC_HEADER)

__all__ = ["OUTPUTS", "render_outputs", "report_stale", "stale_outputs", "write_outputs"]


def render_outputs(tables: list[Table]) -> dict[str, str]:
    """Every output file's text, all computed before anything is written:
    the tables' files, and a reentry source per table whose arch has one."""
    texts = {name: OUTPUTS[name](tables) for name in CLANG_FORMATTED}

    def others() -> dict[str, str]:
        return {n: emit(tables) for n, emit in OUTPUTS.items() if n not in CLANG_FORMATTED}

    # clang-format runs while the other emitters work (threads, gather.py).
    *formatted, rest = parallel(
        [*(partial(clang_format, texts[name], name) for name in CLANG_FORMATTED), others]
    )
    texts.update(zip(CLANG_FORMATTED, formatted, strict=True), **rest)
    outputs = {name: texts[name] for name in OUTPUTS}
    outputs.update(emit_reentry_sources(tables))
    return outputs
