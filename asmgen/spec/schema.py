"""The spec schema: typed, immutable pydantic models of an ABI spec's fields."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
)

from asmgen.arches import ARCHES, Arch
from asmgen.spec.checks import CHECKS
from asmgen.spec.convention import DEVIATIONS, CallerConvention, Convention
from asmgen.spec.names import MAX_NAME, OneLine, Text, abi_problem, class_problem, valid

Hex = Annotated[int, Field(ge=0)]
# Byte counts of a resolver's frame.  Real ones are a few hundred bytes; the
# cap turns a typo into an error before an assembler silently truncates the
# immediate (keystone does) or allocates gigabytes for it.
Size = Annotated[int, Field(ge=0, le=0x10000)]
Align = Annotated[int, Field(gt=0, le=0x1000)]

# The re-entry function takes (context, trampoline address).
REENTRY_ARGS = 2


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class CallConvention(_Model):
    """How the resolver calls the JIT's re-entry function: the effective contract.

    Never written in a spec: `Spec.call` computes it from the spec's
    convention file (asmgen/spec/convention.py) and the resolver's own
    choices (`resolver.incoming_align`), so every stage reads the same facts.
    """

    # Integer argument registers; the re-entry call's arguments that do not fit
    # (all of them, in a stack-only convention) go to the stack.
    int_args: tuple[str, ...] = ()
    fp_args: tuple[str, ...] = ()
    callee_saved: tuple[str, ...] = ()
    # Bytes the caller reserves for the callee below the call: Win64's home
    # area, o32's argument area.
    shadow_space: Size = 0
    # Bytes of the frame header at the bottom of every frame (the
    # convention's stack.link_area): the resolver's saves sit above it.
    link_area: Size = 0
    # Offset in that area of the back-chain word a frame's owner writes
    # (stack.back_chain); None when the convention has none.
    back_chain: Size | None = None
    stack_align: Align
    # Stack alignment the resolver may rely on at entry; when it is less than
    # stack_align the resolver realigns its frame.  Defaults to stack_align.
    incoming_align: Align | None = None
    # Register holding the re-entry function's result (the landing address).
    return_reg: str
    # Every register the result occupies (o32 returns a 64-bit value in
    # v0:v1).  The resolver must not restore them.  Defaults to [return_reg].
    return_regs: tuple[str, ...] = ()
    # FP control state the caller relies on keeping across the call (among
    # the arch's `ctl` registers).  `asmgen verify` clobbers it in the
    # re-entry function and checks it at landing.
    fp_control: tuple[str, ...] = ()

    @property
    def entry_align(self) -> int:
        return self.incoming_align or self.stack_align

    @property
    def result_regs(self) -> tuple[str, ...]:
        return self.return_regs or (self.return_reg,)


# The vector_state kinds some arch's template implements (each record lists
# its own, `Arch.vector_kinds`; spec/vector.py checks the spec's arch has it).
VectorKind = Literal[
    tuple(dict.fromkeys(kind for arch in ARCHES.values() for kind in arch.vector_kinds))
]

# XSAVE's requested-feature bitmap (EDX:EAX): every state component XCR0 enables.
ALL_FEATURES = 0xFFFFFFFFFFFFFFFF


class VectorState(_Model):
    """How the resolver keeps the vector/FP state.

    fxsave64, fxsave: one instruction saves the x87/SSE state into an area of
    `area_size` bytes.  q-regs: the full 128-bit vector registers listed in
    `resolver.fp_saves` are stored.  vr-regs: FP registers at their own
    width and whole vector registers, both listed in `resolver.fp_saves`
    (an arch whose FP and vector registers are separate).  none: no vector
    state beyond the `resolver.fp_saves` list (FP registers stored at their
    own width).
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
    # Stages an argument on its way to the stack (a stack-only convention).
    temp: str | None = None
    # Holds the landing address while registers are restored (RISC arches).
    landing: str | None = None
    # Frame pointer saved with the trampoline's saved link as the first pair
    # (a frame record).  Push-style frames always push one.
    frame_pointer: str | None = None
    # Alignment the resolver rounds its own frame to.  Defaults to
    # call.stack_align.  Some of LLVM's tables round to 8 only
    # (264- and 136-byte frames); their specs state that deliberately.
    frame_align: Align | None = None
    vector_state: VectorState
    # Home (shadow) area the resolver actually reserves for the re-entry
    # function; defaults to the convention's home area.  Only a spec that
    # reproduces a defective table (the seed's first Win64 attempt) sets it
    # lower, and then declares a `home_area` deviation.
    shadow_space: Size | None = None
    # Stack alignment the resolver relies on at entry; when it is less than
    # the convention's stack alignment the resolver realigns its frame (one of
    # LLVM's resolvers accepts 4-byte aligned callers).  Defaults to the
    # convention's alignment.
    incoming_align: Align | None = None


