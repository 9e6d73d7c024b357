"""Checks of `resolver.vector_state`: the save instruction's area, alignment and
the registers its sequence overwrites."""

from __future__ import annotations

from pathlib import Path

from asmgen.errors import AsmgenError
from asmgen.spec.schema import ALL_FEATURES, Spec

# XSAVE facts: the area must be 64-byte aligned, and holds at least the 512-byte
# legacy (FXSAVE) region and the 64-byte XSAVE header.
XSAVE_ALIGN = 0x40
XSAVE_MIN_AREA = 0x240
# End of each user state component in the standard (non-compacted) XSAVE
# format: x87 and SSE in the legacy region, AVX, MPX BNDREGS and BNDCSR,
# AVX-512 opmask, ZMM_Hi256, Hi16_ZMM, and PKRU.  CPUID leaf 0xD reports the
# offsets per CPU; these are Intel's, the largest known (AMD Zen 4 leaves out
# MPX's space and ends Hi16_ZMM at 0x980).  A fixed area must reach the end of
# every component its feature_mask requests.
XSAVE_COMPONENT_END = {
    0: 0x240,
    1: 0x240,
    2: 0x340,
    3: 0x400,
    4: 0x440,
    5: 0x480,
    6: 0x680,
    7: 0xA80,
    9: 0xA88,
}


# The register classes `resolver.fp_saves` holds, by vector_state kind
# (default: FP registers only).
_STORES = {"q-regs": ("vec",), "vr-regs": ("fpr", "vec")}

# Bytes the save instruction writes, and the alignment it demands of its area.
_AREA = {"fxsave": (0x200, 16), "fxsave64": (0x200, 16)}


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
    area_instruction = state.kind in ("fxsave", "fxsave64", "xsave64")
    if state.kind == "xsave64":
        _check_xsave(spec, where, path)
    elif state.feature_mask != ALL_FEATURES or state.sizing != "fixed":
        raise AsmgenError(
            f"resolver.vector_state: feature_mask and sizing are for xsave64, not {state.kind}",
            path,
            where.get(key),
        )
    if area_instruction and not state.area_size and state.sizing == "fixed":
        raise AsmgenError(
            f"resolver.vector_state: {state.kind} needs an area_size",
            path,
            where.get(key),
        )
    if state.kind in _AREA:
        size, align = _AREA[state.kind]
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


def _check_xsave(spec: Spec, where: dict[tuple, int], path: Path) -> None:
    state = spec.resolver.vector_state
    at = ("resolver", "vector_state")
    if state.align < XSAVE_ALIGN:
        raise AsmgenError(
            f"resolver.vector_state.align: xsave64 needs at least {XSAVE_ALIGN:#x}",
            path,
            where.get((*at, "align"), where.get(at)),
        )
    if state.sizing == "cpuid" and state.area_size:
        raise AsmgenError(
            "resolver.vector_state: sizing cpuid reads the area size at run time; remove area_size",
            path,
            where.get((*at, "area_size")),
        )
    if state.sizing == "fixed" and state.area_size < XSAVE_MIN_AREA:
        raise AsmgenError(
            f"resolver.vector_state.area_size: xsave64 needs at least {XSAVE_MIN_AREA:#x} "
            "(legacy area and header)",
            path,
            where.get((*at, "area_size")),
        )
    if state.sizing == "fixed":
        requested = [bit for bit in range(64) if state.feature_mask >> bit & 1]
        unknown = [bit for bit in requested if bit not in XSAVE_COMPONENT_END]
        if unknown:
            raise AsmgenError(
                f"resolver.vector_state.feature_mask: component {unknown[0]} has no known "
                "standard-format size; a fixed area cannot be sized for it (use sizing: cpuid)",
                path,
                where.get((*at, "feature_mask"), where.get(at)),
            )
        needed = max(XSAVE_COMPONENT_END[bit] for bit in requested) if requested else 0
        if state.area_size < needed:
            raise AsmgenError(
                f"resolver.vector_state.area_size: {state.area_size:#x} is less than the "
                f"{needed:#x} bytes that feature_mask {state.feature_mask:#x} can need",
                path,
                where.get((*at, "area_size")),
            )
    # The save sequence overwrites these before the registers are restored.
    clobbered = dict(spec.arch_info.vector_clobbers).get(f"xsave64/{state.sizing}", ())
    for reg in clobbered:
        if reg not in spec.resolver.saves:
            raise AsmgenError(
                f"resolver.saves: xsave64 ({state.sizing}) overwrites {reg}; save it",
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
