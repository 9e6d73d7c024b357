"""Load an ABI spec: YAML -> typed, immutable, validated model.

YAML is read with pyyaml's safe constructors (`yaml_lines.py`).  Duplicate
keys are refused, and the line of every key is remembered so that a
validation error points at the spec's ``file:line``.  The models are in
`schema.py`; the checks that need more than one field are in `registers.py`,
`vector.py` and `contract.py`.  The contract (`Spec.call`) comes from the
convention file the spec names (`convention.py`), never from the spec.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from asmgen.errors import AsmgenError
from asmgen.spec.contract import check_contract
from asmgen.spec.convention import find_convention
from asmgen.spec.registers import check_registers
from asmgen.spec.schema import Spec
from asmgen.spec.yaml_lines import freeze, read_text, read_yaml

__all__ = ["Spec", "load_spec", "parse_spec"]


def parse_spec(text: str, path: Path, contract: bool = True) -> Spec:
    """The spec in `text`; `contract=False` skips the checks of `contract.py`."""
    data, where = read_yaml(text, path, "spec")
    if "call" in data:
        raise AsmgenError(
            "call: a spec does not restate its calling convention",
            path,
            where.get(("call",)),
            hint="name it with `convention:` (abi_specs/conventions/); state what this "
            "resolver does differently as resolver fields and `deviations:`",
        )
    try:
        spec = Spec.model_validate(freeze(data))
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        # The deepest location that exists in the file (a missing key has none).
        line = next((where[loc[:n]] for n in range(len(loc), -1, -1) if loc[:n] in where), 1)
        field = ".".join(str(p) for p in loc) or "spec"
        message = err["msg"].removeprefix("Value error, ")
        raise AsmgenError(f"{field}: {message}", path, line) from None
    _attach_convention(spec, where, path)
    check_registers(spec, where, path)
    if contract:
        check_contract(spec, where, path)
    spec._lines = where
    return spec


def _attach_convention(spec: Spec, where: dict[tuple, int], path: Path) -> None:
    convention = find_convention(spec.convention, path.parent)
    line = where.get(("convention",))
    if convention is None:
        raise AsmgenError(
            f"convention: no convention file {spec.convention}.yaml next to the spec "
            "(conventions/) or among asmgen's",
            path,
            line,
        )
    if convention.arch != spec.arch:
        raise AsmgenError(
            f"convention: {spec.convention} is a convention of {convention.arch}, "
            f"not of {spec.arch}",
            path,
            line,
        )
    spec.attach_convention(convention)
    callers = convention.caller_conventions
    for i, name in enumerate(spec.serves):
        line = where.get(("serves", i), where.get(("serves",)))
        if name not in callers:
            raise AsmgenError(
                f"serves[{i}]: {spec.convention} has no caller convention {name!r}; "
                f"known: {', '.join(callers)}",
                path,
                line,
            )
        if spec.serves.count(name) > 1:
            raise AsmgenError(f"serves: {name} listed twice", path, line)


def load_spec(path: Path, contract: bool = True) -> Spec:
    return parse_spec(read_text(path, "spec"), path, contract)