class Trampoline(_Model):
    call_size: int = Field(gt=0, le=0x40)
    # Register in which the trampoline's call left the trampoline's return
    # address (a register-link call); absent when the call pushed it.
    link: str | None = None
    # Register in which the trampoline kept the caller's return address
    # (a scratch register) before calling the resolver.
    saved_link: str | None = None
    # Register the trampoline loads the resolver's address into (RISC).
    scratch: str | None = None
    # Word that pads a trampoline to its size, where the template pads.
    pad_word: Hex = 0
    # Shadow-stack safe units (CET shadow stack, Arm GCS): the trampoline
    # jumps to the resolver instead of calling it, with the address of its
    # `TrampolineReturn` label in this register (its identity: the resolver
    # subtracts call_size as from a return address), and the resolver leaves
    # by jumping to the landing through `resolver.landing` instead of
    # returning.  Every call is then matched by the return that pops it.
    # Absent: the trampoline calls the resolver (LLVM's tables).
    identity: str | None = None

    @property
    def jumps(self) -> bool:
        """The trampoline jumps to the resolver (no return address of its own)."""
        return self.identity is not None


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
    #   word, `base | field`.  Some of LLVM's tables are built this way.
    patched_words: Literal["assembled", "zero"] = "assembled"
    # Word that fills the gap before 8-byte data slots (RISC tables).
    pad_word: Annotated[int, Field(ge=0, le=0xFFFFFFFF)] = 0


def _one_of(name: str, known, what: str) -> str:
    if name not in known:
        raise ValueError(f"unknown {what} {name!r}; known: {', '.join(known)}")
    return name


class ExpectedViolation(_Model):
    """A contract check that this table is known to fail (a reproduced LLVM defect).

    `asmgen verify` reports it as a declared violation instead of failing, and
    fails if the check unexpectedly passes, so the declaration stays true.
    """

    check: str
    reason: Text = Field(min_length=1)

    @field_validator("check")
    @classmethod
    def _known_check(cls, check: str) -> str:
        return _one_of(check, CHECKS, "check")


class Deviation(_Model):
    """A fact of the convention that this spec's resolver knowingly breaks.

    Declared by name (one of convention.DEVIATIONS) with the reason; the
    implementation choice that breaks it (`resolver.shadow_space`, ...) is
    refused without one, and `asmgen verify` reports every declaration.
    """

    field: str
    reason: Text = Field(min_length=1)

    @field_validator("field")
    @classmethod
    def _known_field(cls, name: str) -> str:
        return _one_of(name, DEVIATIONS, "deviation")


