"""Checks of `resolver.vector_state`: the save instruction's area, alignment and
the registers its sequence overwrites."""

from __future__ import annotations

from pathlib import Path

from asmgen.arches.model import VectorArea
from asmgen.errors import AsmgenError
from asmgen.spec.schema import ALL_FEATURES, Spec

# The register classes `resolver.fp_saves` holds, by vector_state kind
# (default: FP registers only).
_STORES = {"q-regs": ("vec",), "vr-regs": ("fpr", "vec")}


def check_vector_state(spec: Spec, where: dict[tuple, int], path: Path) -> None:
    arch = spec.arch_info
    state = spec.resolver.vector_state
    key = ("resolver", "vector_state", "kind")
    fp_regs = [arch.register(name) for name in spec.resolver.fp_saves]
    if arch.vector_kinds and state.kind not in arch.vector_kinds:
        raise AsmgenError(
            f"resolver.vector_state.kind: the {arch.name} template implements "
            f"{', '.join(arch.vector_kinds)}, not {state.kind}",
            path,
            where.get(key),
        )
    # One instruction saves the whole FP state into an area.
    area = arch.vector_area(state.kind)
    area_instruction = area is not None
    if area is not None and area.feature_masked:
        _check_masked(spec, area, where, path)
    elif state.feature_mask != ALL_FEATURES or state.sizing != "fixed":
        masked = ", ".join(a.kind for a in arch.vector_areas if a.feature_masked) or "none"
        raise AsmgenError(
            f"resolver.vector_state: feature_mask and sizing are for {masked}, not {state.kind}",
            path,
            where.get(key),
        )
    if area_instruction and not state.area_size and state.sizing == "fixed":
        raise AsmgenError(
            f"resolver.vector_state: {state.kind} needs an area_size",
            path,
            where.get(key),
        )
    if area is not None and not area.feature_masked:
        size, align = area.size, area.align
        if state.area_size < size:
            raise AsmgenError(
                f"resolver.vector_state.area_size: {state.kind} writes {size:#x} bytes",
                path,
                where.get(("resolver", "vector_state", "area_size"), where.get(key)),
            )
        if state.align < align:
            raise AsmgenError(
                f"resolver.vector_state.align: {state.kind} faults on an area aligned to "
                f"less than {align:#x}",
                path,
                where.get(("resolver", "vector_state", "align"), where.get(key)),
            )
        home = spec.home_reserved
        if home % state.align:
            raise AsmgenError(
                f"home area {home:#x} would misalign the "
                f"{state.kind} area above it (align {state.align:#x})",
                path,
                where.get(("resolver", "shadow_space"), where.get(("convention",))),
            )
    _check_realign(spec, where, path)
    if area_instruction:
        if fp_regs:
            raise AsmgenError(
                f"resolver.fp_saves: {state.kind} saves the FP state; list no registers",
                path,
                where.get(("resolver", "fp_saves")),
            )
    elif state.area_size:
        raise AsmgenError(
            f"resolver.vector_state: area_size is computed for {state.kind}; remove it",
            path,
            where.get(("resolver", "vector_state", "area_size")),
        )
    wanted = _STORES.get(state.kind, ("fpr",))
    for i, reg in enumerate(fp_regs):
        if reg.cls not in wanted:
            raise AsmgenError(
                f"resolver.fp_saves[{i}]: {reg.name} is a {reg.cls} register; "
                f"vector_state {state.kind} stores {' and '.join(wanted)} registers",
                path,
                where.get(("resolver", "fp_saves", i)),
            )


def _check_masked(spec: Spec, area: VectorArea, where: dict[tuple, int], path: Path) -> None:
    """A feature-masked area: its alignment, its size (fixed, or read at run
    time), and the registers its save sequence overwrites."""
    state = spec.resolver.vector_state
    at = ("resolver", "vector_state")
    if state.align < area.align:
        raise AsmgenError(
            f"resolver.vector_state.align: {area.kind} needs at least {area.align:#x}",
            path,
            where.get((*at, "align"), where.get(at)),
        )
    if state.sizing == "cpuid" and state.area_size:
        raise AsmgenError(
            "resolver.vector_state: sizing cpuid reads the area size at run time; remove area_size",
            path,
            where.get((*at, "area_size")),
        )
    if state.sizing == "fixed" and state.area_size < area.size:
        raise AsmgenError(
            f"resolver.vector_state.area_size: {area.kind} needs at least {area.size:#x} "
            "(legacy area and header)",
            path,
            where.get((*at, "area_size")),
        )
    if state.sizing == "fixed":
        requested = [bit for bit in range(64) if state.feature_mask >> bit & 1]
        ends = dict(area.components)
        unknown = [bit for bit in requested if bit not in ends]
        if unknown:
            raise AsmgenError(
                f"resolver.vector_state.feature_mask: component {unknown[0]} has no known "
                "standard-format size; a fixed area cannot be sized for it (use sizing: cpuid)",
                path,
                where.get((*at, "feature_mask"), where.get(at)),
            )
        needed = max(ends[bit] for bit in requested) if requested else 0
        if state.area_size < needed:
            raise AsmgenError(
                f"resolver.vector_state.area_size: {state.area_size:#x} is less than the "
                f"{needed:#x} bytes that feature_mask {state.feature_mask:#x} can need",
                path,
                where.get((*at, "area_size")),
            )
    # The save sequence overwrites these before the registers are restored.
    clobbered = dict(spec.arch_info.vector_clobbers).get(f"{area.kind}/{state.sizing}", ())
    for reg in clobbered:
        if reg not in spec.resolver.saves:
            raise AsmgenError(
                f"resolver.saves: {area.kind} ({state.sizing}) overwrites {reg}; save it",
                path,
                where.get(("resolver", "saves")),
            )


def _check_realign(spec: Spec, where: dict[tuple, int], path: Path) -> None:
    """An area aligned beyond the stack needs a template that rounds sp down to
    it, and a frame whose registers the frame pointer finds again (which a
    frame realigned at entry, `resolver.incoming_align`, is not)."""
    arch, call, state = spec.arch_info, spec.call, spec.resolver.vector_state
    if arch.frame_style != "push" or state.align <= max(call.entry_align, call.stack_align):
        return
    if not arch.vector_realign:
        why = f"the {arch.name} resolver does not realign its vector area"
    elif call.entry_align < call.stack_align:
        why = "a frame realigned at entry (resolver.incoming_align) cannot also realign it"
    else:
        return
    raise AsmgenError(
        f"resolver.vector_state.align: {state.align:#x} is beyond the stack alignment "
        f"({call.stack_align:#x}); {why}",
        path,
        where.get(("resolver", "vector_state", "align"), where.get(("resolver", "vector_state"))),
    )
