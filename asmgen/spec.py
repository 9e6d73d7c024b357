"""Load an ABI spec: YAML -> typed, immutable, validated model.

YAML is read with pyyaml's safe constructors.  Duplicate keys are refused, and
the line of every key is remembered so that a validation error points at the
spec's ``file:line``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .arch import ARCHES, Arch
from .errors import AsmgenError

Hex = Annotated[int, Field(ge=0)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class CallConvention(_Model):
    """How the resolver calls the JIT's re-entry function."""

    int_args: tuple[str, ...] = Field(min_length=2)
    fp_args: tuple[str, ...] = ()
    callee_saved: tuple[str, ...] = ()
    shadow_space: Hex = 0
    stack_align: int = Field(gt=0)
    return_reg: str


class VectorState(_Model):
    kind: Literal["fxsave64", "fxsave", "none"]
    area_size: Hex = 0
    align: int = Field(default=16, gt=0)


class Resolver(_Model):
    saves: tuple[str, ...]
    # Holds the re-entry function's address for the indirect call.
    scratch: str
    vector_state: VectorState


class Trampoline(_Model):
    call_size: int = Field(gt=0)


class Spec(_Model):
    abi: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")
    llvm_class: str | None = None
    description: str = ""
    arch: str
    backend: Literal["keystone", "llvm-mc"]
    syntax: Literal["att", "intel"] | None = None
    pointer_size: Literal[4, 8]
    endian: Literal["little", "big"] = "little"
    template: str = "resolver.s.j2"
    call: CallConvention
    resolver: Resolver
    trampoline: Trampoline
    # Placeholder values that a data slot holds before it is patched (LLVM
    # fills some with marker words); everything not listed starts at zero.
    placeholders: dict[str, Hex] = {}

    @property
    def class_name(self) -> str:
        return self.llvm_class or f"Orc{self.abi}"

    @property
    def arch_info(self) -> Arch:
        return ARCHES[self.arch]

    @model_validator(mode="after")
    def _check_against_arch(self) -> Spec:
        arch = ARCHES.get(self.arch)
        if arch is None:
            raise ValueError(f"unknown arch {self.arch!r}; known: {', '.join(sorted(ARCHES))}")
        if self.pointer_size != arch.pointer_size:
            raise ValueError(
                f"pointer_size {self.pointer_size} does not match arch {arch.name} "
                f"({arch.pointer_size})"
            )
        return self


def _check_registers(spec: Spec, where: dict[tuple, int], path: Path) -> None:
    arch = spec.arch_info
    groups = {
        ("call", "int_args"): spec.call.int_args,
        ("call", "fp_args"): spec.call.fp_args,
        ("call", "callee_saved"): spec.call.callee_saved,
        ("resolver", "saves"): spec.resolver.saves,
    }
    for key, names in groups.items():
        seen: set[str] = set()
        for i, name in enumerate(names):
            line = where.get((*key, i), where.get(key))
            if arch.register(name) is None:
                raise AsmgenError(
                    f"{'.'.join(key)}[{i}]: {name!r} is not a register of {arch.name}",
                    path,
                    line,
                )
            if name in seen:
                raise AsmgenError(f"{'.'.join(key)}: register {name!r} listed twice", path, line)
            seen.add(name)
    for key, name in {
        ("call", "return_reg"): spec.call.return_reg,
        ("resolver", "scratch"): spec.resolver.scratch,
    }.items():
        if arch.register(name) is None:
            raise AsmgenError(
                f"{'.'.join(key)}: {name!r} is not a register of {arch.name}", path, where.get(key)
            )
    align = spec.call.stack_align
    if align & (align - 1):
        raise AsmgenError(
            f"call.stack_align: {align} is not a power of two",
            path,
            where.get(("call", "stack_align")),
        )
    if spec.call.shadow_space % spec.pointer_size:
        raise AsmgenError(
            f"call.shadow_space: {spec.call.shadow_space:#x} is not a multiple of the "
            f"pointer size ({spec.pointer_size})",
            path,
            where.get(("call", "shadow_space")),
        )


class _LineLoader(yaml.SafeLoader):
    """Safe loader that refuses duplicate keys and records each key's line."""


def _to_python(loader: _LineLoader, node: yaml.Node, key: tuple, where: dict, path: Path) -> Any:
    where[key] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result: dict = {}
        for key_node, value_node in node.value:
            name = loader.construct_object(key_node, deep=True)
            if not isinstance(name, str):
                raise AsmgenError(
                    f"key {name!r} is not a string", path, key_node.start_mark.line + 1
                )
            if name in result:
                raise AsmgenError(
                    f"duplicate key {name!r}",
                    path,
                    key_node.start_mark.line + 1,
                    key_node.start_mark.column + 1,
                )
            result[name] = _to_python(loader, value_node, (*key, name), where, path)
            where[(*key, name)] = key_node.start_mark.line + 1
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _to_python(loader, item, (*key, i), where, path) for i, item in enumerate(node.value)
        ]
    return loader.construct_object(node, deep=True)


def _freeze(value: Any) -> Any:
    """Lists become tuples so the strict, frozen models accept them."""
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        return {k: _freeze(v) for k, v in value.items()}
    return value


def parse_spec(text: str, path: Path) -> Spec:
    try:
        loader = _LineLoader(text)
        try:
            root = loader.get_single_node()
            if root is None:
                raise AsmgenError("spec is empty", path, 1)
            where: dict[tuple, int] = {}
            data = _to_python(loader, root, (), where, path)
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise AsmgenError(
            f"YAML syntax: {problem}",
            path,
            mark.line + 1 if mark else None,
            mark.column + 1 if mark else None,
        ) from None
    if not isinstance(data, dict):
        raise AsmgenError("spec must be a mapping of fields", path, 1)
    try:
        spec = Spec.model_validate(_freeze(data))
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        # The deepest location that exists in the file (a missing key has none).
        line = next((where[loc[:n]] for n in range(len(loc), -1, -1) if loc[:n] in where), 1)
        field = ".".join(str(p) for p in loc) or "spec"
        message = err["msg"].removeprefix("Value error, ")
        raise AsmgenError(f"{field}: {message}", path, line) from None
    _check_registers(spec, where, path)
    return spec


def load_spec(path: Path) -> Spec:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AsmgenError(f"cannot read spec: {exc.strerror}", path) from None
    except UnicodeDecodeError:
        raise AsmgenError("spec is not UTF-8 text", path) from None
    return parse_spec(text, path)
