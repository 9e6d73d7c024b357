"""s390x (z/Architecture, 64-bit ELF): registers and tool bindings.

Big-endian, variable-length instructions (2, 4 or 6 bytes), so tables are
bytes, as x86's.  f0-f15 are the leftmost 64 bits of the vector registers
v0-v15 (the vector facility, z13 and later).  keystone 0.9.2 assembles the
base instruction set but not the vector facility: a spec that stores vector
registers names `backend: llvm-mc`.
"""

from __future__ import annotations

from asmgen.arches.encode import field, fix_delta32dbl, reach
from asmgen.arches.model import (
    Arch,
    EmuFacts,
    Harness,
    HarnessTarget,
    JITLinkEdge,
    OrcFactory,
    Register,
    Scaffold,
    numbered,
    regs,
)
from asmgen.arches.patchkind import PatchKind


def _brasl(at: int, target: int, order: str) -> bytes:
    """brasl %r14, target: halfwords from the instruction."""
    off = reach(at, target, 33)
    return (0xC0E5 << 32 | field(off >> 1, 32)).to_bytes(6, "big")


# The relative-long operand (larl, lgrl, brasl): a signed 32-bit count of
# halfwords from the instruction itself.
PCREL32DBL = PatchKind(
    "pcrel32dbl",
    32,
    "value >> 1",
    "relative-long offset in halfwords from the instruction (z/Architecture larl, lgrl, brasl)",
    pcrel=True,
    operand="displacement",
    shift=1,
    exact=True,
    limit="relative-long range: +-4 GiB",
)

VECTORS = regs("vec", 128, numbered("v", 32))
# f0-f15 are v0-v15's leftmost halves: storing v<n> keeps f<n>.
FPRS = tuple(Register(f"f{i}", "fpr", 64, part_of=f"v{i}") for i in range(16))

EMULATOR = EmuFacts(
    uc_arch="UC_ARCH_S390X",
    uc_mode="UC_MODE_BIG_ENDIAN",
    const_module="unicorn.s390x_const",
    reg_prefix="UC_S390X_REG_",
    pc="pc",
    sp="r15",
    link="r14",
    call_pushes=0,
    # As Linux runs a process: the PSW in 64-bit addressing mode (bits 31
    # and 32), and CR0 bits 45 and 46 (AFP registers, vector enablement),
    # without which f1-f15 and the vector instructions raise a data exception.
    init=(("pswm", 0x1_8000_0000), ("cr0", 0x60000)),
    # unicorn exposes a vector register as two 64-bit halves, F<n> (its
    # leftmost doubleword, which is f<n>) and F<n>_HI; the emulator's value of
    # v<n> holds f<n> in its low 64 bits, so f<n> is an alias of those.
    halves={f"v{i}": (f"f{i}_hi", f"f{i}") for i in range(32)},
    aliases={f"f{i}": (f"v{i}", 64) for i in range(16)},
    unmodeled=(("fpc", "unicorn 2 has no register id for it"),),
)

HARNESS = Harness(
    reserved=("r15",),
    fprs=tuple(r.name for r in VECTORS),
    fpr_bits=128,
    # f<n> is the leftmost doubleword of v<n>: bits 64-127 of the big-endian value.
    parts={f"f{i}": (f"v{i}", 64, 128) for i in range(16)},
    unprobed=(
        ("r12", "gcc reserves it as the GOT pointer of position-independent code"),
        # LLVM's callee-saved list has it; verify's stack_pointer check covers it.
        ("r15", "the stack pointer: inline asm cannot clobber it"),
    ),
    read_sp="lgr %0, %%r15",
    ucontext_pc="uc->uc_mcontext.psw.addr",
    targets=(
        HarnessTarget(
            convention="s390x_elf",
            endian="big",
            compiler="s390x-linux-gnu-gcc",
            method="qemu-s390x",
            runner=("qemu-s390x-static",),
            packages=("gcc-s390x-linux-gnu", "libc6-dev-s390x-cross", "qemu-user-static"),
            # The vector facility: v24-v31 carry vector arguments.
            cflags=("-march=z13",),
        ),
        HarnessTarget(
            convention="s390x_elf_novector",
            endian="big",
            compiler="s390x-linux-gnu-gcc",
            method="qemu-s390x",
            runner=("qemu-s390x-static",),
            packages=("gcc-s390x-linux-gnu", "libc6-dev-s390x-cross", "qemu-user-static"),
            # Debian's baseline: no vector facility (the scaffold still
            # stores the vector registers, under `.machine "z13"`).
            cflags=("-march=z196",),
        ),
    ),
)

ARCH = Arch(
    name="s390x",
    vector_kinds=("q-regs", "none"),
    pointer_size=8,
    element="uint8_t",
    registers=regs("gpr", 64, numbered("r", 16))
    + FPRS
    + VECTORS
    # Floating-point control: IEEE masks, flags, DXC, rounding modes.
    + regs("ctl", 32, "fpc"),
    stack_pointer="r15",
    keystone=("KS_ARCH_SYSTEMZ", "KS_MODE_BIG_ENDIAN"),
    capstone=("CS_ARCH_SYSZ", "CS_MODE_BIG_ENDIAN"),
    # capstone's reg_name calls the general registers by number.
    capstone_names=tuple((str(i), f"r{i}") for i in range(16)),
    llvm_triple="s390x",
    # The vector facility (z13): vst/vl of v16-v31.
    llvm_mattr="+vector",
    endians=("big",),
    call_link="r14",
    emulator=EMULATOR,
    harness=HARNESS,
    scaffold=Scaffold(_brasl, lambda order: bytes.fromhex("07fe")),  # br %r14
    patch_kinds=(PCREL32DBL,),
    orc_factory=OrcFactory(triples=("systemz",), llvm_class="OrcSystemZ"),
    # s390x ELF ABI numbers.  A relative-long operand (brasl, lgrl) becomes
    # JITLink systemz's Delta32dbl, the kind its own pointer jump stub uses;
    # the ELF addend (+2: the operand is 2 bytes into the instruction) is
    # JITLink's as it is.  A PLT-relative brasl is linked direct, as JITLink
    # does once the target is in reach.
    jitlink_edges=(
        JITLinkEdge(19, "R_390_PC32DBL", "Delta32dbl", fixup=fix_delta32dbl),
        JITLinkEdge(20, "R_390_PLT32DBL", "Delta32dbl", fixup=fix_delta32dbl),
    ),
)
