"""x86-64: registers, keystone/capstone/unicorn bindings, CET landing pad, XSAVE."""

from __future__ import annotations

from asmgen.arches.encode import fix_branch_pcrel32
from asmgen.arches.model import (
    Arch,
    EmuFacts,
    GnuProperty,
    Harness,
    HarnessTarget,
    JITLinkEdge,
    ShadowStack,
    regs,
)
from asmgen.arches.x86 import FXSAVE64, PCREL32, SCAFFOLD, XSAVE64
from asmgen.arches.x86_64_unwind import FORMATS as UNWIND_FORMATS
from asmgen.arches.x86_64_vectors import NATIVE_VECTORS

EMULATOR = EmuFacts(
    uc_arch="UC_ARCH_X86",
    uc_mode="UC_MODE_64",
    const_module="unicorn.x86_const",
    reg_prefix="UC_X86_REG_",
    pc="rip",
    sp="rsp",
    link=None,
    call_pushes=8,
    # CF PF AF ZF SF OF
    flags=("eflags", 0x8D5),
    fp_control={"mxcsr": (0x9FC0, 0x1FBF), "fcw": (0x027F, 0x037F)},
    uc_names={"fcw": "fpcw"},
    base=0x7F5A_1000_0000,
    native_hosts=(("x86_64", "Linux"), ("AMD64", "Linux")),
    native_int_args=("rdi", "rsi", "rdx", "rcx", "r8", "r9"),
)

# The fault's x87/SSE control state, from glibc's x86-64 ucontext.
_FPU = (
    "(uc->uc_mcontext.fpregs ? uc->uc_mcontext.fpregs->cwd"
    " | (uint64_t)uc->uc_mcontext.fpregs->swd << 16"
    " | (uint64_t)uc->uc_mcontext.fpregs->mxcsr << 32 : 0)"
)

HARNESS = Harness(
    reserved=("rsp",),
    fprs=tuple(f"xmm{i}" for i in range(16)),
    fpr_bits=128,
    read_sp="movq %%rsp, %0",
    ucontext_pc="uc->uc_mcontext.gregs[REG_RIP]",
    ucontext_fpu=_FPU,
    x87=True,
    targets=(
        HarnessTarget(
            convention="sysv_amd64",
            endian="little",
            compiler="x86_64-linux-gnu-gcc",
            method="native",
            packages=("gcc", "libc6-dev"),
            hosts=("x86_64",),
        ),
        # mingw-w64's -O0 code spills rcx/rdx/r8/r9 into the caller's home
        # area, as MSVC's does.
        HarnessTarget(
            convention="ms_x64",
            endian="little",
            compiler="x86_64-w64-mingw32-gcc",
            method="wine",
            runner=("wine",),
            packages=("gcc-mingw-w64-x86-64", "wine", "wine64"),
            hosts=("x86_64",),
            windows=True,
        ),
    ),
)

ARCH = Arch(
    name="x86_64",
    aliases=("x86-64", "x86", "amd64"),
    vector_kinds=("fxsave64", "xsave64", "q-regs", "none"),
    unwind=UNWIND_FORMATS,
    vector_realign=True,
    pointer_size=8,
    element="uint8_t",
    registers=regs("gpr", 64, "rax rbx rcx rdx rsi rdi rbp rsp r8 r9 r10 r11 r12 r13 r14 r15")
    + regs("vec", 128, " ".join(f"xmm{i}" for i in range(16)))
    # FP control: SSE control/status and the x87 control word.
    + regs("ctl", 32, "mxcsr")
    + regs("ctl", 16, "fcw"),
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
    wide_vectors=(("avx", 256), ("avx512f", 512)),
    emulator=EMULATOR,
    # ELF x86-64 psABI numbers; JITLink x86_64 BranchPCRel32 (its stubs'
    # and reentry trampolines' edge kind).
    jitlink_edges=(
        JITLinkEdge(2, "R_X86_64_PC32", "BranchPCRel32", 4, fix_branch_pcrel32),
        JITLinkEdge(4, "R_X86_64_PLT32", "BranchPCRel32", 4, fix_branch_pcrel32),
    ),
    # CET shadow stack (Intel SDM vol. 1 ch. 17): CALL pushes, RET pops and
    # raises #CP when the two return addresses differ.  Linux 6.6 enables it
    # for user space (`user_shstk` in /proc/cpuinfo); glibc 2.39 turns it on.
    shadow_stack=ShadowStack(
        name="Intel CET shadow stack",
        calls=("call",),
        returns=("ret",),
        return_register=None,
        cpu_flag="user_shstk",
        glibc="2.39",
    ),
    # GNU_PROPERTY_X86_FEATURE_1_AND: IBT, SHSTK (x86-64 psABI).
    gnu_property=GnuProperty(pr_type=0xC0000002, landing_pad=0x1, shadow_stack=0x2),
    native_vectors=NATIVE_VECTORS,
    harness=HARNESS,
    scaffold=SCAFFOLD,
    patch_kinds=(PCREL32,),
    vector_areas=(
        FXSAVE64,
        XSAVE64,
    ),
)
