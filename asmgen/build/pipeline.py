"""The whole pipeline: find specs, build tables, emit every output file."""

from __future__ import annotations

import difflib
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from asmgen.build.layout import Table, build_table
from asmgen.build.units import build_units
from asmgen.emit.cpp_header import emit_cpp
from asmgen.emit.json_tables import emit_json
from asmgen.emit.output import write_files
from asmgen.emit.python_module import emit_python
from asmgen.errors import AsmgenError
from asmgen.resources import SPECS_DIR, TEMPLATES_DIR
from asmgen.spec import Spec, load_spec

OUTPUTS = {
    "orc_resolvers.py": emit_python,
    "orc_resolvers.h": emit_cpp,
    "tables.json": emit_json,
}


@dataclass(frozen=True)
class SpecFile:
    path: Path
    spec: Spec


def spec_files(specs_dir: Path = SPECS_DIR, contract: bool = True) -> list[SpecFile]:
    paths = sorted(specs_dir.glob("*.yaml"))
    if not paths:
        raise AsmgenError("no specs (*.yaml) found", specs_dir)
    found = [SpecFile(p, load_spec(p, contract)) for p in paths]
    seen: dict[str, Path] = {}
    for item in found:
        if item.spec.abi in seen:
            raise AsmgenError(
                f"ABI {item.spec.abi!r} is also defined in {seen[item.spec.abi]}",
                item.path,
                item.spec.line_of("abi"),
            )
        seen[item.spec.abi] = item.path
    return found


def select(found: list[SpecFile], names: list[str]) -> list[SpecFile]:
    """Specs named by ABI id or file stem; all of them when `names` is empty."""
    if not names:
        return found
    chosen = []
    for name in names:
        match = [f for f in found if name in (f.spec.abi, f.path.stem)]
        if not match:
            known = ", ".join(f.spec.abi for f in found)
            folder = found[0].path.parent if found else None
            raise AsmgenError(f"unknown ABI {name!r}; known: {known}", folder)
        chosen.extend(m for m in match if m not in chosen)
    return chosen


def template_for(item: SpecFile, templates_dir: Path = TEMPLATES_DIR) -> Path:
    path = templates_dir / item.spec.arch / item.spec.template
    if not path.is_file():
        raise AsmgenError(
            f"template {path} not found for arch {item.spec.arch!r}",
            item.path,
            item.spec.line_of("template") or item.spec.line_of("arch"),
        )
    return path


def build(item: SpecFile, templates_dir: Path = TEMPLATES_DIR) -> Table:
    try:
        table = build_table(item.spec, item.path, template_for(item, templates_dir))
        return replace(table, units=build_units(item.spec, templates_dir))
    except AsmgenError as exc:
        if exc.path is not None:
            raise
        # Naming no file, it is about the tools the spec's backend picked
        # (llvm-mc not found, say): point at that choice.
        line = item.spec.line_of("backend")
        raise AsmgenError(exc.message, item.path, line, hint=exc.hint) from None


def build_all(items: list[SpecFile], templates_dir: Path = TEMPLATES_DIR) -> list[Table]:
    return [build(item, templates_dir) for item in items]


def render_outputs(tables: list[Table]) -> dict[str, str]:
    """Every output file's text, all computed before anything is written."""
    return {name: emit(tables) for name, emit in OUTPUTS.items()}


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
    return stale
