"""Where specs and templates live: the repository checkout, or the installed package."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _first_existing(name: str) -> Path:
    # In a checkout (or an editable install) the top-level folder wins; a
    # wheel carries a copy inside the package.
    for candidate in (_PACKAGE.parent / name, _PACKAGE / name):
        if candidate.is_dir():
            return candidate
    return _PACKAGE / name


SPECS_DIR = _first_existing("abi_specs")
TEMPLATES_DIR = _first_existing("templates")
REPO_ROOT = _PACKAGE.parent
