"""LoongArch 64: registers and llvm-mc binding; no disassembler or emulator here."""

from __future__ import annotations

from asmgen.arches.model import Arch, JITLinkEdge, numbered, regs

ARCH = Arch(
    name="loongarch64",
    aliases=("loongarch",),
    vector_kinds=("none",),
    pointer_size=8,
    element="uint32_t",
    registers=regs(
        "gpr",
        64,
        "zero ra tp sp a0 a1 a2 a3 a4 a5 a6 a7 t0 t1 t2 t3 t4 t5 t6 t7 t8 r21 fp "
        "s0 s1 s2 s3 s4 s5 s6 s7 s8",
    )
    + regs(
        "fpr",
        64,
        numbered("fa", 8) + " " + numbered("ft", 16) + " " + numbered("fs", 8),
    )
    # FP control and status register 0 (enables, rounding mode, flags).
    + regs("ctl", 32, "fcsr0"),
    stack_pointer="sp",
    keystone=None,
    capstone=None,  # capstone 5 has no LoongArch
    disassembler="llvm-mc",
    llvm_triple="loongarch64",
    llvm_mattr="+d",
    dollar_registers=True,
    call_link="ra",
    # Hard-wired zero, the thread pointer and r21, which the psABI reserves.
    reserved=("zero", "tp", "r21"),
    no_harness="Debian 12 ships no LoongArch cross compiler or qemu-user; the "
    "loongarch_lp64d facts are the psABI's, and its tables get the static frame check",
    # LoongArch ELF psABI numbers; JITLink loongarch kinds.
    jitlink_edges=(
        JITLinkEdge(66, "R_LARCH_B26", "Branch26PCRel"),
        JITLinkEdge(71, "R_LARCH_PCALA_HI20", "Page20"),
        JITLinkEdge(72, "R_LARCH_PCALA_LO12", "PageOffset12"),
        JITLinkEdge(110, "R_LARCH_CALL36", "Call36PCRel"),
    ),
)
