"""The `asmgen verify` subcommand."""

from __future__ import annotations

import sys
from pathlib import Path

from asmgen.build.pipeline import build_all
from asmgen.project import add_option as add_project_option
from asmgen.project import output
from asmgen.spec.files import select, spec_files
from asmgen.verify.report import FORMATS, exit_status
from asmgen.verify.runner import subject_from_table, subjects_from_generated, verify


def cmd_verify(args) -> int:
    items = select(spec_files(args.specs), args.abi)
    if args.build:
        subjects = [subject_from_table(t) for t in build_all(items, args.templates)]
    else:
        generated = output(args, "generated")
        subjects = subjects_from_generated(items, generated / "orc_resolvers.py")
    emulation_only = args.emulation_only
    compiled = args.compiled and not emulation_only
    reports = verify(subjects, compiled, args.templates, native=not emulation_only)
    sys.stdout.write(FORMATS[args.format](reports))
    return exit_status(reports)


def register(sub) -> None:
    parser = sub.add_parser(
        "verify",
        help="prove each table's ABI contract by emulation and against compiled code",
    )
    parser.add_argument("abi", nargs="*", help="ABI ids or spec names (default: all)")
    parser.add_argument("--format", choices=sorted(FORMATS), default="text")
    parser.add_argument(
        "--generated",
        type=Path,
        help="folder with the generated orc_resolvers.py whose tables are verified "
        "(default: <project>/generated)",
    )
    parser.add_argument(
        "--build",
        action="store_true",
        help="verify tables built in memory from --specs/--templates instead",
    )
    parser.add_argument(
        "--no-compiled",
        dest="compiled",
        action="store_false",
        help="skip the runs against compiled code (native, wine, qemu-user)",
    )
    parser.add_argument(
        "--emulation-only",
        action="store_true",
        help="unicorn and the static checks only: no compiled, native or wine/qemu runs "
        "(the checks that need them say `not run here`)",
    )
    parser.add_argument("--specs", type=Path, help="folder of ABI specs")
    parser.add_argument("--templates", type=Path, help="folder of per-arch templates")
    add_project_option(parser)
    parser.set_defaults(run=cmd_verify, project_outputs={"generated": "generated"})
