"""Cost of each x86-64 resolver variant against LLVM's table, per round trip.

Prints the table that docs/variants.md holds (emulated instructions inside the
resolver, bytes of stack it reads and writes).  `--write-docs` rewrites that
table in docs/variants.md.  The figures are deterministic: they come from
unicorn, not from timing.
"""

from __future__ import annotations

import sys
from pathlib import Path

from costs import markdown, rows

from asmgen.build.pipeline import build_all
from asmgen.spec.files import spec_files

ROOT = Path(__file__).resolve().parent.parent

DOC = ROOT / "docs" / "variants.md"
FACTS = ROOT / "tests" / "fixtures" / "llvm_tables.json"
BEGIN, END = "<!-- costs:begin -->\n", "<!-- costs:end -->\n"


def main(argv: list[str]) -> int:
    items = [i for i in spec_files() if i.spec.arch == "x86_64"]
    text = markdown(rows(build_all(items), FACTS))
    print(text, end="")
    if "--write-docs" in argv:
        doc = DOC.read_text()
        start, stop = doc.index(BEGIN) + len(BEGIN), doc.index(END)
        DOC.write_text(doc[:start] + text + doc[stop:])
        print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
