"""Load an ABI spec: YAML -> typed, immutable, validated model.

YAML is read with pyyaml's safe constructors.  Duplicate keys are refused, and
the line of every key is remembered so that a validation error points at the
spec's ``file:line``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from asmgen.arches import ARCHES, Arch
from asmgen.errors import AsmgenError

Hex = Annotated[int, Field(ge=0)]
# Byte counts of a resolver's frame.  Real ones are a few hundred bytes; the
# cap turns a typo into an error before an assembler silently truncates the
# immediate (keystone does) or allocates gigabytes for it.
Size = Annotated[int, Field(ge=0, le=0x10000)]
Align = Annotated[int, Field(gt=0, le=0x1000)]

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


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class CallConvention(_Model):
    """How the resolver calls the JIT's re-entry function."""

    # Integer argument registers; the re-entry call's arguments that do not fit
    # (all of them on i386) go to the stack.
    int_args: tuple[str, ...] = ()
    fp_args: tuple[str, ...] = ()
    callee_saved: tuple[str, ...] = ()
    # Bytes the caller reserves for the callee below the call: Win64's home
    # area, o32's argument area.
    shadow_space: Size = 0
    stack_align: Align
    # Stack alignment the resolver may rely on at entry; when it is less than
    # stack_align the resolver realigns its frame.  Defaults to stack_align.
    incoming_align: Align | None = None
    # Register holding the re-entry function's result (the landing address).
    return_reg: str
    # Every register the result occupies (o32 returns a 64-bit value in
    # v0:v1).  The resolver must not restore them.  Defaults to [return_reg].
    return_regs: tuple[str, ...] = ()
    # FP control state the caller relies on keeping across the call (x86: mxcsr,
    # fcw).  `asmgen verify` clobbers it in the re-entry function and checks it
    # at landing.
    fp_control: tuple[str, ...] = ()

    @property
    def entry_align(self) -> int:
        return self.incoming_align or self.stack_align

    @property
    def result_regs(self) -> tuple[str, ...]:
        return self.return_regs or (self.return_reg,)


VectorKind = Literal["fxsave64", "fxsave", "xsave64", "q-regs", "none"]

# XSAVE's requested-feature bitmap (EDX:EAX): every state component XCR0 enables.
ALL_FEATURES = 0xFFFFFFFFFFFFFFFF


class VectorState(_Model):
    """How the resolver keeps the vector/FP state.

    fxsave64, fxsave: one instruction saves the x87/SSE state into an area of
    `area_size` bytes.  q-regs: the full 128-bit vector registers listed in
    `resolver.fp_saves` are stored.  none: no vector state beyond the
    `resolver.fp_saves` list (FP registers stored at their own width).
    xsave64: XSAVE keeps every state component that `feature_mask` requests
    and XCR0 enables (x87, SSE, AVX upper halves, AVX-512 masks and upper
    registers, ...), in an area of `align` (at least 64) bytes alignment whose
    size is `area_size` (`sizing: fixed`, a maximum the spec sets) or what
    CPUID leaf 0xD reports at run time (`sizing: cpuid`).
    """

    kind: VectorKind
    area_size: Size = 0
    align: Align = 16
    # xsave64 only: the state components requested (EDX:EAX).
    feature_mask: Hex = ALL_FEATURES
    sizing: Literal["fixed", "cpuid"] = "fixed"

    @property
    def mask_words(self) -> tuple[int, int]:
        """feature_mask as the (EAX, EDX) halves XSAVE and XRSTOR read."""
        return self.feature_mask & 0xFFFFFFFF, self.feature_mask >> 32


class Resolver(_Model):
    saves: tuple[str, ...]
    # FP/vector registers stored individually (after `saves`).
    fp_saves: tuple[str, ...] = ()
    # Holds the re-entry function's address for the indirect call.
    scratch: str
    # Stages an argument on its way to the stack (i386).
    temp: str | None = None
    # Holds the landing address while registers are restored (RISC arches).
    landing: str | None = None
    # Frame pointer saved with the trampoline's saved link as the first pair
    # (AArch64's frame record).  Push-style (x86) frames always push one.
    frame_pointer: str | None = None
    # Alignment the resolver rounds its own frame to.  Defaults to
    # call.stack_align.  LLVM's Riscv64 and LoongArch64 tables round to 8 only
    # (264- and 136-byte frames); their specs state that deliberately.
    frame_align: Align | None = None
    vector_state: VectorState
    # Home (shadow) area the resolver actually reserves for the re-entry
    # function; defaults to call.shadow_space.  Only a spec that reproduces a
    # defective table (the seed's first Win64 attempt) sets it lower, and then
    # declares the violation in expected_violations.
    shadow_space: Size | None = None