class Spec(_Model):
    abi: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")
    llvm_class: str | None = None
    description: OneLine = ""
    arch: str
    backend: Literal["keystone", "llvm-mc"]
    syntax: Literal["att", "intel"] | None = None
    pointer_size: Literal[4, 8]
    endian: Literal["little", "big"] = "little"
    # A file name in templates/<arch>/, never a path.
    template: str = Field(default="resolver.s.j2", pattern=r"^\w[\w.-]*$")
    # The calling convention (abi_specs/conventions/<name>.yaml) whose facts
    # are the contract: `call` below is computed from it.
    convention: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=MAX_NAME)
    # Convention facts this resolver knowingly breaks; see Deviation.
    deviations: tuple[Deviation, ...] = ()
    # The caller conventions (the convention file's `callers`, by LLVM's IR
    # keyword) this resolver serves: everything they pass in registers or keep
    # live across a call reaches the lazily compiled callee.  Checked at
    # loading (spec/contract.py) and by verify's `caller_conventions` check.
    # A spec without the list claims none (asmgen's own specs all declare it).
    serves: tuple[str, ...] = ()
    resolver: Resolver
    trampoline: Trampoline
    stub: Stub = Stub()
    table: TableOptions = TableOptions()
    # Instruction that opens every indirect-branch target (resolver and
    # trampoline entries): a name from the arch's `landing_pads` (endbr64 for
    # CET, `bti c` for BTI).
    landing_pad: str | None = None
    # Unwind information emitted beside the table (`Arch.unwind`): `.eh_frame` CFI for
    # System V, UNWIND_INFO + RUNTIME_FUNCTION for Win64.  See asmgen/unwind.py.
    unwind: Literal["eh_frame", "win64"] | None = None
    # Placeholder values that a data slot holds before it is patched (LLVM
    # fills some with marker words); everything not listed starts at zero.
    placeholders: dict[str, Hex] = {}
    # Contract checks this table is known to fail; see ExpectedViolation.
    expected_violations: tuple[ExpectedViolation, ...] = ()
    # Line of every key in the spec file, for errors found after loading.
    _lines: dict[tuple, int] = PrivateAttr(default_factory=dict)
    # The convention file and the contract computed from it (spec/__init__.py).
    _convention: Convention | None = PrivateAttr(default=None)
    _call: CallConvention | None = PrivateAttr(default=None)

    @property
    def call(self) -> CallConvention:
        """The effective contract: the convention's facts and the resolver's
        `incoming_align`, read-only."""
        assert self._call is not None, "a spec is loaded with its convention"
        return self._call

    @property
    def home_reserved(self) -> int:
        """The home area the resolver reserves below its call: the convention's,
        unless `resolver.shadow_space` says otherwise (a declared deviation)."""
        if self.resolver.shadow_space is not None:
            return self.resolver.shadow_space
        return self.call.shadow_space

    @property
    def served(self) -> tuple[CallerConvention, ...]:
        """The caller conventions the spec claims (`serves`), as the convention file states them."""
        callers = self.convention_info.caller_conventions
        return tuple(callers[name] for name in self.serves)

    @property
    def convention_info(self) -> Convention:
        assert self._convention is not None, "a spec is loaded with its convention"
        return self._convention

    def attach_convention(self, convention: Convention) -> None:
        """Bind the convention and compute `call` from it (done once, at loading)."""
        regs = convention.result_regs(self.endian, self.pointer_size)
        self._convention = convention
        self._call = CallConvention(
            int_args=convention.args.int_regs,
            fp_args=(*convention.args.fp_regs, *convention.args.vec_regs),
            callee_saved=convention.callee_saved,
            shadow_space=convention.stack.home_area,
            link_area=convention.stack.link_area,
            back_chain=convention.stack.back_chain,
            stack_align=convention.stack.align,
            incoming_align=self.resolver.incoming_align,
            return_reg=regs[0],
            return_regs=regs if len(regs) > 1 else (),
            fp_control=tuple(c.reg for c in convention.fp_control),
        )

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
    @field_validator("abi")
    @classmethod
    def _abi_name(cls, abi: str) -> str:
        return valid(abi_problem(abi), abi)

    @field_validator("llvm_class")
    @classmethod
    def _class_name(cls, name: str | None) -> str | None:
        return name if name is None else valid(class_problem(name), name)

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

    @field_validator("unwind")
    @classmethod
    def _arch_unwind(cls, kind: str | None, info: ValidationInfo) -> str | None:
        arch = ARCHES.get(info.data.get("arch", ""))
        if arch is not None and kind is not None and kind not in arch.unwind_kinds:
            known = ", ".join(arch.unwind_kinds) or "none"
            raise ValueError(f"arch {arch.name} has no {kind!r} unwind information (has: {known})")
        return kind

    @field_validator("landing_pad")
    @classmethod
    def _arch_landing_pad(cls, pad: str | None, info: ValidationInfo) -> str | None:
        arch = ARCHES.get(info.data.get("arch", ""))
        pads = dict(arch.landing_pads) if arch is not None else {}
        if arch is not None and pad is not None and pad not in pads:
            known = ", ".join(sorted(pads)) or "none"
            raise ValueError(f"landing_pad {pad!r} is not one of arch {arch.name}'s ({known})")
        return pad
