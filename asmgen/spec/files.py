"""Find the spec files of a folder and pick ABIs from them by name."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from asmgen.errors import AsmgenError
from asmgen.resources import SPECS_DIR
from asmgen.spec import Spec, load_spec


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