class Trampoline(_Model):
    call_size: int = Field(gt=0, le=0x40)
    # Register in which the trampoline's call left the trampoline's return
    # address (RISC); absent when the call pushed it (x86).
    link: str | None = None
    # Register in which the trampoline kept the caller's return address
    # (AArch64 x17, MIPS t8) before calling the resolver.
    saved_link: str | None = None
    # Register the trampoline loads the resolver's address into (RISC).
    scratch: str | None = None
    # Word that pads a trampoline to its size, where the template pads.
    pad_word: Hex = 0


class Stub(_Model):
    """The indirect stub: jumps through its pointer in the pointers block."""

    # Register the stub loads its pointer into (RISC).
    scratch: str | None = None
    # Word that pads a stub to its size, where the template pads.
    pad_word: Hex = 0


class TableOptions(_Model):
    """Choices about the table's bytes that are not code."""

    # assembled: every patched place holds the assembled instruction (with the
    #   placeholder in its field).
    # zero: every instruction word that holds a patch field (or is written at
    #   run time as a whole) is zero in the table; the JIT writes the whole
    #   word, `base | field`.  LLVM's MIPS tables are built this way.
    patched_words: Literal["assembled", "zero"] = "assembled"
    # Word that fills the gap before 8-byte data slots (RISC tables).
    pad_word: Annotated[int, Field(ge=0, le=0xFFFFFFFF)] = 0


# Contract checks of `asmgen verify` (see asmgen/verify/checks.py).
VerifyCheck = Literal[
    "ctx_arg",
    "trampoline_arg",
    "stack_align",
    "shadow_space",
    "int_args",
    "fp_args",
    "callee_saved",
    "stack_pointer",
    "return_address",
    "fp_control",
    "landing_pc",
    "native",
    "vector_width",
    "frame_align",
]


class ExpectedViolation(_Model):
    """A contract check that this table is known to fail (a reproduced LLVM defect).

    `asmgen verify` reports it as a declared violation instead of failing, and
    fails if the check unexpectedly passes, so the declaration stays true.
    """

    check: VerifyCheck
    reason: str = Field(min_length=1)


