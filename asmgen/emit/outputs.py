"""Every output file of a set of tables: computed in memory, compared, written.

The emitters only format; the C++ files then go through the pinned
clang-format here, the one place outputs are formatted."""

from __future__ import annotations

import difflib
import sys
from pathlib import Path

from asmgen.build.table import Table
from asmgen.emit.atomic import write_files
from asmgen.emit.clangformat import clang_format
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


def render_outputs(tables: list[Table]) -> dict[str, str]:
    """Every output file's text, all computed before anything is written:
    the tables' files, and a reentry source per table whose arch has one."""
    outputs = {name: emit(tables) for name, emit in OUTPUTS.items()}
    for name in CLANG_FORMATTED:
        outputs[name] = clang_format(outputs[name], name)
    outputs.update(emit_reentry_sources(tables))
    return outputs


def write_outputs(outputs: dict[str, str], out_dir: Path) -> list[Path]:
    """Write the changed files as one set (see output.py); the paths written."""
    return write_files({out_dir / name: text for name, text in outputs.items()})


def stale_outputs(outputs: dict[str, str], out_dir: Path) -> list[str]:
    stale = []
    for name, text in outputs.items():
        path = out_dir / name
        try:
            current = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            current = None
        if current != text:
            stale.append(name)
    return stale


def report_stale(outputs: dict[str, str], out_dir: Path, shown: int = 60) -> list[str]:
    """Print the start of a diff for each stale file; the names of the stale files."""
    stale = stale_outputs(outputs, out_dir)
    for name in stale:
        path = out_dir / name
        try:
            old = path.read_text(encoding="utf-8").splitlines(keepends=True)
        except (OSError, UnicodeDecodeError):
            old = []
        new = outputs[name].splitlines(keepends=True)
        diff = difflib.unified_diff(old, new, f"{path} (checked in)", f"{path} (fresh)")
        sys.stdout.writelines(list(diff)[:shown])
        print(f"{path}: stale; run `make generate`")
    return stale
