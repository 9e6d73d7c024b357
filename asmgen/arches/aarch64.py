"""AArch64: registers, tool bindings and the BTI landing pad."""

from __future__ import annotations

from asmgen.arches.encode import (
    field,
    fix_branch26,
    fix_page21,
    fix_pageoffset12_ld64,
    reach,
    words,
)
from asmgen.arches.model import (
    Arch,
    EmuFacts,
    GnuProperty,
    Harness,
    HarnessTarget,
    JITLinkEdge,
    Scaffold,
    ShadowStack,
    numbered,
    regs,
)
from asmgen.arches.patchkind import PatchKind


def _bl(at: int, target: int, order: str) -> bytes:
    return words(order, 0x94000000 | field(reach(at, target, 28) >> 2, 26))


# The literal load `ldr xN, label`: a 19-bit word offset from the ldr itself.
LDR19 = PatchKind(
    "ldr19",
    19,
    "value >> 2",
    "AArch64 literal load (ldr): word offset from the ldr",
    pcrel=True,
    operand="displacement",
    shift=2,
    exact=True,
    limit="AArch64 literal-load range: +-1 MiB",
)

EMULATOR = EmuFacts(
    uc_arch="UC_ARCH_ARM64",
    uc_mode="UC_MODE_ARM",
    const_module="unicorn.arm64_const",
    reg_prefix="UC_ARM64_REG_",
    pc="pc",
    sp="sp",
    link="x30",
    call_pushes=0,
    flags=("nzcv", 0xF000_0000),
    # d8-d15 are the low halves of q8-q15: AAPCS64 keeps only those.
    aliases={f"d{i}": (f"q{i}", 64) for i in range(32)},
    # FPCR has no status bits (FPSR holds them): RMode round toward zero.
    fp_control={"fpcr": (0x00C0_0000, 0x0)},
)

HARNESS = Harness(
    reserved=("sp",),
    fprs=tuple(f"q{i}" for i in range(32)),
    fpr_bits=128,
    parts={f"d{i}": (f"q{i}", 0, 64) for i in range(32)},
    # gcc 12 accepts x29 in an asm clobber list but does not save it.
    unprobed=(("x29", "gcc accepts it in an asm clobber list but does not save it"),),
    read_sp="mov %0, sp",
    ucontext_pc="uc->uc_mcontext.pc",
    targets=(
        HarnessTarget(
            convention="aapcs64",
            endian="little",
            compiler="aarch64-linux-gnu-gcc",
            method="qemu-aarch64",
            runner=("qemu-aarch64-static",),
            packages=("gcc-aarch64-linux-gnu", "libc6-dev-arm64-cross", "qemu-user-static"),
        ),
    ),
)

ARCH = Arch(
    name="aarch64",
    aliases=("arm64",),
    vector_kinds=("q-regs", "none"),
    pointer_size=8,
    element="uint32_t",
    registers=regs("gpr", 64, numbered("x", 31) + " sp")
    + regs("fpr", 64, numbered("d", 32))
    + regs("vec", 128, numbered("q", 32))
    # FP control register (rounding mode, flush-to-zero, trap enables).
    + regs("ctl", 32, "fpcr"),
    stack_pointer="sp",
    keystone=("KS_ARCH_ARM64", "KS_MODE_LITTLE_ENDIAN"),
    capstone=("CS_ARCH_ARM64", "CS_MODE_ARM"),
    llvm_triple="aarch64",
    llvm_mattr=None,
    comment="//",
    # keystone 0.9.2 has no BTI mnemonic; `bti c` is HINT #34 (Arm ARM).
    # tests/test_variants.py checks llvm-mc assembles `bti c` alike.
    landing_pads=(("bti_c", "hint #0x22"),),
    call_link="x30",
    patch_kinds=(LDR19,),
    emulator=EMULATOR,
    # ELF for the Arm 64-bit Architecture numbers; JITLink aarch64 kinds.
    jitlink_edges=(
        JITLinkEdge(275, "R_AARCH64_ADR_PREL_PG_HI21", "Page21", fixup=fix_page21),
        JITLinkEdge(282, "R_AARCH64_JUMP26", "Branch26PCRel", fixup=fix_branch26),
        JITLinkEdge(283, "R_AARCH64_CALL26", "Branch26PCRel", fixup=fix_branch26),
        JITLinkEdge(
            286, "R_AARCH64_LDST64_ABS_LO12_NC", "PageOffset12", fixup=fix_pageoffset12_ld64
        ),
    ),
    harness=HARNESS,
    # Guarded Control Stack (FEAT_GCS, Armv9.4): BL and BLR push the return
    # address, RET checks its target register against the top (a GCS data
    # check exception otherwise); BR is not checked.  Linux 6.13 enables it
    # (`gcs` in /proc/cpuinfo); glibc 2.41 turns it on.
    shadow_stack=ShadowStack(
        name="Arm GCS",
        calls=("bl", "blr"),
        returns=("ret",),
        return_register="x30",
        cpu_flag="gcs",
        glibc="2.41",
    ),
    # GNU_PROPERTY_AARCH64_FEATURE_1_AND: BTI, GCS (AArch64 ELF ABI).
    gnu_property=GnuProperty(pr_type=0xC0000000, landing_pad=0x1, shadow_stack=0x4),
    scaffold=Scaffold(_bl, lambda order: words(order, 0xD65F03C0)),  # ret
)