class Spec(_Model):
    abi: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")
    llvm_class: str | None = None
    description: str = ""
    arch: str
    backend: Literal["keystone", "llvm-mc"]
    syntax: Literal["att", "intel"] | None = None
    pointer_size: Literal[4, 8]
    endian: Literal["little", "big"] = "little"
    # A file name in templates/<arch>/, never a path.
    template: str = Field(default="resolver.s.j2", pattern=r"^\w[\w.-]*$")
    call: CallConvention
    resolver: Resolver
    trampoline: Trampoline
    stub: Stub = Stub()
    table: TableOptions = TableOptions()
    # Instruction that opens every indirect-branch target (resolver and
    # trampoline entries): a name from the arch's `landing_pads` (endbr64 for
    # CET, `bti c` for AArch64 BTI).
    landing_pad: str | None = None
    # Unwind information emitted beside the table (x86-64): `.eh_frame` CFI for
    # System V, UNWIND_INFO + RUNTIME_FUNCTION for Win64.  See asmgen/unwind.py.
    unwind: Literal["eh_frame", "win64"] | None = None
    # Placeholder values that a data slot holds before it is patched (LLVM
    # fills some with marker words); everything not listed starts at zero.
    placeholders: dict[str, Hex] = {}
    # Contract checks this table is known to fail; see ExpectedViolation.
    expected_violations: tuple[ExpectedViolation, ...] = ()
    # Line of every key in the spec file, for errors found after loading.
    _lines: dict[tuple, int] = PrivateAttr(default_factory=dict)

    def line_of(self, *key: str | int) -> int | None:
        """The line of `key` in the spec file, or of its nearest enclosing key."""
        for n in range(len(key), 0, -1):
            if key[:n] in self._lines:
                return self._lines[key[:n]]
        return None

    @property
    def class_name(self) -> str:
        return self.llvm_class or f"Orc{self.abi}"

    @property
    def arch_info(self) -> Arch:
        return ARCHES[self.arch]

    @property
    def landing_pad_asm(self) -> str | None:
        """Assembler text of the landing pad, or None when the spec has none."""
        return dict(self.arch_info.landing_pads)[self.landing_pad] if self.landing_pad else None

    # Field validators (not one model validator) so an error names its key's line.
    # Fields are validated in order: `arch` is known by the time the others run.
    @field_validator("arch")
    @classmethod
    def _known_arch(cls, arch: str) -> str:
        if arch not in ARCHES:
            raise ValueError(f"unknown arch {arch!r}; known: {', '.join(sorted(ARCHES))}")
        return arch

    @field_validator("pointer_size")
    @classmethod
    def _arch_pointer_size(cls, size: int, info: ValidationInfo) -> int:
        arch = ARCHES.get(info.data.get("arch", ""))
        if arch is not None and size != arch.pointer_size:
            raise ValueError(
                f"pointer_size {size} does not match arch {arch.name} ({arch.pointer_size})"
            )
        return size

    @field_validator("endian")
    @classmethod
    def _arch_endian(cls, endian: str, info: ValidationInfo) -> str:
        arch = ARCHES.get(info.data.get("arch", ""))
        if arch is not None and endian not in arch.endians:
            raise ValueError(f"arch {arch.name} has no {endian}-endian mode")
        return endian

    @field_validator("landing_pad")
    @classmethod
    def _arch_landing_pad(cls, pad: str | None, info: ValidationInfo) -> str | None:
        arch = ARCHES.get(info.data.get("arch", ""))
        pads = dict(arch.landing_pads) if arch is not None else {}
        if arch is not None and pad is not None and pad not in pads:
            known = ", ".join(sorted(pads)) or "none"
            raise ValueError(f"landing_pad {pad!r} is not one of arch {arch.name}'s ({known})")
        return pad


def _check_registers(spec: Spec, where: dict[tuple, int], path: Path) -> None:
    arch = spec.arch_info
    groups = {
        ("call", "int_args"): spec.call.int_args,
        ("call", "fp_args"): spec.call.fp_args,
        ("call", "callee_saved"): spec.call.callee_saved,
        ("call", "fp_control"): spec.call.fp_control,
        ("resolver", "saves"): spec.resolver.saves,
        ("resolver", "fp_saves"): spec.resolver.fp_saves,
        ("call", "return_regs"): spec.call.return_regs,
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
        ("resolver", "temp"): spec.resolver.temp,
        ("resolver", "landing"): spec.resolver.landing,
        ("resolver", "frame_pointer"): spec.resolver.frame_pointer,
        ("trampoline", "link"): spec.trampoline.link,
        ("trampoline", "saved_link"): spec.trampoline.saved_link,
        ("trampoline", "scratch"): spec.trampoline.scratch,
        ("stub", "scratch"): spec.stub.scratch,
    }.items():
        if name is not None and arch.register(name) is None:
            raise AsmgenError(
                f"{'.'.join(key)}: {name!r} is not a register of {arch.name}",
                path,
                where.get(key),
            )
    for key, align in {
        ("call", "stack_align"): spec.call.stack_align,
        ("call", "incoming_align"): spec.call.incoming_align,
        ("resolver", "frame_align"): spec.resolver.frame_align,
        ("resolver", "vector_state", "align"): spec.resolver.vector_state.align,
    }.items():
        if align is not None and align & (align - 1):
            raise AsmgenError(
                f"{'.'.join(key)}: {align} is not a power of two", path, where.get(key)
            )
    if spec.call.return_regs and spec.call.return_reg not in spec.call.return_regs:
        raise AsmgenError(
            f"call.return_regs: does not list call.return_reg {spec.call.return_reg!r}",
            path,
            where.get(("call", "return_regs")),
        )
    if spec.call.shadow_space % spec.pointer_size:
        raise AsmgenError(
            f"call.shadow_space: {spec.call.shadow_space:#x} is not a multiple of the "
            f"pointer size ({spec.pointer_size})",
            path,
            where.get(("call", "shadow_space")),
        )
    _check_roles(spec, where, path)
    _check_vector_state(spec, where, path)
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
    ("call", "int_args"): ("gpr",),
    ("call", "fp_args"): ("fpr", "vec"),
    ("call", "callee_saved"): ("gpr", "fpr", "vec"),
    ("call", "fp_control"): ("ctl",),
    ("call", "return_reg"): ("gpr",),
    ("call", "return_regs"): ("gpr",),
    ("resolver", "saves"): ("gpr",),
    ("resolver", "scratch"): ("gpr",),
    ("resolver", "temp"): ("gpr",),
    ("resolver", "landing"): ("gpr",),
    ("resolver", "frame_pointer"): ("gpr",),
    ("trampoline", "link"): ("gpr",),
    ("trampoline", "saved_link"): ("gpr",),
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
            if name == arch.stack_pointer and key != ("call", "callee_saved"):
                raise AsmgenError(f"{field}: {name} is the stack pointer", path, line)
    if arch.frame_style == "store" and len(spec.call.int_args) < REENTRY_ARGS:
        raise AsmgenError(
            f"call.int_args: needs at least {REENTRY_ARGS} registers; the re-entry call "
            f"passes its arguments in registers on {arch.name}",
            path,
            where.get(("call", "int_args"), where.get(("call",))),
        )
    if arch.frame_style == "store" and spec.call.shadow_space % spec.call.stack_align:
        raise AsmgenError(
            f"call.shadow_space: {spec.call.shadow_space:#x} is not a multiple of "
            f"call.stack_align ({spec.call.stack_align:#x}); a {arch.name} resolver "
            "allocates it below its aligned frame",
            path,
            where.get(("call", "shadow_space")),
        )
    unit = arch.element_size
    if spec.trampoline.call_size % unit:
        raise AsmgenError(
            f"trampoline.call_size: {spec.trampoline.call_size:#x} is not a whole number of "
            f"{unit}-byte instructions",
            path,
            where.get(("trampoline", "call_size")),
        )


