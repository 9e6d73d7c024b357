"""Emit generated/tables.json, the machine-readable form other tools read.

Keys under each ABI are stable: element, size, hex, patches{name: offset,
size, kind}.  New information goes in new keys beside them.
"""

from __future__ import annotations

import json

from asmgen.build.table import Table
from asmgen.emit import unwind as emit_unwind
from asmgen.emit.provenance import header_lines
from asmgen.emit.units import json_record


def table_record(table: Table) -> dict:
    spec = table.spec
    record = {
        "element": spec.arch_info.element,
        "size": len(table.code),
        "hex": table.code.hex(),
        "patches": {
            p.name: {
                "offset": p.offset,
                "size": p.size,
                "kind": p.kind,
                "fields": [
                    {
                        "offset": f.offset,
                        "size": f.size,
                        "shift": f.shift,
                        "bits": f.bits,
                        "kind": f.kind,
                        "base": f.base,
                        "whole_word": f.whole_word,
                    }
                    for f in p.fields
                ],
            }
            for p in table.patches
        },
        "llvm_class": spec.class_name,
        "arch": spec.arch,
        "endian": spec.endian,
        "syntax": spec.syntax,
        "pointer_size": spec.pointer_size,
        "frame": {
            "style": table.frame.style,
            "size_at_call": table.frame.size_at_call,
            "aligned_at_call": table.frame.aligned_at_call,
            "pushes": table.frame.pushes,
            "vector_area": table.frame.vector_area,
            "padding": table.frame.padding,
            "shadow": table.frame.shadow,
            "stack_align": table.frame.align,
        },
    } | json_record(table)
    unwind = emit_unwind.json_record(table)
    if unwind is not None:
        record["unwind"] = unwind
    if table.reentry is not None:
        reentry = table.reentry.record()
        reentry["source"] = reentry["source"].replace("<abi>", spec.abi)
        record["reentry"] = reentry
    return record


def emit_json(tables: list[Table]) -> str:
    document = {
        "generated_by": header_lines(tables),
        "abis": {t.spec.abi: table_record(t) for t in tables},
    }
    return json.dumps(document, indent=2) + "\n"
