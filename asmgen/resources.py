"""The specs and templates asmgen ships: the installed package's copy, or the
repository checkout's.  Commands read them when no project has its own
(asmgen/project.py); nothing is ever written here."""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def _bundled(name: str) -> Path:
    # A wheel carries a copy inside the package; a checkout (or an editable
    # install) has the top-level folder beside it.
    for candidate in (PACKAGE / name, PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    return PACKAGE / name


SPECS_DIR = _bundled("abi_specs")
TEMPLATES_DIR = _bundled("templates")
# The checkout this package was loaded from (tests and benches read its files).
REPO_ROOT = PACKAGE.parent