def _check_contract(spec: Spec, where: dict[tuple, int], path: Path) -> None:
    """What `asmgen verify` would find broken in the table: refused up front,
    unless the spec declares it (a table reproduced on purpose).  `asmgen
    review` skips these checks, to show what such an edit does."""
    arch = spec.arch_info
    declared = {v.check for v in spec.expected_violations}
    keeper = arch.frame_pointer
    if keeper and keeper not in spec.call.callee_saved:
        raise AsmgenError(
            f"call.callee_saved: lacks {keeper}, which the resolver's frame is addressed "
            "through after the re-entry call",
            path,
            where.get(("call", "callee_saved"), where.get(("call",))),
        )
    frame_align = spec.resolver.frame_align
    if frame_align and frame_align < spec.call.stack_align and "frame_align" not in declared:
        raise AsmgenError(
            f"resolver.frame_align: {frame_align:#x} is less than call.stack_align "
            f"({spec.call.stack_align:#x}), which misaligns the call",
            path,
            where.get(("resolver", "frame_align")),
            hint="only to reproduce a known-bad table, and then declare frame_align "
            "in expected_violations",
        )
    if (
        arch.frame_style == "store"
        and spec.call.entry_align < spec.call.stack_align
        and "stack_align" not in declared
    ):
        raise AsmgenError(
            f"call.incoming_align: a {arch.name} resolver does not realign its frame, so "
            "the stack must arrive aligned to call.stack_align",
            path,
            where.get(("call", "incoming_align")),
        )
    args = spec.call.int_args[:REENTRY_ARGS]
    if spec.resolver.scratch in args:
        raise AsmgenError(
            f"resolver.scratch: {spec.resolver.scratch} carries an argument of the "
            "re-entry call; pick another register",
            path,
            where.get(("resolver", "scratch")),
        )
    _check_preserved(spec, where, path)


