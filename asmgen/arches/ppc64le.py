"""PowerPC64 little-endian (ELFv2): registers and tool bindings.

keystone assembles (it names registers `%r1`, `%f1`, `%vs34`, as llvm-mc
does); capstone disassembles.  unicorn emulates PowerPC big-endian only, so
these tables are checked statically and run for real under qemu-user with
the compiled-code harness.
"""

from __future__ import annotations

from asmgen.arches.encode import fix_call_branch_delta, fix_delta16ha, fix_delta16lo
from asmgen.arches.model import (
    Arch,
    Harness,
    HarnessTarget,
    JITLinkEdge,
    OrcFactory,
    numbered,
    regs,
)
from asmgen.arches.patchkind import PatchKind

# Unrounded 16-bit pieces of a 64-bit address: lis/ori/sldi/oris/ori combine
# them with logical ORs and a shift, which carry nothing (@highest, @higher,
# @h; the generic lo16 is @l).
PATCH_KINDS = (
    PatchKind("u16_48", 16, "(value >> 48) & 0xFFFF", "bits 63..48, not rounded (@highest)"),
    PatchKind("u16_32", 16, "(value >> 32) & 0xFFFF", "bits 47..32, not rounded (@higher)"),
    PatchKind("u16_16", 16, "(value >> 16) & 0xFFFF", "bits 31..16, not rounded (@h)"),
)

# VSX registers as the harness scaffold stores them: vs0-vs31 (whose first
# doubleword is f0-f31) with stxvd2x, which puts that doubleword first;
# vs32-vs63 (v0-v31) with stvx, which stores a vector in C's memory order.
VSX = tuple(f"vs{i}" for i in range(64))

HARNESS = Harness(
    # The stack pointer, the TOC pointer (the C code's own, set again by every
    # global entry point) and the thread pointer.
    reserved=("r1", "r2", "r13"),
    fprs=VSX,
    fpr_bits=128,
    parts={
        **{f"f{i}": (f"vs{i}", 0, 64) for i in range(32)},
        **{f"v{i}": (f"vs{32 + i}", 0, 128) for i in range(32)},
    },
    read_sp="mr %0, 1",
    # glibc's mcontext: gp_regs[32] is the NIP (PT_NIP).
    ucontext_pc="uc->uc_mcontext.gp_regs[32]",
    targets=(
        HarnessTarget(
            convention="ppc64_elfv2",
            endian="little",
            compiler="powerpc64le-linux-gnu-gcc",
            method="qemu-ppc64le",
            runner=("qemu-ppc64le-static",),
            packages=(
                "gcc-powerpc64le-linux-gnu",
                "libc6-dev-ppc64el-cross",
                "qemu-user-static",
            ),
        ),
    ),
)

ARCH = Arch(
    name="ppc64le",
    aliases=("ppc64el", "powerpc64le"),
    vector_kinds=("vr-regs", "none"),
    pointer_size=8,
    element="uint32_t",
    registers=regs("gpr", 64, numbered("r", 32))
    + regs("fpr", 64, numbered("f", 32))
    + regs("vec", 128, numbered("v", 32))
    # The link and count registers: a call (bl, bctrl) leaves its return
    # address in lr; bctr jumps through ctr.
    + regs("spr", 64, "lr ctr")
    # FP status and control (rounding mode RN, exception enables, NI).
    + regs("ctl", 32, "fpscr"),
    stack_pointer="r1",
    # LLVM names the 64-bit GPRs x0-x31.
    llvm_names=((r"x(\d+)", r"r\1"),),
    keystone=("KS_ARCH_PPC", "KS_MODE_PPC64"),
    capstone=("CS_ARCH_PPC", "CS_MODE_64"),
    llvm_triple="powerpc64le",
    llvm_mattr=None,
    call_link="lr",
    # The thread pointer (r13): no code may write it.
    reserved=("r13",),
    no_emulator="unicorn 2 emulates PowerPC big-endian only",
    patch_kinds=PATCH_KINDS,
    harness=HARNESS,
    # LLVM's factory functions pick OrcPPC64 for little-endian PowerPC64
    # (big-endian Linux is ELFv1, another ABI).
    orc_factory=OrcFactory(triples=("ppc64le",), llvm_class="OrcPPC64"),
    # PowerPC64 ELF ABI numbers.  `bl` becomes JITLink ppc64's direct
    # CallBranchDelta (ELF_ppc64 reads R_PPC64_REL24 as RequestCall, which
    # asks for a TOC-saving PLT stub: the reentry blocks keep no TOC);
    # @ha/@l of a pc-relative difference are Delta16HA/Delta16LO, as in
    # JITLink's no-TOC pointer jump stub.  ELF addends are JITLink's.
    jitlink_edges=(
        JITLinkEdge(10, "R_PPC64_REL24", "CallBranchDelta", fixup=fix_call_branch_delta),
        JITLinkEdge(250, "R_PPC64_REL16_LO", "Delta16LO", fixup=fix_delta16lo),
        JITLinkEdge(252, "R_PPC64_REL16_HA", "Delta16HA", fixup=fix_delta16ha),
    ),
)
