"""`asmgen review [OLD [NEW]]`: argument handling for the review command.

OLD defaults to HEAD and NEW to the working tree, so `asmgen review` shows
what uncommitted edits do and `asmgen review origin/main` what a branch does.
"""

from __future__ import annotations

import sys
from pathlib import Path

from asmgen.errors import AsmgenError
from asmgen.project import add_option as add_project_option
from asmgen.review.diff import review
from asmgen.review.format import print_terminal, to_json, to_markdown
from asmgen.review.llvm_tables import Conventions
from asmgen.review.sources import is_llvm_input, llvm_pair, repo_root, resolve, working_tree


def _conventions(args) -> Conventions:
    """--convention NAME (every class without a spec) or CLASS=NAME, with the
    project's specs, conventions and templates (asmgen's own outside a project)."""
    by_class, default = {}, None
    for value in args.convention:
        name, _, convention = value.rpartition("=")
        if name:
            by_class[name if name.startswith("Orc") else f"Orc{name}"] = convention
        else:
            default = convention
    found = Conventions(by_class, default, args.specs, args.templates)
    for name in [*by_class.values(), *([default] if default else [])]:
        found.named(name)  # an unknown name is bad input before anything runs
    return found


def run(args) -> int:
    repo = args.repo or repo_root(args.project or Path.cwd())
    if is_llvm_input(args.old, repo) or (args.new and is_llvm_input(args.new, repo)):
        old, new = llvm_pair(args.old, args.new, repo, _conventions(args), args.compile_writers)
    else:
        if args.convention:
            raise AsmgenError("--convention applies to LLVM's sources only", "asmgen review")
        old = resolve(args.old, repo, args.templates, args.verify)
        if args.new is None:
            # An explicit --repo is the working tree; else the project found from here.
            new = working_tree(args.repo or args.project or repo, Path.cwd())
        else:
            new = resolve(args.new, repo, args.templates, args.verify)
    result = review(old, new, args.syntax, tuple(args.abi), args.verify, args.llvm_verify)
    if args.format == "json":
        sys.stdout.write(to_json(result, args.context))
    elif args.format == "markdown":
        sys.stdout.write(to_markdown(result, args.context))
    else:
        from rich.console import Console

        print_terminal(result, Console(highlight=False, soft_wrap=True), args.context)
    return exit_status(result, args.exit_code)


def exit_status(result, exit_code: bool = False) -> int:
    """1 when NEW breaks something OLD did not (or, with --exit-code, when anything
    changed), else 0; bad input never gets here (2)."""
    if any(abi.problems for abi in result.abis):
        return 1
    changed = any(abi.status != "unchanged" for abi in result.abis)
    return 1 if exit_code and changed else 0


def register(sub) -> None:
    parser = sub.add_parser(
        "review",
        help="instruction-level diff of two sets of tables",
        description="OLD and NEW are git revisions, tables.json files, spec files, spec "
        "folders or checkouts (a folder with abi_specs/).  Defaults: HEAD against the "
        "working tree, built fresh.  They may also be LLVM's sources: two LLVM checkouts "
        "or revisions of one, or an LLVM checkout (or revision) and a .patch/.diff applied "
        "to it; every ORC ABI class is then read from OrcABISupport.h/.cpp and verified "
        "on both sides.  Exit status: 0 clean, 1 when NEW fails a check OLD passed (or, "
        "with --exit-code, when anything changed), 2 on bad input.",
    )
    parser.add_argument("old", nargs="?", default="HEAD", help="default: HEAD")
    parser.add_argument("new", nargs="?", help="default: the working tree, built fresh")
    parser.add_argument("--format", choices=("terminal", "markdown", "json"), default="terminal")
    parser.add_argument("--abi", action="append", default=[], help="only this ABI (repeatable)")
    parser.add_argument("-U", "--context", type=int, default=1, help="context instructions")
    parser.add_argument(
        "--syntax", choices=("att", "intel"), help="disassembly syntax, where the arch has two"
    )
    parser.add_argument("--repo", type=Path, help="git repository for revisions")
    parser.add_argument(
        "--templates", type=Path, help="templates for spec inputs (default: the project's)"
    )
    parser.add_argument(
        "--specs",
        type=Path,
        help="LLVM sources: the specs (and their conventions/) classes are verified with "
        "(default: the project's)",
    )
    add_project_option(parser)
    parser.add_argument(
        "--verify",
        action="store_true",
        help="also run `asmgen verify` on both sides and report changed outcomes",
    )
    parser.add_argument("--exit-code", action="store_true", help="exit 1 when any table changed")
    parser.add_argument(
        "--convention",
        action="append",
        default=[],
        metavar="[CLASS=]NAME",
        help="LLVM sources: the calling convention (abi_specs/conventions/) to verify a "
        "class without an asmgen spec against; CLASS=NAME for one class (repeatable)",
    )
    parser.add_argument(
        "--no-verify",
        dest="llvm_verify",
        action="store_false",
        help="LLVM sources: compare the code only, run no verify checks",
    )
    parser.add_argument(
        "--no-compile",
        dest="compile_writers",
        action="store_false",
        help="LLVM sources: do not compile the trees' writers (resolver tables only)",
    )
    parser.set_defaults(run=run)
