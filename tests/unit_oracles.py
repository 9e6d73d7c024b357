"""Independent oracles for trampolines and stubs, used by test_units.py.

1. LLVM's formulas (OrcABISupport.cpp writeTrampolines/writeIndirectStubsBlock),
   restated from their facts: base words OR-ed with shifted fields, in LLVM's
   own uint32/uint64 arithmetic.
2. The assembler, fed the concrete instructions (real targets, labels or
   %pcrel_hi/%hi operators), written here and not taken from the templates.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

M32 = (1 << 32) - 1
M64 = (1 << 64) - 1


def _align(value: int, align: int) -> int:
    return -(-value // align) * align


def _words(words: list[int], order: str, size: int = 4) -> bytes:
    return b"".join((w & ((1 << (8 * size)) - 1)).to_bytes(size, order) for w in words)


# ------------------------------------------------------------ LLVM formulas


def llvm_trampolines(abi: str, block: int, resolver: int, n: int, order: str = "little") -> bytes:
    if abi.startswith("X86_64"):
        off = n * 8
        out = bytearray(off + 8)
        out[off:] = resolver.to_bytes(8, "little")
        for i in range(n):
            out[8 * i : 8 * i + 8] = _words(
                [0xF1C40000000015FF | (((off - 6) & M32) << 16)], "little", 8
            )
            off -= 8
        return bytes(out)
    if abi == "I386":
        rel = (resolver - block - 5) & M64
        out = bytearray()
        for _ in range(n):
            out += _words([0xF1C4C400000000E8 | ((rel << 8) & M64)], "little", 8)
            rel = (rel - 8) & M64
        return bytes(out)
    if abi in ("AArch64", "Riscv64", "LoongArch64"):
        size = 12 if abi == "AArch64" else 16
        off = _align(n * size, 8)
        out = bytearray(off + 8)
        out[off:] = resolver.to_bytes(8, "little")
        if abi == "AArch64":
            off -= 4
        for i in range(n):
            if abi == "AArch64":
                words = [0xAA1E03F1, 0x58000010 | ((off << 3) & M32), 0xD63F0200]
            else:
                hi20 = (off + 0x800) & 0xFFFFF000
                lo12 = (off - hi20) & M32
                if abi == "Riscv64":
                    words = [0x00000297 | hi20, 0x0002B283 | ((lo12 & 0xFFF) << 20)]
                    words += [0x00028367, 0xDEADFACE]
                else:
                    words = [0x1C00000C | (((hi20 >> 12) & 0xFFFFF) << 5)]
                    words += [0x28C0018C | ((lo12 & 0xFFF) << 10), 0x4C00018D, 0]
            out[size * i : size * (i + 1)] = _words(words, "little")
            off -= size
        return bytes(out)
    if abi.startswith("Mips32"):
        hi = (resolver + 0x8000) >> 16
        words = [0x03E0C025, 0x3C190000 | (hi & 0xFFFF), 0x27390000 | (resolver & 0xFFFF)]
        words += [0x0320F809, 0]
        return _words(words * n, order)
    if abi == "Mips64":
        highest = ((resolver + 0x800080008000) & M64) >> 48
        higher = ((resolver + 0x80008000) & M64) >> 32
        hi = ((resolver + 0x8000) & M64) >> 16
        words = [0x03E0C025, 0x3C190000 | (highest & 0xFFFF), 0x67390000 | (higher & 0xFFFF)]
        words += [0x0019CC38, 0x67390000 | (hi & 0xFFFF), 0x0019CC38]
        words += [0x67390000 | (resolver & 0xFFFF), 0x0320F809, 0, 0]
        return _words(words * n, order)
    raise KeyError(abi)


def llvm_stubs(abi: str, stubs: int, ptrs: int, n: int, order: str = "little") -> bytes:
    words: list[int] = []
    if abi.startswith("X86_64"):
        field = (((ptrs - stubs - 6) & M64) << 16) & M64
        return _words([0xF1C40000000025FF | field] * n, "little", 8)
    if abi == "I386":
        return _words(
            [0xF1C40000000025FF | (((ptrs + 4 * i) << 16) & M64) for i in range(n)], "little", 8
        )
    if abi == "AArch64":
        disp = (ptrs - stubs) & M64
        return _words([0xD61F020058000010 | (((disp >> 2) & 0x7FFFF) << 5)] * n, "little", 8)
    if abi in ("Riscv64", "LoongArch64"):
        for _ in range(n):
            disp = (ptrs - stubs) & M64
            hi20 = (disp + 0x800) & 0xFFFFF000
            lo12 = (disp - hi20) & M32
            if abi == "Riscv64":
                words += [0x00000297 | hi20, 0x0002B283 | ((lo12 & 0xFFF) << 20)]
                words += [0x00028067, 0xFEEDBEEF]
            else:
                words += [0x1C00000C | (((hi20 >> 12) & 0xFFFFF) << 5)]
                words += [0x28C0018C | ((lo12 & 0xFFF) << 10), 0x4C000180, 0]
            ptrs += 8
            stubs += 16
        return _words(words, "little")
    if abi.startswith("Mips32"):
        for _ in range(n):
            hi = (ptrs + 0x8000) >> 16
            words += [0x3C190000 | (hi & 0xFFFF), 0x8F390000 | (ptrs & 0xFFFF), 0x03200008, 0]
            ptrs += 4
        return _words(words, order)
    if abi == "Mips64":
        for _ in range(n):
            highest = ((ptrs + 0x800080008000) & M64) >> 48
            higher = ((ptrs + 0x80008000) & M64) >> 32
            hi = ((ptrs + 0x8000) & M64) >> 16
            words += [0x3C190000 | (highest & 0xFFFF), 0x67390000 | (higher & 0xFFFF)]
            words += [0x0019CC38, 0x67390000 | (hi & 0xFFFF), 0x0019CC38]
            words += [0xDF390000 | (ptrs & 0xFFFF), 0x03200008, 0]
            ptrs += 8
        return _words(words, order)
    raise KeyError(abi)


# ------------------------------------------------------------ the assembler


def keystone_asm(arch: str, big: bool, source: str, base: int) -> bytes:
    import keystone as ks

    modes = {
        "x86_64": (ks.KS_ARCH_X86, ks.KS_MODE_64),
        "i386": (ks.KS_ARCH_X86, ks.KS_MODE_32),
        "aarch64": (ks.KS_ARCH_ARM64, 0),
        "mips32": (ks.KS_ARCH_MIPS, ks.KS_MODE_MIPS32),
        "mips64": (ks.KS_ARCH_MIPS, ks.KS_MODE_MIPS64),
    }
    ks_arch, mode = modes[arch]
    mode |= ks.KS_MODE_BIG_ENDIAN if big else ks.KS_MODE_LITTLE_ENDIAN
    engine = ks.Ks(ks_arch, mode)
    if arch in ("x86_64", "i386"):
        engine.syntax = ks.KS_OPT_SYNTAX_ATT
    encoding, _ = engine.asm(source, base)
    return bytes(encoding)


def llvm_mc_asm(triple: str, mattr: str, source: str) -> bytes:
    from elftools.elf.elffile import ELFFile

    with tempfile.TemporaryDirectory() as tmp:
        obj = Path(tmp) / "out.o"
        subprocess.run(
            ["llvm-mc-19", f"-triple={triple}", f"-mattr={mattr}", "-filetype=obj", "-o", obj],
            input=source,
            text=True,
            check=True,
            capture_output=True,
        )
        with obj.open("rb") as handle:
            elf = ELFFile(handle)
            relocations = elf.get_section_by_name(".rela.text")
            assert relocations is None or relocations.num_relocations() == 0
            return elf.get_section_by_name(".text").data()


def _split(disp: int) -> tuple[int, int]:
    """A displacement as a signed hi20/lo12 pair (for LoongArch, whose llvm-mc
    has no PC-relative operators for pcaddu12i)."""
    hi = (disp + 0x800) >> 12
    return hi, disp - (hi << 12)


def _block(units: list[str], gap: int, tail: list[str]) -> str:
    return "\n".join([*units, f".space {gap:#x}" if gap else "", *tail]) + "\n"


def assembled_trampolines(abi: str, block: int, resolver: int, n: int) -> bytes:
    """The concrete trampoline block, as the assembler encodes it."""
    big = abi == "Mips32Be"
    if abi.startswith("X86_64"):
        units = ["callq *Lptr(%rip)\n.byte 0xc4, 0xf1"] * n
        return keystone_asm("x86_64", False, _block(units, 0, [f"Lptr: .quad {resolver:#x}"]), 0)
    if abi == "I386":
        units = [f"calll {resolver:#x}\n.byte 0xc4, 0xc4, 0xf1"] * n
        return keystone_asm("i386", False, "\n".join(units), block)
    if abi == "AArch64":
        units = ["mov x17, x30\nldr x16, Lptr\nblr x16"] * n
        pad = _align(12 * n, 8) - 12 * n
        return keystone_asm("aarch64", False, _block(units, pad, [f"Lptr: .quad {resolver:#x}"]), 0)
    if abi.startswith("Mips32"):
        unit = (
            f"move $t8, $ra\nlui $t9, %hi({resolver:#x})\naddiu $t9, $t9, %lo({resolver:#x})\n"
            "jalr $t9\nnop"
        )
        return keystone_asm("mips32", big, ".set noreorder\n" + "\n".join([unit] * n), block)
    if abi == "Mips64":
        r = f"{resolver:#x}"
        unit = (
            f"move $t8, $ra\nlui $t9, %highest({r})\ndaddiu $t9, $t9, %higher({r})\n"
            f"dsll $t9, $t9, 0x10\ndaddiu $t9, $t9, %hi({r})\ndsll $t9, $t9, 0x10\n"
            f"daddiu $t9, $t9, %lo({r})\njalr $t9\nnop\nnop"
        )
        return keystone_asm("mips64", False, ".set noreorder\n" + "\n".join([unit] * n), block)
    if abi == "Riscv64":
        units = [
            f"T{i}: auipc t0, %pcrel_hi(Lptr)\nld t0, %pcrel_lo(T{i})(t0)\njalr t1, 0(t0)\n"
            ".word 0xdeadface"
            for i in range(n)
        ]
        pad = _align(16 * n, 8) - 16 * n
        source = _block(units, pad, [f"Lptr: .quad {resolver:#x}"])
        return llvm_mc_asm("riscv64", "+d,-relax", source)
    if abi == "LoongArch64":
        units = []
        for i in range(n):
            hi, lo = _split(16 * n - 16 * i)
            units.append(f"pcaddu12i $t0, {hi}\nld.d $t0, $t0, {lo}\njirl $t1, $t0, 0\n.word 0")
        source = _block(units, 0, [f".dword {resolver:#x}"])
        return llvm_mc_asm("loongarch64", "+d", source)
    if abi == "PPC64":
        # The resolver's address in @highest/@higher/@h/@l pieces (PowerPC's
        # unadjusted operators), called through ctr with r12 holding it.
        units = ["mflr 0\n" + _ppc_address(12, resolver) + "mtctr 12\nbctrl"] * n
        return llvm_mc_asm("powerpc64le", "", "\n".join(units) + "\n")
    raise KeyError(abi)


def _ppc_address(reg: int, value: int) -> str:
    v = f"{value:#x}"
    return (
        f"lis {reg}, {v}@highest\nori {reg}, {reg}, {v}@higher\nsldi {reg}, {reg}, 32\n"
        f"oris {reg}, {reg}, {v}@h\nori {reg}, {reg}, {v}@l\n"
    )


def assembled_stubs(abi: str, stubs: int, ptrs: int, n: int) -> bytes:
    """The concrete stub block, as the assembler encodes it.  PC-relative
    stubs are assembled with the pointers block at its real distance."""
    big = abi == "Mips32Be"
    if abi.startswith("X86_64"):
        units = [f"jmpq *P{i}(%rip)\n.byte 0xc4, 0xf1" for i in range(n)]
        return _pc_relative(
            units, 8 * n, [f"P{i}: .quad 0" for i in range(n)], stubs, ptrs, 8, "x86_64"
        )
    if abi == "I386":
        units = [f"jmpl *{ptrs + 4 * i:#x}\n.byte 0xc4, 0xf1" for i in range(n)]
        return keystone_asm("i386", False, "\n".join(units), stubs)
    if abi == "AArch64":
        units = [f"ldr x16, {ptrs + 8 * i:#x}\nbr x16" for i in range(n)]
        return keystone_asm("aarch64", False, "\n".join(units), stubs)
    if abi.startswith("Mips32"):
        units = []
        for i in range(n):
            p = f"{ptrs + 4 * i:#x}"
            units.append(f"lui $t9, %hi({p})\nlw $t9, %lo({p})($t9)\njr $t9\nnop")
        return keystone_asm("mips32", big, ".set noreorder\n" + "\n".join(units), stubs)
    if abi == "Mips64":
        units = []
        for i in range(n):
            p = f"{ptrs + 8 * i:#x}"
            units.append(
                f"lui $t9, %highest({p})\ndaddiu $t9, $t9, %higher({p})\ndsll $t9, $t9, 0x10\n"
                f"daddiu $t9, $t9, %hi({p})\ndsll $t9, $t9, 0x10\nld $t9, %lo({p})($t9)\n"
                "jr $t9\nnop"
            )
        return keystone_asm("mips64", False, ".set noreorder\n" + "\n".join(units), stubs)
    if abi == "Riscv64":
        units = [
            f"S{i}: auipc t0, %pcrel_hi(P{i})\nld t0, %pcrel_lo(S{i})(t0)\njr t0\n.word 0xfeedbeef"
            for i in range(n)
        ]
        pointers = [f"P{i}: .quad 0" for i in range(n)]
        return _pc_relative(units, 16 * n, pointers, stubs, ptrs, 8, "riscv64")
    if abi == "LoongArch64":
        units = []
        for i in range(n):
            hi, lo = _split(ptrs + 8 * i - (stubs + 16 * i))
            units.append(f"pcaddu12i $t0, {hi}\nld.d $t0, $t0, {lo}\njr $t0\n.word 0")
        return llvm_mc_asm("loongarch64", "+d", "\n".join(units) + "\n")
    if abi == "PPC64":
        units = [_ppc_address(12, ptrs + 8 * i) + "ld 12, 0(12)\nmtctr 12\nbctr" for i in range(n)]
        return llvm_mc_asm("powerpc64le", "", "\n".join(units) + "\n")
    raise KeyError(abi)


def _pc_relative(
    units: list[str], size: int, pointers: list[str], stubs: int, ptrs: int, psize: int, arch: str
) -> bytes:
    """Stubs and pointers in one assembly, each block at its real address."""
    if ptrs >= stubs + size:
        source = _block(units, ptrs - stubs - size, pointers)
        start = 0
    else:
        assert stubs >= ptrs + psize * len(pointers)
        source = _block(pointers, stubs - ptrs - psize * len(pointers), units)
        start = stubs - ptrs
    if arch == "riscv64":
        code = llvm_mc_asm("riscv64", "+d,-relax", source)
    else:
        code = keystone_asm(arch, False, source, 0)
    return code[start : start + size]
