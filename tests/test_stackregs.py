"""Saved and restored registers, read from code that an assembler (not asmgen) made.

Immediates are 0x-hex: keystone's radix setting leaks between engines in one process.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import keystone
import pytest

from asmgen.arches import ARCHES, Arch, Register
from asmgen.build.disasm import capstone_for, decode_code
from asmgen.resources import SPECS_DIR
from asmgen.review.stackregs import stack_transfers
from asmgen.spec import load_spec


def _arch(name: str, capstone: tuple[str, str], regs: str, sp: str) -> Arch:
    return Arch(
        name=name,
        pointer_size=8,
        element="uint32_t",
        registers=tuple(Register(r, "gpr", 64) for r in regs.split()),
        stack_pointer=sp,
        keystone=None,
        capstone=capstone,
        llvm_triple=None,
        llvm_mattr=None,
    )


def _keystone(arch: str, mode: str, source: str) -> bytes:
    ks = keystone.Ks(getattr(keystone, arch), getattr(keystone, mode))
    return bytes(ks.asm(source, 0)[0])


def _llvm_mc_riscv(source: str, tmp: Path) -> bytes:
    obj = tmp / "t.o"
    subprocess.run(
        ["llvm-mc-19", "-triple=riscv64", "-mattr=+d,-relax", "-filetype=obj", "-o", str(obj)],
        input=source.encode(),
        check=True,
    )
    out = tmp / "t.bin"
    subprocess.run(
        ["llvm-objcopy-19", "-O", "binary", "--only-section=.text", str(obj), str(out)], check=True
    )
    return out.read_bytes()


CASES = {
    "aarch64": (
        ("CS_ARCH_ARM64", "CS_MODE_ARM"),
        "x0 x1 x29 x30 x16 q0 sp",
        "sp",
        ("KS_ARCH_ARM64", "KS_MODE_LITTLE_ENDIAN"),
        "stp x29, x30, [sp, #-0x10]!; mov x29, sp; stp x0, x1, [sp, #-0x10]!;"
        "str q0, [sp, #-0x10]!; ldr x16, [x29, #0x8]; blr x16; ldr q0, [sp], #0x10;"
        "ldp x0, x1, [sp], #0x10;"
        "ldp x29, x30, [sp], #0x10; ret",
        ["x29", "x30", "x0", "x1", "q0"],
        ["q0", "x0", "x1", "x29", "x30"],
    ),
    "mips32be": (
        ("CS_ARCH_MIPS", "CS_MODE_MIPS32"),
        "$ra $a0 $t9 $sp $f12",
        "$sp",
        ("KS_ARCH_MIPS", "KS_MODE_MIPS32+KS_MODE_BIG_ENDIAN"),
        "addiu $sp, $sp, -0x20; sw $ra, 0x1c($sp); sw $a0, 0x18($sp); sdc1 $f12, 0x10($sp);"
        "lw $t9, 0x0($a0); jalr $t9; nop; ldc1 $f12, 0x10($sp); lw $a0, 0x18($sp);"
        "lw $ra, 0x1c($sp); jr $ra; addiu $sp, $sp, 0x20",
        ["$ra", "$a0", "$f12"],
        ["$f12", "$a0", "$ra"],
    ),
}


def _check(arch: Arch, byteorder: str, code: bytes, saved: list[str], restored: list[str]):
    found = stack_transfers(capstone_for(arch, byteorder, detail=True), arch, code)
    assert (list(found.saved), list(found.restored)) == (saved, restored)


@pytest.mark.parametrize("name", sorted(CASES))
def test_load_store_arches(name):
    cs_pair, regs, sp, (ks_arch, ks_mode), source, saved, restored = CASES[name]
    mode = 0
    for part in ks_mode.split("+"):
        mode |= getattr(keystone, part)
    code = bytes(keystone.Ks(getattr(keystone, ks_arch), mode).asm(source, 0)[0])
    byteorder = "big" if "BIG" in ks_mode else "little"
    _check(_arch(name, cs_pair, regs, sp), byteorder, code, saved, restored)


def test_riscv64(tmp_path):
    arch = _arch("riscv64", ("CS_ARCH_RISCV", "CS_MODE_RISCV64"), "ra sp a0 t0 fa0", "sp")
    code = _llvm_mc_riscv(
        "addi sp, sp, -32\nsd ra, 24(sp)\nsd a0, 16(sp)\nfsd fa0, 8(sp)\nld t0, 0(a0)\n"
        "jalr t0\nfld fa0, 8(sp)\nld a0, 16(sp)\nld ra, 24(sp)\naddi sp, sp, 32\nret\n",
        tmp_path,
    )
    _check(arch, "little", code, ["ra", "a0", "fa0"], ["fa0", "a0", "ra"])


def test_x86_64_push_pop_not_call_or_frame_stores():
    # The store through %rbp writes the return slot, not a save; the call is no push.
    code = _keystone(
        "KS_ARCH_X86",
        "KS_MODE_64",
        "push rbp; mov rbp, rsp; push rbx; call rax; mov [rbp + 0x8], rax; pop rbx; pop rbp; ret",
    )
    _check(ARCHES["x86_64"], "little", code, ["rbp", "rbx"], ["rbx", "rbp"])


def test_mips64_n64_names(llvm_tables):
    """capstone calls $8-$15 by their o32 names in any mode; the arch record
    renames them to n64's a4-a7, t0-t3 in the listing and in the transfers.
    The code is LLVM's Mips64 resolver (facts): its save lines must name
    exactly the registers the spec saves, in order."""
    arch = ARCHES["mips64"]
    # sd $8, 0($sp); sd $12, 8($sp), encoded by hand (opcode 0x3f, base $29,
    # rt, offset) so no assembler's register names are involved: n64 calls
    # $8 a4 and $12 t0.
    code = b"".join(
        (0xFC000000 | 29 << 21 | rt << 16 | offset).to_bytes(4, "little")
        for rt, offset in ((8, 0), (12, 8))
    )
    texts = [text for _, _, text in decode_code(arch, "little", None, code)]
    assert texts == ["sd $a4, ($sp)", "sd $t0, 8($sp)"]
    _check(arch, "little", code, ["a4", "t0"], [])

    spec = load_spec(SPECS_DIR / "mips64.yaml")
    llvm = bytes.fromhex(llvm_tables["Mips64"]["hex"])
    lines = decode_code(arch, "little", None, llvm)
    saves = [
        text.split()[1].rstrip(",").lstrip("$") for _, _, text in lines if text.startswith("sd ")
    ]
    assert saves == list(spec.resolver.saves)
    found = stack_transfers(capstone_for(arch, "little", detail=True), arch, llvm)
    assert list(found.saved) == list(spec.resolver.saves)
