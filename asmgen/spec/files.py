"""Find the spec files of a folder and pick ABIs from them by name."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from asmgen.errors import AsmgenError
from asmgen.resources import SPECS_DIR
from asmgen.spec import Spec, load_spec
from asmgen.spec.yaml_lines import yaml_files


@dataclass(frozen=True)
class SpecFile:
    path: Path
    spec: Spec


def spec_files(specs_dir: Path = SPECS_DIR, contract: bool = True) -> list[SpecFile]:
    paths = yaml_files(specs_dir)
    if not paths:
        raise AsmgenError("no specs (*.yaml) found", specs_dir)
    found = [SpecFile(p, load_spec(p, contract)) for p in paths]
    _refuse_clashes(found)
    return found


def _refuse_clashes(found: list[SpecFile]) -> None:
    """Each ABI id and C++ class is one spec's.  ABI ids are compared without
    case: they name files (docs/abi/<abi>.md) on case-blind file systems."""
    abis: dict[str, SpecFile] = {}
    classes: dict[str, SpecFile] = {}
    for item in found:
        spec = item.spec
        other = abis.setdefault(spec.abi.casefold(), item)
        if other is not item:
            same = "" if other.spec.abi == spec.abi else f" as {other.spec.abi!r}"
            raise AsmgenError(
                f"ABI {spec.abi!r} is also defined in {other.path}{same}",
                item.path,
                spec.line_of("abi"),
            )
        other = classes.setdefault(spec.class_name, item)
        if other is not item:
            raise AsmgenError(
                f"C++ class {spec.class_name!r} also belongs to ABI {other.spec.abi} "
                f"({other.path}); two ABIs would write one class",
                item.path,
                spec.line_of("llvm_class") or spec.line_of("abi"),
                hint="give this spec its own llvm_class",
            )


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
