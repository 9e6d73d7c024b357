"""`asmgen review [OLD [NEW]]`: argument handling for the review command.

OLD defaults to HEAD and NEW to the working tree, so `asmgen review` shows
what uncommitted edits do and `asmgen review origin/main` what a branch does.
"""

from __future__ import annotations

import sys
from pathlib import Path

from asmgen.project import add_option as add_project_option
from asmgen.review.diff import review
from asmgen.review.format import print_terminal, to_json, to_markdown
from asmgen.review.sources import repo_root, resolve, working_tree


def run(args) -> int:
    repo = args.repo or repo_root(args.project or Path.cwd())
    old = resolve(args.old, repo, args.templates, args.verify)
    if args.new is None:
        # An explicit --repo is the working tree; else the project found from here.
        new = working_tree(args.repo or args.project or repo, Path.cwd())
    else:
        new = resolve(args.new, repo, args.templates, args.verify)
    result = review(old, new, args.syntax, tuple(args.abi), args.verify)
    if args.format == "json":
        sys.stdout.write(to_json(result, args.context))
    elif args.format == "markdown":
        sys.stdout.write(to_markdown(result, args.context))
    else:
        from rich.console import Console

        print_terminal(result, Console(highlight=False, soft_wrap=True), args.context)
    changed = any(abi.status != "unchanged" for abi in result.abis)
    return 1 if args.exit_code and changed else 0


def register(sub) -> None:
    parser = sub.add_parser(
        "review",
        help="instruction-level diff of two sets of tables",
        description="OLD and NEW are git revisions, tables.json files, spec files, spec "
        "folders or checkouts (a folder with abi_specs/).  Defaults: HEAD against the "
        "working tree, built fresh.",
    )
    parser.add_argument("old", nargs="?", default="HEAD", help="default: HEAD")
    parser.add_argument("new", nargs="?", help="default: the working tree, built fresh")
    parser.add_argument("--format", choices=("terminal", "markdown", "json"), default="terminal")
    parser.add_argument("--abi", action="append", default=[], help="only this ABI (repeatable)")
    parser.add_argument("-U", "--context", type=int, default=1, help="context instructions")
    parser.add_argument("--syntax", choices=("att", "intel"), help="x86 disassembly syntax")
    parser.add_argument("--repo", type=Path, help="git repository for revisions")
    parser.add_argument(
        "--templates", type=Path, help="templates for spec inputs (default: the project's)"
    )
    add_project_option(parser)
    parser.add_argument(
        "--verify",
        action="store_true",
        help="also run `asmgen verify` on both sides and report changed outcomes",
    )
    parser.add_argument("--exit-code", action="store_true", help="exit 1 when any table changed")
    parser.set_defaults(run=run)
