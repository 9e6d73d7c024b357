"""The row comments of the fixture's `ResolverCode[]` tables, from asmgen's own
disassembler (tests/fixtures/llvm_tree).

The fixture holds LLVM's table values (facts) in asmgen's words: each row's
comment is the offset and text of the instruction its first value belongs to,
as `asmgen explain` disassembles it, never LLVM's comment.  Comment lines and
blank lines between rows are the fixture's own and are kept.

    python tests/fixture_tables.py          # exit 1 if a comment is stale
    python tests/fixture_tables.py --write  # rewrite them
"""

from __future__ import annotations

import sys
from pathlib import Path

from asmgen.build.disasm import decode_code
from asmgen.patch import orc_source as orc
from asmgen.resources import SPECS_DIR
from asmgen.spec.files import spec_files

TREE = Path(__file__).resolve().parent / "fixtures" / "llvm_tree"


def _decoders(header: orc.Source) -> dict[str, tuple]:
    """Class whose writeResolverCode the .cpp defines -> (arch, syntax) of a spec
    of that class (a forwarding class lends its spec to the base it calls)."""
    decls = orc.classes(header)
    out = {}
    for item in spec_files(SPECS_DIR):
        spec = item.spec
        decl = decls.get(spec.class_name)
        if decl is None:
            continue
        for name in (spec.class_name, decl.forwards_to):
            if name and spec.endian == "little":
                out.setdefault(name, (spec.arch_info, spec.syntax))
    return out


def render(cpp: orc.Source, header: orc.Source) -> str:
    """The .cpp with every table row's comment rewritten."""
    decoders = _decoders(header)
    edits = []
    for name, fn in orc.resolver_functions(cpp).items():
        arch, syntax = decoders[name.split("::")[0]]
        values = orc.table_values(cpp, fn)
        unit = arch.element_size
        code = b"".join(v.to_bytes(unit, "little") for v in values)
        starts = [(offset, text) for offset, _, text in decode_code(arch, "little", syntax, code)]
        digits = max(2, len(f"{len(code):x}"))
        literals = [n for n in fn.values.named_children if n.type == "number_literal"]
        first_on_row: dict[int, int] = {}
        for index, literal in enumerate(literals):
            first_on_row.setdefault(literal.start_point.row, index)
        for comment in (n for n in fn.values.children if n.type == "comment"):
            index = first_on_row.get(comment.start_point.row)
            if index is None:
                continue  # a comment line of the fixture's own
            offset, text = next(s for s in reversed(starts) if s[0] <= index * unit)
            edits.append((comment, f"// {offset:#0{digits + 2}x}: {text}"))
    data = cpp.data
    for comment, text in sorted(edits, key=lambda e: -e[0].start_byte):
        data = data[: comment.start_byte] + text.encode() + data[comment.end_byte :]
    return data.decode()


def main(argv: list[str]) -> int:
    cpp = orc.load(TREE, orc.CPP_PATH)
    fresh = render(cpp, orc.load(TREE, orc.HEADER_PATH))
    if fresh == cpp.data.decode():
        return 0
    if "--write" in argv:
        cpp.path.write_text(fresh)
        print(f"wrote {cpp.path}")
        return 0
    print(f"{cpp.path}: stale table comments; run python {__file__} --write", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
