"""Run the pinned clang-format (the PyPI wheel) in LLVM style."""

from __future__ import annotations

import shutil
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from asmgen.build.gather import blocking
from asmgen.build.toolcache import cached
from asmgen.errors import AsmgenError


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
    command = [clang_format_binary(), "--style=LLVM", f"--assume-filename={filename}", *ranges]

    def run() -> dict:
        with blocking():  # other emitters work meanwhile (build/gather.py)
            result = subprocess.run(command, input=text, capture_output=True, text=True)
        return {"returncode": result.returncode, "stdout": result.stdout, "stderr": result.stderr}

    # The pinned wheel's version is part of the key, so an upgrade misses.
    done = cached(["clang-format", _wheel_version(), *command, text], run)
    if done["returncode"]:
        raise AsmgenError(f"clang-format failed: {done['stderr'].strip()}", filename)
    return done["stdout"]


def _wheel_version() -> str:
    try:
        return version("clang-format")
    except PackageNotFoundError:
        return "unknown"
