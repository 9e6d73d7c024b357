"""MIPS32, o32: registers and tool bindings, both byte orders."""

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

# Debian's o32 code is FPXX and runs with FR=0: a double is an even/odd pair,
# stored by its even register (f21 is f20's high word).
HARNESS = mips_harness(
    fprs=tuple(f"f{i}" for i in range(0, 32, 2)),
    parts={f"f{i}": (f"f{i - i % 2}", 32 * (i % 2), 32 * (i % 2) + 32) for i in range(32)},
    targets=(
        mips_target(
            "mips_o32", "little", "mipsel-linux-gnu", "mipsel", libc="libc6-dev-mipsel-cross"
        ),
        mips_target("mips_o32", "big", "mips-linux-gnu", "mips", libc="libc6-dev-mips-cross"),
    ),
)

# o32 register names ($t0 = $8).
ARCH = Arch(
    name="mips32",
    aliases=("mips", "mipsel"),
    vector_kinds=("none",),
    pointer_size=4,
    element="uint32_t",
    registers=regs(
        "gpr",
        32,
        "zero at v0 v1 a0 a1 a2 a3 t0 t1 t2 t3 t4 t5 t6 t7 "
        "s0 s1 s2 s3 s4 s5 s6 s7 t8 t9 k0 k1 gp sp fp ra",
    )
    + regs("fpr", 32, numbered("f", 32))
    # FP control/status (rounding mode, enables, flags, cause).
    + regs("ctl", 32, "fcsr"),
    stack_pointer="sp",
    keystone=("KS_ARCH_MIPS", "KS_MODE_MIPS32"),
    capstone=("CS_ARCH_MIPS", "CS_MODE_MIPS32"),
    llvm_triple="mipsel",
    llvm_triple_big="mips",
    llvm_mattr=None,
    dollar_registers=True,
    endians=("little", "big"),
    emulator=mips_emulator("UC_MODE_MIPS32", {}, 0x2000_0000),
    scaffold=SCAFFOLD,
    call_link="ra",
    reserved=RESERVED,
    # The template restores, then moves the result into resolver.landing.
    landing_before_restore=False,
    delay_slots=DELAY_SLOTS,
    harness=HARNESS,
)
