"""Trampolines and indirect stubs: bytes equal LLVM's formulas and the assembler's.

Expected bytes come from tests/unit_oracles.py (LLVM's formulas restated from
their facts, and the assembler fed concrete instructions), never from the
generator under test.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import gxx_cache
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from unit_oracles import (
    assembled_stubs,
    assembled_trampolines,
    keystone_asm,
    llvm_mc_asm,
    llvm_stubs,
    llvm_trampolines,
)

from asmgen.build.pipeline import build
from asmgen.errors import AsmgenError
from asmgen.spec.files import select, spec_files

ROOT = Path(__file__).resolve().parent.parent
ABIS = [
    "X86_64_SysV",
    "X86_64_Win32",
    "I386",
    "AArch64",
    "Mips32Le",
    "Mips32Be",
    "Mips64",
    "Riscv64",
    "LoongArch64",
]
WIDE = {"X86_64_SysV", "X86_64_Win32", "AArch64", "Mips64", "Riscv64", "LoongArch64"}

# (block, resolver, count): the resolver above the block (see
# test_llvm_i386_trampoline_formula_spills_into_padding for below).
TRAMPOLINE_CASES = [(0x10000, 0x7F0000, 1), (0x400000, 0x401000, 3), (0x7FF00000, 0x7FF88888, 7)]
WIDE_TRAMPOLINE_CASES = [(0x7FFF12345000, 0x7FFF9ABC8888, 2)]
# (stubs, pointers, count): pointers after the stubs, and before them.
STUB_CASES = [(0x10000, 0x20000, 1), (0x400000, 0x412340, 4), (0x7FF80000, 0x7FF7F000, 3)]
WIDE_STUB_CASES = [(0x7FFF12340000, 0x7FFF12348888, 2)]


@pytest.fixture(scope="module")
def tables():
    found = spec_files()
    return {abi: build(select(found, [abi])[0]) for abi in ABIS}


def _order(table) -> str:
    return table.spec.endian


def _trampoline_cases(abi):
    return TRAMPOLINE_CASES + (WIDE_TRAMPOLINE_CASES if abi in WIDE else [])


def _stub_cases(abi):
    return STUB_CASES + (WIDE_STUB_CASES if abi in WIDE else [])


def _llvm_formula_is_clean(abi, stubs, ptrs) -> bool:
    # LLVM's x86-64 formula shifts a negative uint64 displacement left by 16:
    # its sign bits land in the padding (test_llvm_x86_64_stub_formula_...).
    return not (abi.startswith("X86_64") and ptrs < stubs)


@pytest.mark.parametrize("abi", ABIS)
def test_trampolines_equal_llvm_formulas(tables, abi):
    table = tables[abi]
    for block, resolver, n in _trampoline_cases(abi):
        expected = llvm_trampolines(abi, block, resolver, n, _order(table))
        assert table.write_trampolines(block, resolver, n).hex() == expected.hex()


@pytest.mark.parametrize("abi", ABIS)
def test_trampolines_equal_the_assembler(tables, abi):
    table = tables[abi]
    for block, resolver, n in _trampoline_cases(abi):
        expected = assembled_trampolines(abi, block, resolver, n)
        assert table.write_trampolines(block, resolver, n).hex() == expected.hex()


@pytest.mark.parametrize("abi", ABIS)
def test_stubs_equal_llvm_formulas(tables, abi):
    table = tables[abi]
    checked = 0
    for stubs, ptrs, n in _stub_cases(abi):
        if _llvm_formula_is_clean(abi, stubs, ptrs):
            expected = llvm_stubs(abi, stubs, ptrs, n, _order(table))
            assert table.write_stubs(stubs, ptrs, n).hex() == expected.hex()
            checked += 1
    assert checked >= 3


@pytest.mark.parametrize("abi", ABIS)
def test_stubs_equal_the_assembler(tables, abi):
    table = tables[abi]
    for stubs, ptrs, n in _stub_cases(abi):
        expected = assembled_stubs(abi, stubs, ptrs, n)
        assert table.write_stubs(stubs, ptrs, n).hex() == expected.hex()


def test_llvm_x86_64_stub_formula_spills_into_padding(tables):
    """Pointers below the stubs: LLVM's formula sets the padding bytes to 0xff;
    asmgen keeps the invalid-opcode padding, as the assembler does."""
    stubs, ptrs = 0x7FF80000, 0x7FF7F000
    ours = tables["X86_64_SysV"].write_stubs(stubs, ptrs, 1)
    llvm = llvm_stubs("X86_64_SysV", stubs, ptrs, 1)
    assert ours == assembled_stubs("X86_64_SysV", stubs, ptrs, 1)
    assert ours[:6] == llvm[:6] and ours[6:] == b"\xc4\xf1" and llvm[6:] == b"\xff\xff"


def test_llvm_i386_trampoline_formula_spills_into_padding(tables):
    block, resolver = 0x7FF00000, 0x10000
    ours = tables["I386"].write_trampolines(block, resolver, 1)
    llvm = llvm_trampolines("I386", block, resolver, 1)
    assert ours == assembled_trampolines("I386", block, resolver, 1)
    assert ours[:5] == llvm[:5] and ours[5:] == b"\xc4\xc4\xf1" and llvm[5:] == b"\xff" * 3


# ------------------------------------------------------------ derived facts

# LLVM's OrcABISupport.h: (PointerSize, TrampolineSize, StubSize).
LLVM_SIZES = {
    "X86_64_SysV": (8, 8, 8),
    "I386": (4, 8, 8),
    "AArch64": (8, 12, 8),
    "Mips32Le": (4, 20, 16),  # the header says StubSize 8; the code writes 16
    "Mips64": (8, 40, 32),
    "Riscv64": (8, 16, 16),
    "LoongArch64": (8, 16, 16),
}


@pytest.mark.parametrize("abi", sorted(LLVM_SIZES))
def test_sizes_are_derived(tables, abi):
    units = tables[abi].units
    sizes = (units.pointer_size, units.trampoline.size, units.stub.size)
    assert sizes == LLVM_SIZES[abi]


def _record(abi):
    return json.loads((ROOT / "generated" / "tables.json").read_text())["abis"][abi]


def test_x86_64_base_words_and_fields():
    record = _record("X86_64_SysV")
    trampoline, stub = record["trampoline"], record["stub"]
    assert trampoline["base_word"] == 0xF1C40000000015FF
    assert stub["base_word"] == 0xF1C40000000025FF
    for unit in (trampoline, stub):
        (field,) = unit["fields"]
        assert (field["bit"], field["width"], field["kind"]) == (16, 32, "pcrel32")
        # LLVM's `OffsetToPtr - 6`: measured from the end of the 6-byte call/jmp.
        assert field["anchor"] == 6
        assert field["range"] == [-(1 << 31), (1 << 31) - 1]
    assert trampoline["pointer_slot"] is True
    assert stub["stub_to_pointer_max_displacement"] == (1 << 31) - 6


def test_i386_base_words_and_fields():
    record = _record("I386")
    trampoline, stub = record["trampoline"], record["stub"]
    assert trampoline["base_word"] == 0xF1C4C400000000E8
    assert stub["base_word"] == 0xF1C40000000025FF
    assert [(f["bit"], f["width"], f["anchor"]) for f in trampoline["fields"]] == [(8, 32, 5)]
    assert [(f["bit"], f["width"], f["anchor"]) for f in stub["fields"]] == [(16, 32, None)]
    assert trampoline["pointer_slot"] is False


def test_aarch64_base_words_and_fields():
    record = _record("AArch64")
    trampoline, stub = record["trampoline"], record["stub"]
    assert trampoline["words"] == [0xAA1E03F1, 0x58000010, 0xD63F0200]
    (field,) = trampoline["fields"]
    # `0x58000010 | (OffsetToPtr << 3)`, OffsetToPtr measured from the ldr.
    assert (field["offset"], field["shift"], field["width"], field["anchor"]) == (4, 5, 19, 4)
    assert stub["base_word"] == 0xD61F020058000010
    (field,) = stub["fields"]
    assert (field["bit"], field["width"], field["encoding"]) == (5, 19, "value >> 2")
    assert field["range"] == [-(1 << 20), (1 << 20) - 4] and field["align"] == 4
    # LLVM says 1 << 27; a literal load reaches 1 MiB.
    assert stub["stub_to_pointer_max_displacement"] == (1 << 20) - 4


def test_hi20_lo12_pairs():
    for abi, hi_shift, lo_shift in (("Riscv64", 12, 20), ("LoongArch64", 5, 10)):
        stub = _record(abi)["stub"]
        hi, lo = stub["fields"]
        assert (hi["offset"], hi["shift"], hi["width"]) == (0, hi_shift, 20)
        assert (lo["offset"], lo["shift"], lo["width"]) == (4, lo_shift, 12)
        assert hi["encoding"] == "(value + 0x800) >> 12"
        assert hi["anchor"] == lo["anchor"] == 0
        assert stub["stub_to_pointer_max_displacement"] == (1 << 31) - 0x801


def test_call_size_agrees_with_trampoline_templates(tables):
    for table in tables.values():
        assert table.units.trampoline.labels["TrampolineReturn"] == table.spec.trampoline.call_size


# ------------------------------------------------------------ range errors


def test_aarch64_stub_out_of_literal_range(tables):
    table = tables["AArch64"]
    stubs = 0x40000000
    with pytest.raises(ValueError, match=r"1 MiB") as info:
        table.write_stubs(stubs, stubs + (1 << 20), 1)
    assert "0x100000" in str(info.value)
    # The lowest and highest reachable pointers work, as the assembler agrees.
    for ptrs in (stubs - (1 << 20), stubs + (1 << 20) - 8):
        assert table.write_stubs(stubs, ptrs, 1) == assembled_stubs("AArch64", stubs, ptrs, 1)
    # LLVM's formula takes the out-of-range pointer silently and loads from
    # 1 MiB *below* the stub instead.
    word = int.from_bytes(llvm_stubs("AArch64", stubs, stubs + (1 << 20), 1)[:4], "little")
    field = (word >> 5) & 0x7FFFF
    assert field == 0x40000 and (field - (1 << 19)) * 4 == -(1 << 20)


def test_aarch64_stub_misaligned_pointer(tables):
    with pytest.raises(ValueError, match="multiple of 4"):
        tables["AArch64"].write_stubs(0x10000, 0x10002, 1)


def test_x86_64_out_of_disp32_range(tables):
    table = tables["X86_64_SysV"]
    stubs = 0x10000000
    with pytest.raises(ValueError, match="disp32"):
        table.write_stubs(stubs, stubs + 6 + (1 << 31), 1)
    with pytest.raises(ValueError, match="disp32"):
        table.write_stubs(stubs + (1 << 31) + 1, stubs, 1)
    assert table.write_stubs(stubs, stubs + 5 + (1 << 31), 1)[2:6] == b"\xff\xff\xff\x7f"


def test_addresses_must_fit_the_pointer(tables):
    with pytest.raises(ValueError, match="4-byte pointer"):
        tables["I386"].write_stubs(0x1000, 1 << 32, 1)


# ------------------------------------------------------------ property tests


def _concrete_stub(abi: str, stubs: int, ptrs: int) -> bytes:
    """One stub's concrete instruction with its operand written out."""
    if abi == "X86_64_SysV":
        return keystone_asm(
            "x86_64", False, f"jmpq *{ptrs - stubs - 6:#x}(%rip)\n.byte 0xc4, 0xf1", stubs
        )
    if abi == "Riscv64":
        hi = (ptrs - stubs + 0x800) >> 12
        lo = ptrs - stubs - (hi << 12)
        source = f"auipc t0, {hi & 0xFFFFF:#x}\nld t0, {lo}(t0)\njr t0\n.word 0xfeedbeef\n"
        return llvm_mc_asm("riscv64", "+d,-relax", source)
    return assembled_stubs(abi, stubs, ptrs, 1)


