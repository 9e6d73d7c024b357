"""Compare output texts with an output folder, and write the changed ones.

Light on imports (no emitter), so that `asmgen check` and a no-op `generate`
answered from the build cache load nothing else.
"""

from __future__ import annotations

import difflib
import sys
from pathlib import Path

from asmgen.emit.atomic import others, output_folders, write_files


def write_outputs(outputs: dict[str, str], out_dir: Path) -> list[Path]:
    """Write the changed files as one set (see output.py); the paths written."""
    return write_files({out_dir / name: text for name, text in outputs.items()})


def stale_outputs(outputs: dict[str, str], out_dir: Path) -> list[str]:
    stale = []
    for name, text in outputs.items():
        path = out_dir / name
        try:
            current = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            current = None
        if current != text:
            stale.append(name)
    return stale


def leftover_outputs(outputs: dict[str, str], out_dir: Path) -> list[Path]:
    """Files in the output's inner folders that are not outputs (a removed
    spec's reentry source): a write removes them."""
    paths = {out_dir / name for name in outputs}
    return others(output_folders(paths)[1], paths) if paths else []


def report_stale(outputs: dict[str, str], out_dir: Path, shown: int = 60) -> list[str]:
    """Print the start of a diff for each stale file; the names of the stale files."""
    stale = stale_outputs(outputs, out_dir)
    for name in stale:
        path = out_dir / name
        try:
            old = path.read_text(encoding="utf-8").splitlines(keepends=True)
        except (OSError, UnicodeDecodeError):
            old = []
        new = outputs[name].splitlines(keepends=True)
        diff = difflib.unified_diff(old, new, f"{path} (checked in)", f"{path} (fresh)")
        sys.stdout.writelines(list(diff)[:shown])
        print(f"{path}: stale; run `make generate`")
    for path in leftover_outputs(outputs, out_dir):
        print(f"{path}: not an output any more; run `make generate`")
        stale.append(str(path.relative_to(out_dir)))
    return stale