def _check_preserved(spec: Spec, where: dict[tuple, int], path: Path) -> None:
    """The resolver is invisible to the function it resolves: argument registers
    and callee-saved registers it uses must be saved and restored.  A spec that
    reproduces a table known to break this says so in expected_violations."""
    declared = {v.check for v in spec.expected_violations}
    call, resolver = spec.call, spec.resolver
    saved = set(resolver.saves) | set(resolver.fp_saves)
    if "int_args" not in declared:
        for i, name in enumerate(call.int_args):
            if name not in saved:
                raise AsmgenError(
                    f"call.int_args[{i}]: {name} is an argument register that resolver.saves "
                    "does not keep",
                    path,
                    where.get(("call", "int_args", i), where.get(("call", "int_args"))),
                    hint="add it to resolver.saves, or declare the fp_args/int_args "
                    "violation in expected_violations",
                )
    whole_state = resolver.vector_state.kind in ("fxsave", "fxsave64", "xsave64")
    if "fp_args" not in declared and not whole_state:
        for i, name in enumerate(call.fp_args):
            if name not in saved:
                raise AsmgenError(
                    f"call.fp_args[{i}]: {name} is an argument register that "
                    "resolver.fp_saves does not keep",
                    path,
                    where.get(("call", "fp_args", i), where.get(("call", "fp_args"))),
                )
    for name in call.result_regs:
        if name in call.callee_saved:
            raise AsmgenError(
                f"call.return_reg: {name} carries the result, so it cannot be callee-saved",
                path,
                where.get(("call", "return_reg")),
            )
    if "callee_saved" not in declared:
        for role in ("scratch", "temp", "landing"):
            name = getattr(resolver, role)
            if name in call.callee_saved and name not in saved:
                raise AsmgenError(
                    f"resolver.{role}: {name} is callee-saved but not in resolver.saves",
                    path,
                    where.get(("resolver", role)),
                )


# Bytes the save instruction writes, and the alignment it demands of its area.
_AREA = {"fxsave": (0x200, 16), "fxsave64": (0x200, 16)}


def _check_vector_state(spec: Spec, where: dict[tuple, int], path: Path) -> None:
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
        if spec.call.shadow_space % state.align:
            raise AsmgenError(
                f"call.shadow_space: {spec.call.shadow_space:#x} would misalign the "
                f"{state.kind} area above it (align {state.align:#x})",
                path,
                where.get(("call", "shadow_space")),
            )
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
    wanted = "vec" if state.kind == "q-regs" else "fpr"
    for i, reg in enumerate(fp_regs):
        if reg.cls != wanted:
            raise AsmgenError(
                f"resolver.fp_saves[{i}]: {reg.name} is a {reg.cls} register; "
                f"vector_state {state.kind} stores {wanted} registers",
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


# The re-entry function takes (context, trampoline address).
REENTRY_ARGS = 2

_PLAIN_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")


class _LineLoader(yaml.SafeLoader):
    """Safe loader that refuses duplicate keys and records each key's line."""


def _to_python(
    loader: _LineLoader, node: yaml.Node, key: tuple, where: dict, path: Path, open_=()
) -> Any:
    where[key] = node.start_mark.line + 1
    if isinstance(node, yaml.CollectionNode):
        if node.tag not in _PLAIN_TAGS:
            # Built here rather than by the loader, so a tag would be ignored.
            raise AsmgenError(
                f"YAML tag {node.tag!r} is not allowed in a spec",
                path,
                node.start_mark.line + 1,
                node.start_mark.column + 1,
            )
        # An alias to an enclosing node (`a: &x [*x]`) would recurse forever.
        if any(node is o for o in open_):
            raise AsmgenError(
                "recursive YAML alias", path, node.start_mark.line + 1, node.start_mark.column + 1
            )
        open_ = (*open_, node)
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
            result[name] = _to_python(loader, value_node, (*key, name), where, path, open_)
            where[(*key, name)] = key_node.start_mark.line + 1
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _to_python(loader, item, (*key, i), where, path, open_)
            for i, item in enumerate(node.value)
        ]
    return loader.construct_object(node, deep=True)


def _freeze(value: Any) -> Any:
    """Lists become tuples so the strict, frozen models accept them."""
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        return {k: _freeze(v) for k, v in value.items()}
    return value


def parse_spec(text: str, path: Path, contract: bool = True) -> Spec:
    """The spec in `text`; `contract=False` skips the checks of `_check_contract`."""
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
    except RecursionError:
        raise AsmgenError("spec nests too deeply", path, 1) from None
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
        raise AsmgenError("spec must be a mapping of fields", path, root.start_mark.line + 1)
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
    if contract:
        _check_contract(spec, where, path)
    spec._lines = where
    return spec


def load_spec(path: Path, contract: bool = True) -> Spec:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AsmgenError(f"cannot read spec: {exc.strerror}", path) from None
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        raise AsmgenError("spec is not UTF-8 text", path, line) from None
    return parse_spec(text, path, contract)