def _stub_strategy(abi: str):
    """(stubs, pointers) with the pointer in reach of the stub."""
    if abi == "X86_64_SysV":
        disp = st.integers(-(1 << 31), (1 << 31) - 1).map(lambda d: d + 6)
    elif abi == "AArch64":
        disp = st.integers(-(1 << 18), (1 << 18) - 1).map(lambda d: 4 * d)
    elif abi in ("Riscv64", "LoongArch64"):
        disp = st.integers(-(1 << 31) - 0x800, (1 << 31) - 0x801)
    else:
        disp = None
    if disp is None:
        bits = 64 if abi == "Mips64" else 32
        return st.tuples(st.integers(0, (1 << bits) - 1), st.integers(0, (1 << bits) - 1))
    base = st.integers(1 << 32, 1 << 46).map(lambda b: b & ~0xF)
    return st.tuples(base, disp).map(lambda pair: (pair[0], pair[0] + pair[1]))


def _property(table, abi: str, examples: int):
    @settings(max_examples=examples, deadline=None)
    @given(pair=_stub_strategy(abi))
    def check(pair):
        stubs, ptrs = pair
        assert table.write_stubs(stubs, ptrs, 1).hex() == _concrete_stub(abi, stubs, ptrs).hex()

    return check


@pytest.mark.parametrize(
    ("abi", "examples"),
    [
        ("X86_64_SysV", 60),
        ("I386", 60),
        ("AArch64", 60),
        ("Mips32Le", 40),
        ("Mips32Be", 40),
        ("Mips64", 40),
        ("Riscv64", 8),
        ("LoongArch64", 8),
    ],
)
def test_random_in_range_stubs_equal_the_assembler(tables, abi, examples):
    _property(tables[abi], abi, examples)()


