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


X86_64 = Arch(
    name="x86_64",
    pointer_size=8,
    element="uint8_t",
    registers=_regs("gpr", 64, "rax rbx rcx rdx rsi rdi rbp rsp r8 r9 r10 r11 r12 r13 r14 r15")
    + _regs("vec", 128, " ".join(f"xmm{i}" for i in range(16))),
    stack_pointer="rsp",
    keystone=("KS_ARCH_X86", "KS_MODE_64"),
    capstone=("CS_ARCH_X86", "CS_MODE_64"),
    llvm_triple="x86_64",
    llvm_mattr=None,
)

ARCHES: dict[str, Arch] = {arch.name: arch for arch in (X86_64,)}
