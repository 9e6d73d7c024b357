"""Run the pinned clang-format (the PyPI wheel) in LLVM style."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from .errors import AsmgenError


def clang_format_binary() -> str:
    beside = Path(sys.executable).parent / "clang-format"
    found = str(beside) if beside.exists() else shutil.which("clang-format")
    if not found:
        raise AsmgenError(
            "clang-format not found", hint="install the pinned `clang-format` wheel (make venv)"
        )
    return found


def clang_format(
    text: str, filename: str = "generated.h", lines: list[tuple[int, int]] | None = None
) -> str:
    """Format `text`; with `lines` (1-based, inclusive ranges), only those lines."""
    ranges = [f"--lines={first}:{last}" for first, last in lines or ()]
    result = subprocess.run(
        [clang_format_binary(), "--style=LLVM", f"--assume-filename={filename}", *ranges],
        input=text,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode:
        raise AsmgenError(f"clang-format failed: {result.stderr.strip()}", filename)
    return result.stdout
