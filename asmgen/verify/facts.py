"""What the emulator needs to know about each architecture, as data.

Adding an arch to `asmgen verify` is adding one `EmuFacts` record here (and its
trampoline/stub encoders in chain.py).  Nothing here names an ABI: the
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
    # The re-entry function's body: one return instruction (a hook plays the JIT first).
    ret_insn: bytes
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
    base: int = 0x10000000
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
    ret_insn=bytes.fromhex("c3"),
    # CF PF AF ZF SF OF
    flags=("eflags", 0x8D5),
    fp_control={"mxcsr": (0x9FC0, 0x1F80), "fcw": (0x027F, 0x037F)},
    uc_names={"fcw": "fpcw"},
    base=0x7F5A_1000_0000,
    native_hosts=(("x86_64", "Linux"), ("AMD64", "Linux")),
    native_int_args=("rdi", "rsi", "rdx", "rcx", "r8", "r9"),
)

EMU_FACTS: dict[str, EmuFacts] = {f.arch: f for f in (X86_64,)}