@settings(max_examples=60, deadline=None)
@given(block=st.integers(0, (1 << 32) - 8), resolver=st.integers(0, (1 << 32) - 1))
def test_random_i386_trampolines_equal_the_assembler(tables, block, resolver):
    expected = assembled_trampolines("I386", block, resolver, 1)
    assert tables["I386"].write_trampolines(block, resolver, 1) == expected


# ------------------------------------------------------------ generated outputs


def test_generated_module_writes_the_same(tables, generated_module):
    for abi in ABIS:
        module = generated_module.TABLES[abi]
        table = tables[abi]
        units = table.units
        assert (module.trampoline_size, module.stub_size, module.pointer_size) == (
            units.trampoline.size,
            units.stub.size,
            units.pointer_size,
        )
        assert module.stub_to_pointer_max_displacement == units.stub_to_pointer_max_displacement
        for block, resolver, n in _trampoline_cases(abi):
            assert module.write_trampolines(block, resolver, n) == table.write_trampolines(
                block, resolver, n
            )
        for stubs, ptrs, n in _stub_cases(abi):
            assert module.write_stubs(stubs, ptrs, n) == table.write_stubs(stubs, ptrs, n)
    with pytest.raises(ValueError, match="1 MiB"):
        generated_module.TABLES["AArch64"].write_stubs(0x10000, 0x110000, 1)


