"""generated/reentry/<ABI>.S: the reentry routine of LLVM's newer lazy path
(build/reentry.py) as an assembly source with CFI, one file per table whose
arch has a reentry mode.  C comments only: the file goes through the C
preprocessor when a compiler assembles it."""

from __future__ import annotations

from asmgen.build.llvm_mc import llvm_mc_version
from asmgen.build.reentry import FOLDER, RESOLVE, ROUTINE
from asmgen.build.table import Table
from asmgen.emit.provenance import header_lines


def reentry_source(table: Table) -> str:
    reentry = table.reentry
    assert reentry is not None
    spec = table.spec
    lines = [
        *header_lines([table]),
        f"Assembled for the tables with llvm-mc {llvm_mc_version()}.",
        "",
        f"{spec.abi}: {ROUTINE} for LLVM's LazyReexportsManager with",
        "JITLinkReentryTrampolines.  Entered from a reentry trampoline (tables.json:",
        f"abis.{spec.abi}.reentry.trampoline, bytes and JITLink edges), it saves",
        f"the registers, calls {RESOLVE}(trampoline address) and lands on the",
        "address it returns.",
    ]
    header = "/*\n" + "".join(f" * {line}".rstrip() + "\n" for line in lines) + " */\n"
    return header + reentry.source


def emit_reentry_sources(tables: list[Table]) -> dict[str, str]:
    return {
        f"{FOLDER}/{table.spec.abi}.S": reentry_source(table)
        for table in tables
        if table.reentry is not None
    }
