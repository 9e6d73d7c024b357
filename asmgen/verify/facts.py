"""What the emulator needs to know about each architecture, as data.

Adding an arch to `asmgen verify` is adding one `EmuFacts` record here (and its
caller and return scaffolding in chain.py; stubs and trampolines are the
table's own).  Nothing here names an ABI: the
calling convention itself (argument registers, callee-saved registers, home
area, alignment) is read from the spec.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field


@dataclass(frozen=True)
class EmuFacts:
    arch: str  # asmgen arch name (asmgen/arch.py)
    uc_arch: str  # unicorn UC_ARCH_* name
    uc_mode: str  # unicorn UC_MODE_* name (UC_MODE_BIG_ENDIAN is added for big-endian specs)
    const_module: str  # unicorn module with the register ids
    reg_prefix: str  # register id = <const_module>.<reg_prefix><NAME>
    pc: str
    sp: str
    # Register that receives the return address on a call; None when the call
    # pushes it (x86), in which case `call_pushes` bytes sit at sp on entry.
    link: str | None
    call_pushes: int
    # Registers set before the run to enable units the code uses (FPU).
    init: tuple[tuple[str, int], ...] = ()
    # Registers no code may clobber (hard-wired zero, kernel registers, ...).
    reserved: tuple[str, ...] = ()
    # Flags register and the bits the hook clobbers (arithmetic flags only: a
    # conforming callee keeps e.g. x86's DF clear).
    flags: tuple[str, int] | None = None
    # FP control registers: name -> (sentinel, clobber) values, both valid settings.
    fp_control: dict[str, tuple[int, int]] = field(default_factory=dict)
    # Register ids unicorn spells differently from the spec: spec name -> unicorn name.
    uc_names: dict[str, str] = field(default_factory=dict)
    # A narrower register that is the low part of a wider one: name -> (full register, bits).
    # The hook keeps a callee-saved low part and clobbers the rest (upper lanes).
    aliases: dict[str, tuple[str, int]] = field(default_factory=dict)
    # Registers the emulator can clobber beyond asmgen's register table (none yet).
    extra_clobber: tuple[tuple[str, int], ...] = ()
    # Base of the emulated address space; 64-bit arches use addresses above 4 GiB
    # so that a truncated address field shows.
    base: int = 0x12_1000_0000
    # Native execution: the host (platform.machine(), system) that runs this arch.
    native_hosts: tuple[tuple[str, str], ...] = ()
    # The host C ABI's integer argument registers; only specs with this
    # convention can be run natively through ctypes.
    native_int_args: tuple[str, ...] = ()

    def module(self):
        return importlib.import_module(self.const_module)

    def reg_id(self, name: str) -> int:
        uc_name = self.uc_names.get(name, name).upper()
        return getattr(self.module(), self.reg_prefix + uc_name)


X86_64 = EmuFacts(
    arch="x86_64",
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
    fp_control={"mxcsr": (0x9FC0, 0x1F80), "fcw": (0x027F, 0x037F)},
    uc_names={"fcw": "fpcw"},
    base=0x7F5A_1000_0000,
    native_hosts=(("x86_64", "Linux"), ("AMD64", "Linux")),
    native_int_args=("rdi", "rsi", "rdx", "rcx", "r8", "r9"),
)

I386 = EmuFacts(
    arch="i386",
    uc_arch="UC_ARCH_X86",
    uc_mode="UC_MODE_32",
    const_module="unicorn.x86_const",
    reg_prefix="UC_X86_REG_",
    pc="eip",
    sp="esp",
    link=None,
    call_pushes=4,
    flags=("eflags", 0x8D5),
    fp_control={"mxcsr": (0x9FC0, 0x1F80), "fcw": (0x027F, 0x037F)},
    uc_names={"fcw": "fpcw"},
    base=0x1000_0000,
)

AARCH64 = EmuFacts(
    arch="aarch64",
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
)


def _mips(arch: str, mode: str, uc_names: dict[str, str], status: int) -> EmuFacts:
    return EmuFacts(
        arch=arch,
        uc_arch="UC_ARCH_MIPS",
        uc_mode=mode,
        const_module="unicorn.mips_const",
        reg_prefix="UC_MIPS_REG_",
        pc="pc",
        sp="sp",
        link="ra",
        call_pushes=0,
        reserved=("zero", "k0", "k1"),
        uc_names=uc_names,
        # Status.CU1 enables the FPU (and FR selects 64-bit FP registers).
        init=(("cp0_status", status),),
        # unicorn's MIPS64 runs no code above 4 GiB; ctx still tests all 64 bits.
        base=0x1000_0000,
    )


MIPS32 = _mips("mips32", "UC_MODE_MIPS32", {}, 0x2000_0000)
# n64 names $8-$15 a4-a7, t0-t3; unicorn names them by o32 (t0-t7).
MIPS64 = _mips(
    "mips64",
    "UC_MODE_MIPS64",
    {n: str(8 + i) for i, n in enumerate(["a4", "a5", "a6", "a7", "t0", "t1", "t2", "t3"])},
    0x2400_0000,
)

RISCV64 = EmuFacts(
    arch="riscv64",
    uc_arch="UC_ARCH_RISCV",
    uc_mode="UC_MODE_RISCV64",
    const_module="unicorn.riscv_const",
    reg_prefix="UC_RISCV_REG_",
    pc="pc",
    sp="sp",
    link="ra",
    call_pushes=0,
    reserved=("zero", "gp", "tp"),
    # mstatus.FS: the FPU is on.
    init=(("mstatus", 0x6000),),
)

EMU_FACTS: dict[str, EmuFacts] = {
    f.arch: f for f in (X86_64, I386, AARCH64, MIPS32, MIPS64, RISCV64)
}