def test_cpp_writers_match_python(tmp_path, generated_module):
    """writeTrampolines and writeIndirectStubsBlock produce what the Python does."""
    assert shutil.which("g++"), "needs a C++ compiler"
    header = ROOT / "generated" / "orc_resolvers.h"
    calls = []
    expected = {}
    for abi in ABIS:
        table = generated_module.TABLES[abi]
        if table.byteorder != "little":  # the host writes its own byte order
            continue
        cls = f"asmgen::{table.llvm_class}"
        for index, (block, resolver, n) in enumerate(_trampoline_cases(abi)):
            key = f"{abi}.t{index}"
            data = table.write_trampolines(block, resolver, n)
            expected[key] = data.hex()
            calls.append(
                f"  {{ char M[{len(data)}] = {{}}; {cls}::writeTrampolines(M, {block:#x}ULL, "
                f'{resolver:#x}ULL, {n}); dump("{key}", M, sizeof(M)); }}\n'
            )
        for index, (stubs, ptrs, n) in enumerate(_stub_cases(abi)):
            key = f"{abi}.s{index}"
            data = table.write_stubs(stubs, ptrs, n)
            expected[key] = data.hex()
            calls.append(
                f"  {{ char M[{len(data)}] = {{}}; {cls}::writeIndirectStubsBlock(M, "
                f'{stubs:#x}ULL, {ptrs:#x}ULL, {n}); dump("{key}", M, sizeof(M)); }}\n'
            )
    source = tmp_path / "units.cpp"
    source.write_text(
        f'#include "{header}"\n#include <cstdio>\n'
        "static void dump(const char *K, const char *M, unsigned N) {\n"
        '  printf("%s ", K);\n'
        '  for (unsigned I = 0; I < N; ++I) printf("%02x", (unsigned char)M[I]);\n'
        '  printf("\\n");\n}\n'
        "int main() {\n" + "".join(calls) + "}\n"
    )
    binary, errors = gxx_cache.executable(
        "units", ["-std=c++17", "-Wall", "-Werror"], [source], scratch=[tmp_path], out=tmp_path
    )
    assert errors == "", errors
    run = subprocess.run([binary], capture_output=True, text=True, check=True)
    printed = dict(line.split() for line in run.stdout.splitlines())
    assert printed == expected
    assert len(expected) >= 40


