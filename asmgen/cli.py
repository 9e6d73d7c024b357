"""The `asmgen` command line.  Every failure is one `path:line: error:` line and exit 2."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from asmgen.build.buildcache import cached_build
from asmgen.emit.cached import cached_outputs
from asmgen.emit.compare import report_stale, write_outputs
from asmgen.errors import AsmgenError
from asmgen.project import add_option as add_project_option
from asmgen.project import output
from asmgen.project import resolve as resolve_project

# Each command imports what it needs when it runs: `check` and a no-op
# `generate` answered from the build cache (asmgen/build/buildcache.py) load
# no YAML, Jinja, pydantic, assembler, tree-sitter or review code.


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
    written = write_outputs(cached_outputs(args.specs, args.templates, args.abi), out)
    for path in written:
        print(f"wrote {path}")
    if not written:
        print(f"{out}: up to date")
    return 0


def cmd_check(args) -> int:
    out = output(args, "out")
    stale = report_stale(cached_outputs(args.specs, args.templates), out)
    if not stale:
        print(f"{out}: up to date")
    return 1 if stale else 0


def cmd_explain(args) -> int:
    def compute() -> dict[str, str]:
        from asmgen.build.pipeline import build
        from asmgen.emit.explain import explain_text
        from asmgen.spec.files import select, spec_files

        (item,) = select(spec_files(args.specs), [args.abi])
        return {"explain": explain_text(build(item, args.templates))}

    texts = cached_build(args.specs, args.templates, ["explain", args.abi], compute)
    print(texts["explain"], end="")
    return 0


def cmd_cross_check(args) -> int:
    from asmgen.build.crosscheck import cross_check, supports_both, unexplained
    from asmgen.spec.files import select, spec_files

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


def _command(argv: list[str]) -> str | None:
    """The subcommand `argv` names (its first word that is no option), if any;
    None when help is asked for before it (the help lists every command)."""
    for word in argv:
        if word in ("-h", "--help"):
            return None
        if not word.startswith("-"):
            return word
    return None


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with `command`, the other commands whose
    modules are costly to import are left out (their names stay valid)."""
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

    if command in (None, "verify"):
        from asmgen.verify.cli import register as register_verify

        register_verify(sub)
    if command in (None, "patch"):
        from asmgen.patch import patcher as llvm_patch

        llvm_patch.register(sub, _common)
    if command in (None, "review"):
        from asmgen.review.cli import register as register_review

        register_review(sub)
    if command in (None, "docs"):
        from asmgen.docs.command import add_parser as add_docs_parser

        add_docs_parser(sub, _common, _out_option)
    return parser


COMMANDS = ("generate", "check", "explain", "cross-check", "verify", "patch", "review", "docs")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = _command(argv)
    parser = build_parser(command if command in COMMANDS else None)
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
