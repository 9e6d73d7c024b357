"""Checks that every register a spec names exists on its arch and fits its role."""

from __future__ import annotations

from pathlib import Path

from asmgen.errors import AsmgenError
from asmgen.spec.schema import REENTRY_ARGS, Spec
from asmgen.spec.vector import check_vector_state


def check_registers(spec: Spec, where: dict[tuple, int], path: Path) -> None:
    """The spec's own registers; the convention's were checked when it was read."""
    arch = spec.arch_info
    groups = {
        ("resolver", "saves"): spec.resolver.saves,
        ("resolver", "fp_saves"): spec.resolver.fp_saves,
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
        ("resolver", "scratch"): spec.resolver.scratch,
        ("resolver", "temp"): spec.resolver.temp,
        ("resolver", "landing"): spec.resolver.landing,
        ("resolver", "frame_pointer"): spec.resolver.frame_pointer,
        ("trampoline", "link"): spec.trampoline.link,
        ("trampoline", "saved_link"): spec.trampoline.saved_link,
        ("trampoline", "scratch"): spec.trampoline.scratch,
        ("trampoline", "identity"): spec.trampoline.identity,
        ("stub", "scratch"): spec.stub.scratch,
    }.items():
        if name is not None and arch.register(name) is None:
            raise AsmgenError(
                f"{'.'.join(key)}: {name!r} is not a register of {arch.name}",
                path,
                where.get(key),
            )
    for key, align in {
        ("resolver", "incoming_align"): spec.resolver.incoming_align,
        ("resolver", "frame_align"): spec.resolver.frame_align,
        ("resolver", "vector_state", "align"): spec.resolver.vector_state.align,
    }.items():
        if align is not None and align & (align - 1):
            raise AsmgenError(
                f"{'.'.join(key)}: {align} is not a power of two", path, where.get(key)
            )
    reserved = spec.resolver.shadow_space
    if reserved is not None and reserved % spec.pointer_size:
        raise AsmgenError(
            f"resolver.shadow_space: {reserved:#x} is not a multiple of the "
            f"pointer size ({spec.pointer_size})",
            path,
            where.get(("resolver", "shadow_space")),
        )
    _check_roles(spec, where, path)
    check_vector_state(spec, where, path)
    limit = 1 << (8 * spec.pointer_size)
    for name, value in spec.placeholders.items():
        if value >= limit:
            raise AsmgenError(
                f"placeholders.{name}: {value:#x} does not fit a {spec.pointer_size}-byte pointer",
                path,
                where.get(("placeholders", name)),
            )


# The register classes each role may name (lists and single registers alike).
_ROLES: dict[tuple[str, str], tuple[str, ...]] = {
    ("resolver", "saves"): ("gpr",),
    ("resolver", "scratch"): ("gpr",),
    ("resolver", "temp"): ("gpr",),
    ("resolver", "landing"): ("gpr",),
    ("resolver", "frame_pointer"): ("gpr",),
    # A special-purpose link register (`spr`) where the call leaves it.
    ("trampoline", "link"): ("gpr", "spr"),
    ("trampoline", "saved_link"): ("gpr",),
    ("trampoline", "identity"): ("gpr",),
}


def _check_roles(spec: Spec, where: dict[tuple, int], path: Path) -> None:
    """Each register fits its role: no vector register as an argument, no
    stack pointer as a scratch, and register arguments where the template
    passes them in registers."""
    arch = spec.arch_info
    for key, classes in _ROLES.items():
        value = getattr(getattr(spec, key[0]), key[1])
        names = value if isinstance(value, tuple) else (value,) if value else ()
        for i, name in enumerate(names):
            reg = arch.register(name)
            line = where.get((*key, i), where.get(key))
            field = ".".join(key) + (f"[{i}]" if isinstance(value, tuple) else "")
            if reg.cls not in classes:
                raise AsmgenError(
                    f"{field}: {name} is a {reg.cls} register; this role takes "
                    f"{' or '.join(classes)}",
                    path,
                    line,
                )
            if name == arch.stack_pointer:
                raise AsmgenError(f"{field}: {name} is the stack pointer", path, line)
    if arch.frame_style == "store" and len(spec.call.int_args) < REENTRY_ARGS:
        raise AsmgenError(
            f"convention: {spec.convention} passes fewer than {REENTRY_ARGS} integer "
            f"arguments in registers; the {arch.name} resolver passes the re-entry "
            "call's arguments in registers",
            path,
            where.get(("convention",)),
        )
    home = spec.home_reserved
    if arch.frame_style == "store" and home % spec.call.stack_align:
        raise AsmgenError(
            f"home area {home:#x} is not a multiple of the stack alignment "
            f"({spec.call.stack_align:#x}); a {arch.name} resolver allocates it below "
            "its aligned frame",
            path,
            where.get(("resolver", "shadow_space"), where.get(("convention",))),
        )
    unit = arch.element_size
    if spec.trampoline.call_size % unit:
        raise AsmgenError(
            f"trampoline.call_size: {spec.trampoline.call_size:#x} is not a whole number of "
            f"{unit}-byte instructions",
            path,
            where.get(("trampoline", "call_size")),
        )
