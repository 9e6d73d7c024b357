"""What asmgen knows about each instruction-set architecture.

Every register is described once, with its class and width; ABIs (specs) only
name registers from these tables.  Assembler and disassembler settings live
here too, so no other module needs to know about a particular architecture.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Register:
    name: str
    cls: str  # "gpr", "fpr" or "vec"
    bits: int


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
    comment: str = "#"
    # Numbers written `$N` name registers (MIPS) rather than immediates (x86 AT&T).
    dollar_registers: bool = False
    # Register a push-style resolver saves first and keeps its frame in (x86 rbp).
    frame_pointer: str | None = None
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
    # vector_state kinds its resolver template implements (empty: any).
    vector_kinds: tuple[str, ...] = ()
    # Registers a vector-state sequence overwrites (key: "kind/sizing").
    vector_clobbers: tuple[tuple[str, tuple[str, ...]], ...] = ()

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

    def register(self, name: str) -> Register | None:
        for reg in self.registers:
            if reg.name == name:
                return reg
        return None


def _regs(cls: str, bits: int, names: str) -> tuple[Register, ...]:
    return tuple(Register(name, cls, bits) for name in names.split())


def _numbered(prefix: str, count: int) -> str:
    return " ".join(f"{prefix}{i}" for i in range(count))


X86_64 = Arch(
    name="x86_64",
    vector_kinds=("fxsave64", "xsave64", "q-regs", "none"),
    pointer_size=8,
    element="uint8_t",
    registers=_regs("gpr", 64, "rax rbx rcx rdx rsi rdi rbp rsp r8 r9 r10 r11 r12 r13 r14 r15")
    + _regs("vec", 128, " ".join(f"xmm{i}" for i in range(16)))
    # FP control: SSE control/status and the x87 control word.
    + _regs("ctl", 32, "mxcsr")
    + _regs("ctl", 16, "fcw"),
    stack_pointer="rsp",
    keystone=("KS_ARCH_X86", "KS_MODE_64"),
    capstone=("CS_ARCH_X86", "CS_MODE_64"),
    llvm_triple="x86_64",
    llvm_mattr=None,
    frame_pointer="rbp",
    return_on_stack=True,
    # keystone 0.9.2 has no ENDBR64 mnemonic; its encoding is F3 0F 1E FA (Intel
    # SDM, CET).  tests/test_variants.py checks llvm-mc assembles `endbr64` alike.
    landing_pads=(("endbr64", ".byte 0xf3, 0x0f, 0x1e, 0xfa"),),
    # XSAVE/XRSTOR take the feature mask in EDX:EAX; CPUID writes EAX..EDX.
    vector_clobbers=(
        ("xsave64/fixed", ("rax", "rdx")),
        ("xsave64/cpuid", ("rax", "rbx", "rcx", "rdx")),
    ),
)

I386 = Arch(
    name="i386",
    vector_kinds=("fxsave",),
    pointer_size=4,
    element="uint8_t",
    registers=_regs("gpr", 32, "eax ebx ecx edx esi edi ebp esp")
    + _regs("vec", 128, _numbered("xmm", 8))
    + _regs("ctl", 32, "mxcsr")
    + _regs("ctl", 16, "fcw"),
    stack_pointer="esp",
    keystone=("KS_ARCH_X86", "KS_MODE_32"),
    capstone=("CS_ARCH_X86", "CS_MODE_32"),
    llvm_triple="i386",
    llvm_mattr=None,
    frame_pointer="ebp",
    return_on_stack=True,
)

AARCH64 = Arch(
    name="aarch64",
    vector_kinds=("q-regs", "none"),
    pointer_size=8,
    element="uint32_t",
    registers=_regs("gpr", 64, _numbered("x", 31) + " sp")
    + _regs("fpr", 64, _numbered("d", 32))
    + _regs("vec", 128, _numbered("q", 32)),
    stack_pointer="sp",
    keystone=("KS_ARCH_ARM64", "KS_MODE_LITTLE_ENDIAN"),
    capstone=("CS_ARCH_ARM64", "CS_MODE_ARM"),
    llvm_triple="aarch64",
    llvm_mattr=None,
    comment="//",
    # keystone 0.9.2 has no BTI mnemonic; `bti c` is HINT #34 (Arm ARM).
    # tests/test_variants.py checks llvm-mc assembles `bti c` alike.
    landing_pads=(("bti_c", "hint #0x22"),),
)

# o32 register names ($t0 = $8).
MIPS32 = Arch(
    name="mips32",
    vector_kinds=("none",),
    pointer_size=4,
    element="uint32_t",
    registers=_regs(
        "gpr",
        32,
        "zero at v0 v1 a0 a1 a2 a3 t0 t1 t2 t3 t4 t5 t6 t7 "
        "s0 s1 s2 s3 s4 s5 s6 s7 t8 t9 k0 k1 gp sp fp ra",
    )
    + _regs("fpr", 32, _numbered("f", 32)),
    stack_pointer="sp",
    keystone=("KS_ARCH_MIPS", "KS_MODE_MIPS32"),
    capstone=("CS_ARCH_MIPS", "CS_MODE_MIPS32"),
    llvm_triple="mipsel",
    llvm_triple_big="mips",
    llvm_mattr=None,
    dollar_registers=True,
    endians=("little", "big"),
)

# n64 register names ($a4 = $8, $t0 = $12), as keystone and llvm-mc read them
# in 64-bit mode.
MIPS64 = Arch(
    name="mips64",
    vector_kinds=("none",),
    pointer_size=8,
    element="uint32_t",
    registers=_regs(
        "gpr",
        64,
        "zero at v0 v1 a0 a1 a2 a3 a4 a5 a6 a7 t0 t1 t2 t3 "
        "s0 s1 s2 s3 s4 s5 s6 s7 t8 t9 k0 k1 gp sp fp ra",
    )
    + _regs("fpr", 64, _numbered("f", 32)),
    stack_pointer="sp",
    keystone=("KS_ARCH_MIPS", "KS_MODE_MIPS64"),
    capstone=("CS_ARCH_MIPS", "CS_MODE_MIPS64"),
    llvm_triple="mips64el",
    llvm_triple_big="mips64",
    llvm_mattr=None,
    dollar_registers=True,
    endians=("little", "big"),
)

RISCV64 = Arch(
    name="riscv64",
    vector_kinds=("none",),
    pointer_size=8,
    element="uint32_t",
    registers=_regs(
        "gpr",
        64,
        "zero ra sp gp tp t0 t1 t2 s0 s1 a0 a1 a2 a3 a4 a5 a6 a7 "
        "s2 s3 s4 s5 s6 s7 s8 s9 s10 s11 t3 t4 t5 t6",
    )
    + _regs(
        "fpr",
        64,
        "ft0 ft1 ft2 ft3 ft4 ft5 ft6 ft7 fs0 fs1 fa0 fa1 fa2 fa3 fa4 fa5 fa6 fa7 "
        "fs2 fs3 fs4 fs5 fs6 fs7 fs8 fs9 fs10 fs11 ft8 ft9 ft10 ft11",
    ),
    stack_pointer="sp",
    keystone=None,
    capstone=("CS_ARCH_RISCV", "CS_MODE_RISCV64"),
    llvm_triple="riscv64",
    # No linker relaxation: the table is copied, never linked.
    llvm_mattr="+d,-relax",
)

LOONGARCH64 = Arch(
    name="loongarch64",
    vector_kinds=("none",),
    pointer_size=8,
    element="uint32_t",
    registers=_regs(
        "gpr",
        64,
        "zero ra tp sp a0 a1 a2 a3 a4 a5 a6 a7 t0 t1 t2 t3 t4 t5 t6 t7 t8 r21 fp "
        "s0 s1 s2 s3 s4 s5 s6 s7 s8",
    )
    + _regs(
        "fpr",
        64,
        _numbered("fa", 8) + " " + _numbered("ft", 16) + " " + _numbered("fs", 8),
    ),
    stack_pointer="sp",
    keystone=None,
    capstone=None,  # capstone 5 has no LoongArch
    llvm_triple="loongarch64",
    llvm_mattr="+d",
    dollar_registers=True,
)

ARCHES: dict[str, Arch] = {
    arch.name: arch for arch in (X86_64, I386, AARCH64, MIPS32, MIPS64, RISCV64, LOONGARCH64)
}
