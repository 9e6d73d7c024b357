"""Where a command reads specs and templates, and where it writes.

asmgen works on a project: a folder that holds `abi_specs/` (and usually
`templates/`, `generated/` and `docs/abi/`).  Like git with a repository,
a command finds it from the current folder, or the nearest parent that
holds `abi_specs/`; `--project DIR` names it instead.  Explicit `--specs`,
`--templates`, `--out` and `--generated` win over the project's folders.

- specs: `--specs`, else `<project>/abi_specs`, else the specs bundled with
  asmgen (read only);
- templates: `--templates`, else `<project>/templates` when it exists, else
  the bundled templates;
- outputs (`generate`, `check`, `docs`, `verify`): `--out`/`--generated`,
  else `<project>/generated` (`docs/abi`).  Without a project, a command that
  needs an output folder says so and exits 2: asmgen never writes into its
  install location, and a folder inside the installed package is never a
  project.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from asmgen.errors import AsmgenError
from asmgen.resources import PACKAGE, SPECS_DIR, TEMPLATES_DIR

MARKER = "abi_specs"


def _is_installed_package(folder: Path) -> bool:
    return folder == PACKAGE or PACKAGE in folder.parents


def find_project(start: Path) -> Path | None:
    """`start` or its nearest parent that holds abi_specs/, if any."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / MARKER).is_dir() and not _is_installed_package(folder):
            return folder
    return None


def add_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--project",
        type=Path,
        help="project folder (holds abi_specs/); default: the current folder or its "
        "nearest parent that holds abi_specs/",
    )


def _root(args: argparse.Namespace) -> Path | None:
    explicit = getattr(args, "project", None)
    if explicit is None:
        return find_project(Path.cwd())
    if not (explicit / MARKER).is_dir() or _is_installed_package(explicit.resolve()):
        raise AsmgenError(f"not an asmgen project: no {MARKER}/ folder", explicit)
    return explicit


def resolve(args: argparse.Namespace) -> None:
    """Fill the folder options the command line left unset (see the module doc).
    Commands name their output options and project-relative defaults in
    `args.project_outputs`; without a project those stay None, and `output()`
    reports it when the command needs one."""
    root = _root(args)
    args.project = root
    if getattr(args, "specs", "") is None:
        args.specs = root / MARKER if root else SPECS_DIR
    if getattr(args, "templates", "") is None:
        own = root / "templates" if root else None
        args.templates = own if own and own.is_dir() else TEMPLATES_DIR
    for option, relative in getattr(args, "project_outputs", {}).items():
        if getattr(args, option) is None and root is not None:
            setattr(args, option, root / relative)


def output(args: argparse.Namespace, option: str) -> Path:
    """The output folder `option` names (resolved), or a one-line error."""
    folder = getattr(args, option)
    if folder is None:
        raise AsmgenError(
            f"no asmgen project here: neither this folder nor a parent holds {MARKER}/",
            Path.cwd(),
            hint=f"run inside a project, pass --project DIR, or name the folder with --{option}",
        )
    return folder
