"""RISC-V 64 (RV64GC with D): registers and tool bindings (llvm-mc assembles)."""

from __future__ import annotations

from asmgen.arches.encode import (
    field,
    fix_call_plt,
    fix_pcrel_hi20,
    fix_pcrel_lo12_i,
    reach,
    words,
)
from asmgen.arches.model import (
    Arch,
    EmuFacts,
    Harness,
    HarnessTarget,
    JITLinkEdge,
    Scaffold,
    regs,
)


def _jal(at: int, target: int, order: str) -> bytes:
    off = reach(at, target, 21)
    imm = (
        field(off >> 20, 1, 31)
        | field(off >> 1, 10, 21)
        | field(off >> 11, 1, 20)
        | field(off >> 12, 8, 12)
    )
    return words(order, 0x6F | 1 << 7 | imm)  # jal ra, target


# Hard-wired zero, and the global and thread pointers (a signal handler reads them).
RESERVED = ("zero", "gp", "tp")

EMULATOR = EmuFacts(
    uc_arch="UC_ARCH_RISCV",
    uc_mode="UC_MODE_RISCV64",
    const_module="unicorn.riscv_const",
    reg_prefix="UC_RISCV_REG_",
    pc="pc",
    sp="sp",
    link="ra",
    call_pushes=0,
    reserved=RESERVED,
    # mstatus.FS: the FPU is on.
    init=(("mstatus", 0x6000),),
    # fcsr: frm round toward zero; the clobber raises every flag (fflags).
    fp_control={"fcsr": (0x20, 0x1F)},
)

# f0-f31 by their ABI names, in register-number order.
FPRS = regs(
    "fpr",
    64,
    "ft0 ft1 ft2 ft3 ft4 ft5 ft6 ft7 fs0 fs1 fa0 fa1 fa2 fa3 fa4 fa5 fa6 fa7 "
    "fs2 fs3 fs4 fs5 fs6 fs7 fs8 fs9 fs10 fs11 ft8 ft9 ft10 ft11",
)

HARNESS = Harness(
    reserved=("zero", "sp", "gp", "tp"),
    fprs=tuple(r.name for r in FPRS),
    fpr_bits=64,
    read_sp="mv %0, sp",
    ucontext_pc="uc->uc_mcontext.__gregs[0]",
    targets=(
        HarnessTarget(
            convention="riscv_lp64d",
            endian="little",
            compiler="riscv64-linux-gnu-gcc",
            method="qemu-riscv64",
            runner=("qemu-riscv64-static",),
            packages=("gcc-riscv64-linux-gnu", "libc6-dev-riscv64-cross", "qemu-user-static"),
        ),
    ),
)

ARCH = Arch(
    name="riscv64",
    aliases=("riscv", "risc-v"),
    vector_kinds=("none",),
    pointer_size=8,
    element="uint32_t",
    registers=regs(
        "gpr",
        64,
        "zero ra sp gp tp t0 t1 t2 s0 s1 a0 a1 a2 a3 a4 a5 a6 a7 "
        "s2 s3 s4 s5 s6 s7 s8 s9 s10 s11 t3 t4 t5 t6",
    )
    + FPRS
    # FP control and status (frm, fflags).
    + regs("ctl", 32, "fcsr"),
    stack_pointer="sp",
    keystone=None,
    capstone=("CS_ARCH_RISCV", "CS_MODE_RISCV64"),
    llvm_triple="riscv64",
    # No linker relaxation: the table is copied, never linked.
    llvm_mattr="+d,-relax",
    call_link="ra",
    reserved=RESERVED,
    emulator=EMULATOR,
    harness=HARNESS,
    scaffold=Scaffold(_jal, lambda order: words(order, 0x00008067)),  # ret
    # RISC-V ELF psABI numbers; JITLink riscv names its kinds after them.
    jitlink_edges=(
        JITLinkEdge(19, "R_RISCV_CALL_PLT", "R_RISCV_CALL_PLT", fixup=fix_call_plt),
        JITLinkEdge(23, "R_RISCV_PCREL_HI20", "R_RISCV_PCREL_HI20", fixup=fix_pcrel_hi20),
        JITLinkEdge(
            24, "R_RISCV_PCREL_LO12_I", "R_RISCV_PCREL_LO12_I", fixup=fix_pcrel_lo12_i, paired=True
        ),
    ),
)
