"""`asmgen docs`: write (or, with --check, compare) the ABI reference pages."""

from __future__ import annotations

from pathlib import Path

from asmgen.build.buildcache import cached_build
from asmgen.docs.marker import MARKER
from asmgen.emit.compare import report_stale, write_outputs
from asmgen.errors import AsmgenError
from asmgen.project import output


def _generated_files(out: Path) -> set[str]:
    """Files in `out` that an earlier run wrote (they carry the marker)."""
    found = set()
    for path in sorted(out.glob("*")):
        if path.suffix in (".md", ".svg") and path.is_file():
            try:
                head = path.read_text(encoding="utf-8")[:400]
            except (OSError, UnicodeDecodeError):
                continue
            if MARKER in head:
                found.add(path.name)
    return found


def _check(outputs: dict[str, str], out: Path) -> int:
    stale = report_stale(outputs, out, shown=40)
    for name in sorted(_generated_files(out) - set(outputs)):
        stale.append(name)
        print(f"{out / name}: no spec generates it any more; run `make generate`")
    if not stale:
        print(f"{out}: up to date")
    return 1 if stale else 0


def _write(outputs: dict[str, str], out: Path) -> int:
    written = write_outputs(outputs, out)
    for path in written:
        print(f"wrote {path}")
    for name in sorted(_generated_files(out) - set(outputs)):
        try:
            (out / name).unlink()
        except OSError as exc:
            raise AsmgenError(f"cannot remove stale page: {exc.strerror}", out / name) from None
        print(f"removed {out / name}")
        written.append(out / name)
    if not written:
        print(f"{out}: up to date")
    return 0


def _pages(specs: Path, templates: Path) -> dict[str, str]:
    """Every page's text: from the build cache (the pages' verdicts come from
    the emulator alone, the same on every host), or built, verified, drawn."""

    def compute() -> dict[str, str]:
        from asmgen.build.pipeline import build_all
        from asmgen.docs.pages import render_pages
        from asmgen.docs.verdict import verdicts
        from asmgen.spec.files import spec_files

        tables = build_all(spec_files(specs), templates)
        return render_pages(tables, verdicts(tables))

    return cached_build(specs, templates, ["docs"], compute)


def cmd_docs(args) -> int:
    out = output(args, "out")
    outputs = _pages(args.specs, args.templates)
    return _check(outputs, out) if args.check else _write(outputs, out)


def add_parser(sub, common, out_option) -> None:
    docs = sub.add_parser("docs", help="write the per-ABI reference pages (docs/abi)")
    out_option(docs, "docs/abi")
    docs.add_argument("--check", action="store_true", help="exit 1 if the pages are stale")
    common(docs)
    docs.set_defaults(run=cmd_docs)
