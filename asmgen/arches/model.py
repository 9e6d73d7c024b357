"""The record that holds everything asmgen knows about one architecture.

Each arch's module in this package (`x86_64.py`, `aarch64.py`, ...) builds one
`Arch`: its registers with their classes and widths, its assembler,
disassembler and emulator bindings, the call/return scaffold verify links
around a table, and its landing pads and vector-state kinds.  No other module
names an arch: they read these fields.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

from asmgen.arches.patchkind import PatchKind


@dataclass(frozen=True)
class Register:
    name: str
    cls: str  # "gpr", "fpr", "vec", "ctl" (FP control) or "spr" (link and count registers)
    bits: int
    # The wider register this one is part of, where saving that one keeps
    # this one (s390x: f0 is the leftmost half of v0).
    part_of: str | None = None


@dataclass(frozen=True)
class EmuFacts:
    """What the emulator (unicorn) needs to run this arch's code."""

    uc_arch: str  # unicorn UC_ARCH_* name
    uc_mode: str  # unicorn UC_MODE_* name (UC_MODE_BIG_ENDIAN is added for big-endian specs)
    const_module: str  # unicorn module with the register ids
    reg_prefix: str  # register id = <const_module>.<reg_prefix><NAME>
    pc: str
    sp: str
    # Register that receives the return address on a call; None when the call
    # pushes it (x86), in which case `call_pushes` bytes sit at sp on entry.
    link: str | None
    call_pushes: int
    # Registers set before the run to enable units the code uses (FPU).
    init: tuple[tuple[str, int], ...] = ()
    # Registers no code may clobber (hard-wired zero, kernel registers, ...).
    reserved: tuple[str, ...] = ()
    # Flags register and the bits the hook clobbers (arithmetic flags only: a
    # conforming callee keeps e.g. x86's DF clear).
    flags: tuple[str, int] | None = None
    # FP control registers: name -> (sentinel, clobber) values, both valid
    # settings.  The caller loads the sentinel; the re-entry hook writes the
    # clobber's bits that the convention lets a callee change (its status
    # bits) and keeps the rest (convention fp_control `preserved`).
    fp_control: dict[str, tuple[int, int]] = field(default_factory=dict)
    # Register ids unicorn spells differently from the spec: spec name -> unicorn name.
    uc_names: dict[str, str] = field(default_factory=dict)
    # A narrower register that is the low part of a wider one: name -> (full register, bits).
    # The hook keeps a callee-saved low part and clobbers the rest (upper lanes).
    aliases: dict[str, tuple[str, int]] = field(default_factory=dict)
    # Registers the emulator can clobber beyond asmgen's register table (none yet).
    extra_clobber: tuple[tuple[str, int], ...] = ()
    # A register unicorn exposes only as two 64-bit halves: name -> (unicorn
    # name of its high-order half, of its low-order half).  `read` and `write`
    # join and split them.
    halves: dict[str, tuple[str, str]] = field(default_factory=dict)
    # Registers unicorn does not expose, with why: the emulation leaves their
    # checks to the compiled runs (s390x's floating-point control register).
    unmodeled: tuple[tuple[str, str], ...] = ()
    # Base of the emulated address space; 64-bit arches use addresses above 4 GiB
    # so that a truncated address field shows.
    base: int = 0x12_1000_0000
    # Native execution: the host (platform.machine(), system) that runs this arch.
    native_hosts: tuple[tuple[str, str], ...] = ()
    # The host C ABI's integer argument registers; only specs with this
    # convention can be run natively through ctypes.
    native_int_args: tuple[str, ...] = ()

    def module(self):
        return importlib.import_module(self.const_module)

    def reg_id(self, name: str) -> int:
        uc_name = self.uc_names.get(name, name).upper()
        return getattr(self.module(), self.reg_prefix + uc_name)

    def read(self, uc, name: str) -> int:
        """A register's value in a unicorn engine (joined from its halves)."""
        if name in self.halves:
            high, low = (uc.reg_read(self.reg_id(half)) for half in self.halves[name])
            return high << 64 | low
        return uc.reg_read(self.reg_id(name))

    def write(self, uc, name: str, value: int) -> None:
        if name in self.halves:
            high, low = self.halves[name]
            uc.reg_write(self.reg_id(high), value >> 64 & (1 << 64) - 1)
            uc.reg_write(self.reg_id(low), value & (1 << 64) - 1)
            return
        uc.reg_write(self.reg_id(name), value)