def test_cpp_declares_derived_sizes():
    text = (ROOT / "generated" / "orc_resolvers.h").read_text()
    block = text[text.index("struct OrcAArch64 {") :]
    block = block[: block.index("};")]
    for line in (
        "static constexpr unsigned PointerSize = 8;",
        "static constexpr unsigned TrampolineSize = 12;",
        "static constexpr unsigned StubSize = 8;",
        "static constexpr unsigned StubToPointerMaxDisplacement = 0xffffc;",
    ):
        assert line in block


# ------------------------------------------------------------ bad templates


def _build(tree: Path, abi: str):
    return build(select(spec_files(tree / "abi_specs"), [abi])[0], tree / "templates")


def test_call_size_that_misses_the_trampoline_is_an_error(tree):
    spec = tree / "abi_specs" / "x86_64_sysv.yaml"
    spec.write_text(spec.read_text().replace("call_size: 0x6", "call_size: 0x7"))
    with pytest.raises(AsmgenError, match=r"returns at offset 0x6"):
        _build(tree, "X86_64_SysV")


def test_unit_patch_must_name_its_target(tree):
    path = tree / "templates" / "x86_64" / "stub.s.j2"
    path.write_text(path.read_text().replace("StubPtr", "Elsewhere"))
    with pytest.raises(AsmgenError, match=r"named StubPtr; found Elsewhere"):
        _build(tree, "X86_64_SysV")


def test_wrong_pc_anchor_is_caught(tree):
    """A displacement measured from the wrong place leaves the field non-zero
    where asmgen expects it clear: here the operand is off by one byte."""
    path = tree / "templates" / "x86_64" / "stub.s.j2"
    text = path.read_text().replace("*(StubPtr +", "*(StubPtr - 0x1 +")
    path.write_text(text)
    with pytest.raises(AsmgenError, match=r"patch field StubPtr \(pcrel32\)"):
        _build(tree, "X86_64_SysV")


def test_explain_lists_trampoline_and_stub(capsys):
    from asmgen.cli import main

    assert main(["explain", "AArch64"]) == 0
    text = capsys.readouterr().out
    assert "trampoline: 0xc bytes, reaches ResolverPtr" in text
    assert "0x04  10000058" in text and "ResolverPtr: ldr19 at 0x4 bits 5..23" in text
    assert "stub: 0x8 bytes, reaches StubPtr" in text
