"""What MIPS32 (o32) and MIPS64 (n64) share: the emulator binding and the scaffold."""

from __future__ import annotations

from asmgen.arches.encode import field, words
from asmgen.arches.model import EmuFacts, Scaffold


def _jal(at: int, target: int, order: str) -> bytes:
    if (at + 4) >> 28 != target >> 28:
        raise ValueError(f"jal from {at:#x} cannot reach {target:#x}")
    return words(order, 0x0C000000 | field(target >> 2, 26), 0)  # jal; nop


# Hard-wired zero and the kernel's registers (an interrupt may change k0/k1).
RESERVED = ("zero", "k0", "k1")

SCAFFOLD = Scaffold(_jal, lambda order: words(order, 0x03E00008, 0))  # jr ra; nop


def mips_emulator(mode: str, uc_names: dict[str, str], status: int) -> EmuFacts:
    return EmuFacts(
        uc_arch="UC_ARCH_MIPS",
        uc_mode=mode,
        const_module="unicorn.mips_const",
        reg_prefix="UC_MIPS_REG_",
        pc="pc",
        sp="sp",
        link="ra",
        call_pushes=0,
        reserved=RESERVED,
        uc_names=uc_names,
        # Status.CU1 enables the FPU (and FR selects 64-bit FP registers).
        init=(("cp0_status", status),),
        # unicorn's MIPS64 runs no code above 4 GiB; ctx still tests all 64 bits.
        base=0x1000_0000,
    )