@dataclass(frozen=True)
class ShadowStack:
    """A hardware shadow stack (Intel CET, Arm GCS): every call pushes its
    return address there too, and every return must return to the address on
    top.  Instructions are read as the disassembler prints them."""

    name: str  # "Intel CET shadow stack"
    calls: tuple[str, ...]  # mnemonics that push their return address
    returns: tuple[str, ...]  # mnemonics checked against the top
    # Where an operand-less return finds its target: a register (AArch64
    # x30), or None when it pops it from the stack (x86).
    return_register: str | None
    # How Linux tells a process may enable it: the /proc/cpuinfo flag, and the
    # glibc release whose loader enables it (for the native run's note).
    cpu_flag: str
    glibc: str


@dataclass(frozen=True)
class GnuProperty:
    """How an object file tells the linker it is fit for landing-pad checks
    and a shadow stack: the GNU property note's feature word (pr_type) and its
    bits.  GNU ld ANDs the word over every input, and the loader enables a
    feature only when the linked program still carries its bit."""

    pr_type: int
    landing_pad: int  # the bit for code whose indirect-branch targets have pads
    shadow_stack: int  # the bit for code whose returns pop their own calls


@dataclass(frozen=True)
class JITLinkEdge:
    """How an ELF relocation the assembler leaves in a reentry block becomes
    the JITLink edge LLVM's per-arch builders add (llvm/ExecutionEngine/
    JITLink/<arch>.h): the relocation type's number (the psABI's), its name,
    the edge kind, and what to add to the ELF addend (x86-64's BranchPCRel32
    counts from the end of its 4-byte field, where PLT32 carries -4)."""

    reloc: int
    name: str
    kind: str
    addend_delta: int = 0
    # How JITLink writes the field (arches/encode.py), for verify's run of the
    # reentry blocks: fixup(code, offset, pc, target).  None: not emulated.
    fixup: Callable[[bytearray, int, int, int], None] | None = None
    # The edge's target is the place of another edge (RISC-V's PCREL_LO12
    # names its AUIPC), whose pc and target it takes.
    paired: bool = False


@dataclass(frozen=True)
class DelaySlots:
    """An arch whose branches run the next instruction (the delay slot)
    before they take effect (MIPS I-V).  Each function reads one instruction
    as the disassembler prints it: (mnemonic, operands)."""

    is_branch: Callable[[str, str], bool]
    # Registers the instruction reads as its address or condition (a branch),
    # and registers it writes.
    reads: Callable[[str, str], set[str]]
    writes: Callable[[str, str], set[str]]


@dataclass(frozen=True)
class HarnessTarget:
    """One way to build and run compiled code for a convention of this arch:
    the real compiler for the target and how its programs run here."""

    convention: str  # the convention file whose specs this target runs
    endian: str
    compiler: str  # the gcc driver that targets it (`x86_64-w64-mingw32-gcc`)
    # How verify names the runs (`native`, `wine`, `qemu-aarch64`), and the
    # command line that starts the harness: () runs it directly.
    method: str
    runner: tuple[str, ...] = ()
    # Debian packages that provide the compiler and the runner (what a
    # missing-toolchain note tells the user to install; the Makefile installs them).
    packages: tuple[str, ...] = ()
    cflags: tuple[str, ...] = ()
    # Host machines (platform.machine()) that run it; empty: any (qemu-user).
    hosts: tuple[str, ...] = ()
    # The program is a Windows executable (PE/COFF, Windows API), run under wine.
    windows: bool = False


