"""The `asmgen` command line.  Every failure is one `path:line: error:` line and exit 2."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from asmgen.build.pipeline import build, build_all
from asmgen.docs.command import add_parser as add_docs_parser
from asmgen.emit.explain import explain_text
from asmgen.emit.outputs import render_outputs, report_stale, write_outputs
from asmgen.errors import AsmgenError
from asmgen.patch import patcher as llvm_patch
from asmgen.project import add_option as add_project_option
from asmgen.project import output
from asmgen.project import resolve as resolve_project
from asmgen.review.cli import register as register_review
from asmgen.spec.files import select, spec_files
from asmgen.verify.cli import register as register_verify


def _common(parser: argparse.ArgumentParser) -> None:
    """--specs, --templates and --project (defaults: asmgen/project.py)."""
    parser.add_argument("--specs", type=Path, help="folder of ABI specs")
    parser.add_argument("--templates", type=Path, help="folder of per-arch templates")
    add_project_option(parser)


def _out_option(parser: argparse.ArgumentParser, relative: str) -> None:
    parser.add_argument("--out", type=Path, help=f"output folder (default: <project>/{relative})")
    parser.set_defaults(project_outputs={"out": relative})


def cmd_generate(args) -> int:
    out = output(args, "out")
    tables = build_all(select(spec_files(args.specs), args.abi), args.templates)
    written = write_outputs(render_outputs(tables), out)
    for path in written:
        print(f"wrote {path}")
    if not written:
        print(f"{out}: up to date")
    return 0


def cmd_check(args) -> int:
    out = output(args, "out")
    tables = build_all(spec_files(args.specs), args.templates)
    outputs = render_outputs(tables)
    stale = report_stale(outputs, out)
    if not stale:
        print(f"{out}: up to date")
    return 1 if stale else 0


def cmd_explain(args) -> int:
    (item,) = select(spec_files(args.specs), [args.abi])
    print(explain_text(build(item, args.templates)), end="")
    return 0


def cmd_cross_check(args) -> int:
    from asmgen.build.crosscheck import cross_check, supports_both, unexplained

    failures = 0
    for item in select(spec_files(args.specs), args.abi):
        if not supports_both(item.spec):
            print(f"{item.spec.abi}: skipped (one assembler only: {item.spec.backend})")
            continue
        diffs = cross_check(item.path, args.templates)
        bad = unexplained(diffs)
        failures += len(bad)
        for diff in diffs:
            print(f"{item.spec.abi}: {diff}{'' if diff in bad else '  (allowed)'}")
        print(f"{item.spec.abi}: keystone and llvm-mc {'differ' if bad else 'agree'}")
    return 1 if failures else 0


class _Parser(argparse.ArgumentParser):
    """Usage mistakes are one `asmgen: error:` line too, not usage plus error."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (hint: {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="asmgen", description="LLVM ORC resolver tables from ABI specs and templates"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="regenerate the tables")
    gen.add_argument("abi", nargs="*", help="ABI ids or spec names (default: all)")
    _out_option(gen, "generated")
    _common(gen)
    gen.set_defaults(run=cmd_generate)

    check = sub.add_parser("check", help="exit 1 if generated files are stale")
    _out_option(check, "generated")
    _common(check)
    check.set_defaults(run=cmd_check)

    explain = sub.add_parser("explain", help="annotated listing of one ABI")
    explain.add_argument("abi")
    _common(explain)
    explain.set_defaults(run=cmd_explain)

    cross = sub.add_parser("cross-check", help="assemble with keystone and llvm-mc and compare")
    cross.add_argument("abi", nargs="*", help="ABI ids or spec names (default: all)")
    _common(cross)
    cross.set_defaults(run=cmd_cross_check)

    register_verify(sub)
    llvm_patch.register(sub, _common)
    register_review(sub)
    add_docs_parser(sub, _common, _out_option)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        resolve_project(args)
        return args.run(args)
    except AsmgenError as exc:
        print(exc, file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader (e.g. `| head`) went away; that is not an error of ours.
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("asmgen: interrupted", file=sys.stderr)
        return 130
