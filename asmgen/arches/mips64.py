"""MIPS64, n64: registers and tool bindings, both byte orders."""

from __future__ import annotations

from asmgen.arches.mips import (
    DELAY_SLOTS,
    RESERVED,
    SCAFFOLD,
    mips_emulator,
    mips_harness,
    mips_target,
)
from asmgen.arches.model import Arch, numbered, regs

HARNESS = mips_harness(
    fprs=tuple(f"f{i}" for i in range(32)),
    targets=(
        # qemu's default MIPS64 CPU ignores writes of FCSR's rounding mode.
        mips_target(
            "mips_n64",
            "little",
            "mips64el-linux-gnuabi64",
            "mips64el",
            libc="libc6-dev-mips64el-cross",
            cpu="MIPS64R2-generic",
        ),
    ),
)

# n64 register names ($a4 = $8, $t0 = $12), as keystone and llvm-mc read them
# in 64-bit mode.
ARCH = Arch(
    name="mips64",
    aliases=("mips", "mips64el"),
    vector_kinds=("none",),
    pointer_size=8,
    element="uint32_t",
    registers=regs(
        "gpr",
        64,
        "zero at v0 v1 a0 a1 a2 a3 a4 a5 a6 a7 t0 t1 t2 t3 "
        "s0 s1 s2 s3 s4 s5 s6 s7 t8 t9 k0 k1 gp sp fp ra",
    )
    + regs("fpr", 64, numbered("f", 32))
    # FP control/status (rounding mode, enables, flags, cause).
    + regs("ctl", 32, "fcsr"),
    stack_pointer="sp",
    keystone=("KS_ARCH_MIPS", "KS_MODE_MIPS64"),
    capstone=("CS_ARCH_MIPS", "CS_MODE_MIPS64"),
    llvm_triple="mips64el",
    llvm_triple_big="mips64",
    llvm_mattr=None,
    dollar_registers=True,
    # capstone names $8-$15 by o32 (t0-t7) in every mode.
    disasm_names=tuple(
        zip(
            ("t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7"),
            ("a4", "a5", "a6", "a7", "t0", "t1", "t2", "t3"),
            strict=True,
        )
    ),
    endians=("little", "big"),
    emulator=mips_emulator(
        "UC_MODE_MIPS64",
        # n64 names $8-$15 a4-a7, t0-t3; unicorn names them by o32 (t0-t7).
        {n: str(8 + i) for i, n in enumerate(["a4", "a5", "a6", "a7", "t0", "t1", "t2", "t3"])},
        0x2400_0000,
    ),
    scaffold=SCAFFOLD,
    call_link="ra",
    reserved=RESERVED,
    # The template restores, then moves the result into resolver.landing.
    landing_before_restore=False,
    delay_slots=DELAY_SLOTS,
    harness=HARNESS,
)