@dataclass(frozen=True)
class Harness:
    """What asmgen.verify.compiled needs to run this arch's tables against
    compiled code: the registers its caller scaffold
    (templates/<arch>/harness_scaffold.S.j2) fills and observes, the
    compiler's quirks, and the targets that build and run it."""

    # General registers never filled with test values: the stack pointer,
    # hard-wired zero, kernel and thread registers.
    reserved: tuple[str, ...]
    # FP/vector registers as the scaffold stores them, and their width.
    fprs: tuple[str, ...]
    fpr_bits: int
    targets: tuple[HarnessTarget, ...]
    # A convention register that is part of a stored one: name -> (stored
    # register, first bit, end bit) (AArch64 d8 is q8 bits 0-63).
    parts: dict[str, tuple[str, int, int]] = field(default_factory=dict)
    # Registers gcc will not let inline asm clobber (they are not probed for
    # the callee-saved fact), with the reason.
    unprobed: tuple[tuple[str, str], ...] = ()
    # Inline asm that reads sp into operand %0.
    read_sp: str = ""
    # C lvalue of the interrupted pc in a Linux `ucontext_t *uc`.
    ucontext_pc: str = ""
    # C expression of the x87/SSE control state in a Linux `ucontext_t *uc`
    # (FCW | FSW << 16 | MXCSR << 32), for a fault's report; "" if none.
    ucontext_fpu: str = ""
    # The landing can run an x87 operation, which faults if the resolver left
    # an FCW with exceptions unmasked.
    x87: bool = False

    def target(self, convention: str, endian: str) -> HarnessTarget | None:
        for target in self.targets:
            if (target.convention, target.endian) == (convention, endian):
                return target
        return None


@dataclass(frozen=True)
class OrcFactory:
    """How LLVM's factory functions that pick an ORC ABI class by the target
    triple (`createLocalCompileCallbackManager`, ...) choose this arch's
    class: the `Triple::ArchType` enumerators of its case labels, and the class
    they name.  `asmgen patch` adds the case where LLVM lacks it, when it
    writes (or updates) that class."""

    triples: tuple[str, ...]  # `systemz` for `case Triple::systemz:`
    llvm_class: str  # `OrcSystemZ`


@dataclass(frozen=True)
class VectorShape:
    """The vector registers a native harness sets: `count` registers named
    `name`0.. of `width` bytes, and `masks` 8-byte mask registers."""

    name: str
    count: int
    width: int
    masks: int

    @property
    def size(self) -> int:
        return self.count * self.width + self.masks * 8


@dataclass(frozen=True)
class NativeVectors:
    """A harness that runs the arch's tables on the host CPU to see vector
    state its emulator does not model (asmgen.verify.vector_harness runs it
    where `EmuFacts.native_hosts` says the host runs the arch).  Its
    vector registers' low 16 bytes are the `vec` registers, by index."""

    # The registers the host has, from its CPU flags; None: too few to check.
    shape: Callable[[set[str]], VectorShape | None]
    # The harness's assembly (labels entry, reentry, landing, stub, out,
    # record), given the shape and the byte the re-entry function clobbers with.
    source: Callable[[VectorShape, int], str]
    # Registers the re-entry function records (then sp), in `record` order.
    args: tuple[str, ...]
    # What the CPU lacks when `shape` gives None, for the error.
    needs: str


@dataclass(frozen=True)
class VectorArea:
    """A `resolver.vector_state` kind whose one instruction (of the same name)
    saves the whole FP/vector state into an area the instruction set lays out:
    a control/status block, the stack registers, then `vectors` 16-byte
    vector slots; a feature-masked format (`components`) adds a header after
    its fixed region, then the state components its mask requests."""

    kind: str
    size: int  # bytes it writes at least (fixed region, and header)
    align: int  # the alignment it demands of its area
    vectors: int  # `vec` registers the image holds, in register order
    vector_offset: int
    slot: int  # bytes per stack or vector register slot
    # The control/status block at the area's start: (offset, size, name).
    status: tuple[tuple[int, int, str], ...]
    status_size: int
    status_label: str  # the block's picture label
    # The stack registers' slots: offset, count, label with `{i}`.
    stack_regs: tuple[int, int, str]
    # Control registers held in the block, by register name: offset.
    control: tuple[tuple[str, int], ...]
    fixed: int  # bytes of the fixed region (the header follows it)
    header: int = 0  # bytes of the header; 0: none
    header_label: str = ""
    # Feature-masked formats: the standard-format end of each state component
    # (by bit); a fixed area must reach the end of every one its mask requests.
    components: tuple[tuple[int, int], ...] = ()
    extended_label: str = ""  # the picture's label of the components

    @property
    def feature_masked(self) -> bool:
        return bool(self.components)


class UnwindError(ValueError):
    """The code has no frame an unwind format can describe (the pipeline names
    the spec's `unwind` line)."""


