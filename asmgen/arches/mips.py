"""What MIPS32 (o32) and MIPS64 (n64) share: the emulator binding and the scaffold."""

from __future__ import annotations

import re

from asmgen.arches.encode import field, words
from asmgen.arches.model import DelaySlots, EmuFacts, Harness, HarnessTarget, Scaffold


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
        # FCSR: round toward zero; the clobber raises every flag.
        fp_control={"fcsr": (0x1, 0x7C)},
        # Status.CU1 enables the FPU (and FR selects 64-bit FP registers).
        init=(("cp0_status", status),),
        # unicorn's MIPS64 runs no code above 4 GiB; ctx still tests all 64 bits.
        base=0x1000_0000,
    )


# Instructions whose first register operand is a source (stores), not a destination.
_STORES = {"sb", "sh", "sw", "sd", "swl", "swr", "sdl", "sdr", "swc1", "sdc1", "sc", "scd"}
# Branches that link: they write ra (jalr rd, rs writes rd).
_LINKING = {"jal", "jalr", "bal", "bgezal", "bltzal"}


def _registers(operands: str) -> list[str]:
    return re.findall(r"\$(\w+)", operands)


def _is_branch(mnemonic: str, operands: str) -> bool:
    # j, jal, jr, jalr and every b* branch (beq, bne, bal, b, ...); not `break`.
    return mnemonic[:1] in ("j", "b") and mnemonic != "break"


def _reads(mnemonic: str, operands: str) -> set[str]:
    regs = _registers(operands)
    if mnemonic == "jalr" and len(regs) == 2:
        return {regs[1]}
    return set(regs)


def _writes(mnemonic: str, operands: str) -> set[str]:
    regs = _registers(operands)
    if mnemonic in _LINKING:
        return {regs[0]} if mnemonic == "jalr" and len(regs) == 2 else {"ra"}
    if _is_branch(mnemonic, operands) or mnemonic in _STORES or not regs:
        return set()
    return {regs[0]}


DELAY_SLOTS = DelaySlots(_is_branch, _reads, _writes)


def mips_harness(fprs: tuple[str, ...], targets: tuple[HarnessTarget, ...], **extra) -> Harness:
    return Harness(
        reserved=("zero", "k0", "k1", "sp"),
        fprs=fprs,
        fpr_bits=64,
        targets=targets,
        # PIC code needs gp: gcc refuses an asm clobber of it.
        unprobed=(("gp", "gcc refuses an asm clobber of the PIC register"),),
        read_sp="move %0, $sp",
        ucontext_pc="uc->uc_mcontext.pc",
        **extra,
    )


def mips_target(
    convention: str, endian: str, triple: str, qemu: str, libc: str, cpu: str = ""
) -> HarnessTarget:
    """A Debian cross gcc (package gcc-<triple>, with its libc `libc`) and a
    qemu-user binary (qemu-<qemu>-static, with `-cpu cpu`) for one MIPS flavour."""
    return HarnessTarget(
        convention=convention,
        endian=endian,
        compiler=f"{triple}-gcc",
        method=f"qemu-{qemu}",
        runner=(f"qemu-{qemu}-static", *(("-cpu", cpu) if cpu else ())),
        packages=(f"gcc-{triple}", libc, "qemu-user-static"),
    )
