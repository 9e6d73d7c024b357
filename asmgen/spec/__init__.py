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
from asmgen.spec.yaml_lines import freeze, read_yaml

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


# A spec is 1-3 KiB; reading stops past this, whatever the file's size.
MAX_SPEC_BYTES = 0x10000


def load_spec(path: Path, contract: bool = True) -> Spec:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_SPEC_BYTES + 1)
    except OSError as exc:
        raise AsmgenError(f"cannot read spec: {exc.strerror}", path) from None
    if len(data) > MAX_SPEC_BYTES:
        raise AsmgenError(f"spec is larger than {MAX_SPEC_BYTES // 1024} KiB", path, 1)
    try:
        # pyyaml skips a byte-order mark, as the templates' loader does.
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise AsmgenError("spec is not UTF-8 text", path, line) from None
    return parse_spec(text, path, contract)