@dataclass(frozen=True)
class UnwindFormat:
    """One spec `unwind` kind an arch's resolver template supports: what
    builds its information from the assembled resolver, and from one
    trampoline (None: trampolines get none).  Builders raise UnwindError
    (resolver) or ValueError (trampoline) for code they cannot describe."""

    resolver: Callable[[bytes], object]
    trampoline: Callable[[bytes], object] | None = None


# Encoders of the scaffold take (at, target, byte order).
Encoder = Callable[[int, int, str], bytes]


@dataclass(frozen=True)
class Scaffold:
    caller: Encoder  # a direct call of target
    ret: Callable[[str], bytes]  # a function's return, for the re-entry function


@dataclass(frozen=True)
class Arch:
    name: str
    pointer_size: int
    # C++ element type of LLVM's table: bytes for CISC, instruction words for RISC.
    element: str
    registers: tuple[Register, ...]
    stack_pointer: str
    keystone: tuple[str, str] | None  # (KS_ARCH_*, KS_MODE_*) names
    capstone: tuple[str, str] | None  # (CS_ARCH_*, CS_MODE_*) names
    llvm_triple: str | None
    llvm_mattr: str | None
    # Other spellings of the name (in prose, in other tools' names): no module
    # outside asmgen/arches/ uses them or the name (tests/test_arch_homes.py).
    aliases: tuple[str, ...] = ()
    comment: str = "#"
    # What turns its bytes back into text: "capstone" (the `capstone` binding)
    # or "llvm-mc" (llvm-mc's disassembler on `llvm_triple`, one word at a time).
    disassembler: str = "capstone"
    # Numbers written `$N` name registers (MIPS) rather than immediates (x86 AT&T).
    dollar_registers: bool = False
    # Registers the disassembler names by another ABI's convention: its name ->
    # this arch's (capstone prints MIPS64's $8-$15 by their o32 names).
    disasm_names: tuple[tuple[str, str], ...] = ()
    # LLVM's machine-IR names of registers asmgen names otherwise: (regular
    # expression, replacement) applied to the whole name (PowerPC's 64-bit x3
    # is r3).
    llvm_names: tuple[tuple[str, str], ...] = ()
    # Registers capstone's detail API (`reg_name`) names otherwise than the
    # listings do: its name -> this arch's (SystemZ's general registers are
    # `0`-`15` there, `%r0`-`%r15` in the text).  Read by review's stackregs.
    capstone_names: tuple[tuple[str, str], ...] = ()
    # Register a push-style resolver saves first and keeps its frame in (x86 rbp).
    frame_pointer: str | None = None
    # Register a call instruction (bl, jalr, jirl) leaves its return address
    # in; None when the call pushes it.
    call_link: str | None = None
    # Registers no code may write: hard-wired zero, kernel and thread registers.
    reserved: tuple[str, ...] = ()
    # The resolver template moves the landing address into resolver.landing
    # before restoring the saved registers (so landing is none of them).  False:
    # it restores first, and leaves the result registers unrestored (MIPS).
    landing_before_restore: bool = True
    # Byte orders the arch runs in; the first is the default.
    endians: tuple[str, ...] = ("little",)
    # llvm-mc triple for big-endian specs, where it differs (mipsel vs mips).
    llvm_triple_big: str | None = None
    # A call pushes its return address (x86): the resolver's frame is built with
    # pushes below that address.  Otherwise the return address is in a register
    # and the resolver stores registers into one fixed frame.
    return_on_stack: bool = False
    # Landing pads: name -> assembler text of the instruction that marks an
    # indirect-branch target.
    landing_pads: tuple[tuple[str, str], ...] = ()
    # Patch kinds only this arch's instructions have (the shared ones are in
    # asmgen/build/patchkinds.py); templates name them in `patch()`.
    patch_kinds: tuple[PatchKind, ...] = ()
    # Spec `unwind` kinds that describe its resolver template's frame, with
    # their builders (the x86-64 module's FORMATS, for instance).
    unwind: tuple[tuple[str, UnwindFormat], ...] = ()
    # Push style: the resolver template rounds sp down to vector_state.align
    # below its pushes (and restores sp from the frame pointer), so the vector
    # area may be aligned beyond the stack (x86-64's xsave64).
    vector_realign: bool = False
    # vector_state kinds its resolver template implements (empty: any).
    vector_kinds: tuple[str, ...] = ()
    # The kinds among them that save the whole state into an area.
    vector_areas: tuple[VectorArea, ...] = ()
    # Registers a vector-state sequence overwrites (key: "kind/sizing").
    vector_clobbers: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # Wider forms of the `vec` registers, by the CPU feature that enables them
    # (LLVM's subtarget feature, also the /proc/cpuinfo flag) and their bits:
    # x86-64 ymm with avx, zmm with avx512f.  Caller conventions keep or pass
    # some registers at these widths (docs/conventions.md, `wide`).
    wide_vectors: tuple[tuple[str, int], ...] = ()
    # Emulation (asmgen verify): unicorn's binding, and the caller's call and the
    # re-entry function's return linked around the table.  None: static checks only.
    emulator: EmuFacts | None = None
    # Why there is no emulator, where unicorn has the arch in another form
    # (PowerPC: big-endian only); "" says unicorn has no such arch.
    no_emulator: str = ""
    scaffold: Scaffold | None = None
    # Branch delay slots (MIPS): verify names a slot that writes its branch's
    # register too late.
    delay_slots: DelaySlots | None = None
    # The hardware shadow stack verify's `shadow_stack` check models; None:
    # the arch has none, and the check is not applicable.
    shadow_stack: ShadowStack | None = None
    # The GNU property note an assembly source carries for its landing pads
    # and its shadow stack; None: the arch has no such note.
    gnu_property: GnuProperty | None = None
    # LLVM's newer reentry path (LazyReexportsManager + JITLinkReentryTrampolines):
    # the relocations its templates' reentry mode leaves, as JITLink edges.
    # Empty: no reentry output for this arch (generated/reentry/).
    jitlink_edges: tuple[JITLinkEdge, ...] = ()
    # The native vector check (None: the emulator's view is all there is).
    native_vectors: NativeVectors | None = None
    # Compiled-code checks (asmgen verify's `native`, `wine` and `qemu-*`
    # runs); None: no compiler or runner for this arch, and `no_harness` says why.
    harness: Harness | None = None
    no_harness: str = ""
    # The cases of LLVM's factory functions for this arch (patch/orc_factories);
    # None: LLVM has them, or no class is the arch's default.
    orc_factory: OrcFactory | None = None

    def __post_init__(self) -> None:
        if (self.disassembler == "capstone") != (self.capstone is not None):
            raise ValueError(f"{self.name}: disassembler {self.disassembler!r} needs a binding")

    def vector_area(self, kind: str) -> VectorArea | None:
        """The area format of vector_state `kind`; None for kinds that list
        registers (q-regs, none) or that this arch lacks."""
        return next((area for area in self.vector_areas if area.kind == kind), None)

    @property
    def unwind_kinds(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.unwind)

    @property
    def frame_style(self) -> str:
        return "push" if self.return_on_stack else "store"

    def triple(self, endian: str) -> str | None:
        if endian == "big" and self.llvm_triple_big:
            return self.llvm_triple_big
        return self.llvm_triple

    @property
    def element_size(self) -> int:
        return 1 if self.element == "uint8_t" else 4

    @cached_property
    def _registers_by_name(self) -> dict[str, Register]:
        found: dict[str, Register] = {}
        for reg in self.registers:
            found.setdefault(reg.name, reg)
        return found

    def register(self, name: str) -> Register | None:
        return self._registers_by_name.get(name)

    def with_parts(self, names: set[str]) -> set[str]:
        """`names` and every register that is part of one of them."""
        return names | {r.name for r in self.registers if r.part_of in names}

    def disasm_register(self, name: str) -> str:
        """This arch's name for a register the disassembler calls `name`."""
        return dict(self.disasm_names).get(name, name)

    def disasm_operands(self, text: str) -> str:
        """Operand text with every register in this arch's names (one pass, so
        a renamed register is never renamed again)."""
        if not self.disasm_names:
            return text
        names = dict(self.disasm_names)
        pattern = r"\b(" + "|".join(map(re.escape, names)) + r")\b"
        return re.sub(pattern, lambda m: names[m.group(1)], text)


def regs(cls: str, bits: int, names: str) -> tuple[Register, ...]:
    return tuple(Register(name, cls, bits) for name in names.split())


def numbered(prefix: str, count: int) -> str:
    return " ".join(f"{prefix}{i}" for i in range(count))
