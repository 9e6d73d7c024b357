"""i386 (32-bit x86): registers and tool bindings."""

from __future__ import annotations

from asmgen.arches.model import Arch, EmuFacts, Harness, HarnessTarget, numbered, regs
from asmgen.arches.x86 import FXSAVE, PCREL32, SCAFFOLD

EMULATOR = EmuFacts(
    uc_arch="UC_ARCH_X86",
    uc_mode="UC_MODE_32",
    const_module="unicorn.x86_const",
    reg_prefix="UC_X86_REG_",
    pc="eip",
    sp="esp",
    link=None,
    call_pushes=4,
    flags=("eflags", 0x8D5),
    fp_control={"mxcsr": (0x9FC0, 0x1FBF), "fcw": (0x027F, 0x037F)},
    uc_names={"fcw": "fpcw"},
    base=0x1000_0000,
)

HARNESS = Harness(
    reserved=("esp",),
    fprs=tuple(f"xmm{i}" for i in range(8)),
    fpr_bits=128,
    read_sp="movl %%esp, %0",
    ucontext_pc="uc->uc_mcontext.gregs[REG_EIP]",
    x87=True,
    targets=(
        # Static i386 Linux binaries run natively on an x86-64 kernel.
        HarnessTarget(
            convention="i386_sysv",
            endian="little",
            compiler="i686-linux-gnu-gcc",
            method="native",
            packages=("gcc-i686-linux-gnu", "libc6-dev-i386-cross"),
            cflags=("-msse2",),
            hosts=("x86_64", "i686"),
        ),
    ),
)

ARCH = Arch(
    name="i386",
    aliases=("x86", "i686"),
    vector_kinds=("fxsave",),
    pointer_size=4,
    element="uint8_t",
    registers=regs("gpr", 32, "eax ebx ecx edx esi edi ebp esp")
    + regs("vec", 128, numbered("xmm", 8))
    + regs("ctl", 32, "mxcsr")
    + regs("ctl", 16, "fcw"),
    stack_pointer="esp",
    keystone=("KS_ARCH_X86", "KS_MODE_32"),
    capstone=("CS_ARCH_X86", "CS_MODE_32"),
    llvm_triple="i386",
    llvm_mattr=None,
    frame_pointer="ebp",
    return_on_stack=True,
    emulator=EMULATOR,
    harness=HARNESS,
    scaffold=SCAFFOLD,
    patch_kinds=(PCREL32,),
    vector_areas=(FXSAVE,),
)
