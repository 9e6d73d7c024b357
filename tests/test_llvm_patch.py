"""`asmgen patch` against a fixture tree laid out like LLVM's (tests/fixtures/llvm_tree).

Expected bytes come from LLVM's facts (llvm_tables.json) or from the x86
encoding itself; the generator is only compared with what it wrote into the
tree (the round trip).  Patches are checked with `git apply --check` and
`git clang-format` in a scratch git repository, and the patched .cpp is
compiled with g++ and run.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import fixture_tables
import gxx_cache
import llvm_trees
import pytest

from asmgen.build.pipeline import build
from asmgen.cli import main
from asmgen.patch import orc_source as orc
from asmgen.spec.files import select, spec_files

ROOT = Path(__file__).resolve().parent.parent
TREE = ROOT / "tests" / "fixtures" / "llvm_tree"
FN, CTX = 0x1122334455667788, 0x99AABBCCDDEEFF00


@pytest.fixture
def llvm(tmp_path: Path) -> Path:
    """A git repository holding a copy of the fixture tree, committed."""
    return llvm_trees.scratch_tree(tmp_path / "llvm-project", llvm_trees.llvm_files(TREE))


@pytest.fixture
def specs(tmp_path: Path) -> Path:
    """A copy of the specs; the Win32 one loses rbx from its saves, which moves
    every later instruction, both patch offsets and the size."""
    out = tmp_path / "specs"
    shutil.copytree(ROOT / "abi_specs", out)
    path = out / "x86_64_win64.yaml"
    text = path.read_text()
    old = "saves: [rax, rbx, rcx,"
    assert old in text
    path.write_text(text.replace(old, "saves: [rax, rcx,"))
    return out


def _patch(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["patch", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _apply(repo: Path, diff: str, tmp_path: Path) -> None:
    patch = tmp_path / "change.patch"
    patch.write_text(diff)
    assert llvm_trees.apply(repo, patch) == ""


def _assert_clang_format_clean(repo: Path) -> None:
    assert llvm_trees.clang_format_diff(repo) == ""


def _table(specs_dir: Path, abi: str):
    (item,) = select(spec_files(specs_dir), [abi])
    return build(item)


# -- the reader, against LLVM's facts -----------------------------------------


def test_reader_finds_every_llvm_table_in_the_fixture(llvm_tables, llvm19_tables):
    """The fixture has LLVM 19.1.x's functions: its MIPS tables are 19's (before
    the delay-slot fix), the others are the same in 19 and main."""
    for abi, main_facts in llvm_tables.items():
        if abi == "X86_64_Win32_seed_initial":
            continue  # never in LLVM
        facts = llvm19_tables.get(abi, main_facts)
        found = orc.extract(TREE, facts["llvm_class"])
        assert found.element == facts["element"], abi
        assert found.code("little").hex() == facts["hex"], abi
        assert found.offsets == facts["offsets"], abi  # 19's names: MIPS32's `Offsett`
        assert found.resolver_code_size == facts["header_ResolverCodeSize"], abi


def test_forwarding_class_reads_its_base(llvm19_tables):
    # OrcMips32Le::writeResolverCode forwards to OrcMips32_Base's.
    found = orc.extract(TREE, "OrcMips32Le")
    assert found.code("little").hex() == llvm19_tables["Mips32"]["hex"]
    assert found.resolver_code_size == 0xFC


def _fixture_classes() -> dict:
    return orc.classes(orc.load(TREE, orc.HEADER_PATH))


def _changed(diff: str, rel: str) -> list[str]:
    """The added and removed lines of `rel`'s part of `diff`, blank ones left out."""
    part = diff.split(f"diff --git a/{rel} b/{rel}\n", 1)[1].split("diff --git ", 1)[0]
    return [
        line
        for line in part.splitlines()
        if line[:1] in "+-" and not line.startswith(("+++", "---")) and line[1:].strip()
    ]


# What the patch changes in LLVM 19's header for LLVM's own ABIs: LLVM's values
# (facts) against the true ones (the tables' sizes, and each stub's reach from
# its instruction: ldr literal +-1 MiB, rel32 after a 6-byte jmp, hi20/lo12).
LLVM19_HEADER_FIXES = [
    "-  static constexpr unsigned StubToPointerMaxDisplacement = 1U << 27;",
    "+  // Stub reach: -0x100000..+0xffffc (AArch64 literal-load range: +-1 MiB).",
    "+  static constexpr unsigned StubToPointerMaxDisplacement = (1U << 20) - 4;",
    "-  static constexpr unsigned StubToPointerMaxDisplacement = 1 << 31;",
    "+  // Stub reach: -0x7ffffffa..+0x80000005 (x86 disp32: +-2 GiB).",
    "+  static constexpr unsigned StubToPointerMaxDisplacement = (1U << 31) - 6;",
    "-  static constexpr unsigned ResolverCodeSize = 0x4a;",
    "+  static constexpr unsigned ResolverCodeSize = 0x49;",
    "-  static constexpr unsigned StubSize = 8;",
    "+  static constexpr unsigned StubSize = 16;",
    "-  static constexpr unsigned ResolverCodeSize = 0xfc;",
    "+  static constexpr unsigned ResolverCodeSize = 0x104;",
    "-  static constexpr unsigned ResolverCodeSize = 0x120;",
    "+  static constexpr unsigned ResolverCodeSize = 0x124;",
    *2
    * [
        "-  static constexpr unsigned StubToPointerMaxDisplacement = 1 << 31;",
        "+  // Stub reach: -0x80000800..+0x7ffff7ff (hi20/lo12 pair: +-2 GiB).",
        "+  static constexpr unsigned StubToPointerMaxDisplacement = (1U << 31) - 0x801;",
    ],
]
SIZE_ASSERT = "+  static_assert(sizeof(ResolverCode) == ResolverCodeSize);"


def _llvm_abi_stems() -> list[str]:
    """Spec names of LLVM's own ABIs (the variants, docs/variants.md, are new classes)."""
    declared = _fixture_classes()
    return [f.path.stem for f in spec_files(ROOT / "abi_specs") if f.spec.class_name in declared]


def test_patch_fixes_llvm_19s_defects(capsys, llvm, tmp_path, llvm_tables):
    """LLVM's ABIs in 19.x: the patch fixes exactly LLVM's known defects.  The
    MIPS resolvers get upstream's delay-slot fix (LLVM main's tables, facts),
    with their sizes and a static_assert; I386's size (0x4a for 0x49 bytes) and
    MIPS32's StubSize (8, for stubs of four words) are corrected; the
    StubToPointerMaxDisplacement that let stubs be written past their reach are
    replaced; the bounds that are only conservative (absolute stubs) are kept.
    Every spelling LLVM 19 uses stays, `Offsett` and trailing comments too."""
    stems = _llvm_abi_stems()
    assert len(stems) == 9
    code, diff, _ = _patch(capsys, "--llvm-root", str(llvm), *stems)
    assert code == 0
    assert _changed(diff, orc.HEADER_PATH) == LLVM19_HEADER_FIXES
    cpp = _changed(diff, orc.CPP_PATH)
    assert cpp.count(SIZE_ASSERT) == 3  # I386, MIPS32, Mips64
    # The rest is the two MIPS tables: every other line is kept.
    assert all(
        line.lstrip("+-").startswith(("      0x", "      //"))
        for line in cpp
        if line != SIZE_ASSERT
    )
    _apply(llvm, diff, tmp_path)
    _assert_clang_format_clean(llvm)

    # Read back: LLVM main's MIPS tables, under LLVM 19's names.
    for key, name in (("Mips32", "OrcMips32Le"), ("Mips64", "OrcMips64")):
        found = orc.extract(llvm, name)
        assert found.code("little").hex() == llvm_tables[key]["hex"], name
        assert found.resolver_code_size == llvm_tables[key]["size"], name
    assert orc.extract(llvm, "OrcMips32Le").offsets == {
        "ReentryFnAddrOffset": 0x7C,
        "ReentryCtxAddrOffset": 0x6C,
        "Offsett": 0xF8,
    }
    assert orc.extract(llvm, "OrcMips32Be").constants["StubSize"] == 16
    # The trailing comment stays on its constant; the assert comes after it.
    text = (llvm / orc.CPP_PATH).read_text()
    assert (
        "  const unsigned ReentryCtxAddrOffset = 0x6c; // first word of the ctx chain\n\n"
        "  static_assert(sizeof(ResolverCode) == ResolverCodeSize);\n"
    ) in text

    fn, ctx = 0x12345678, 0x9ABCDEF0  # the sentinels of LLVM's 32-bit examples
    written = _run_resolvers(
        llvm, tmp_path, {"OrcI386": (fn, ctx), "OrcMips32Le": (fn, ctx), "OrcMips64": (FN, CTX)}
    )
    assert written["OrcI386"].hex() == llvm_tables["I386"]["example"]["hex"]
    assert written["OrcMips32Le"].hex() == llvm_tables["Mips32"]["example"]["hex"]
    assert written["OrcMips64"].hex() == llvm_tables["Mips64"]["example"]["hex"]
    # LLVM's writers (the fixture's, restated from LLVM's formulas) against the
    # Python writers; with the old StubSize, MIPS32's stub block overflowed.
    hosted = [build(f) for f in spec_files(ROOT / "abi_specs") if f.path.stem in stems]
    hosted = [t for t in hosted if t.spec.endian == "little"]
    assert _check_unit_writers(llvm, tmp_path, hosted, below=False) >= 40
    code, again, _ = _patch(capsys, "--llvm-root", str(llvm), *stems)
    assert (code, again) == (0, "")

    # LLVM main spells the landing move's offset MoveLandingAddrOffset; with
    # that name the patched tree is main's MIPS32 and the patch is empty.
    path = llvm / orc.CPP_PATH
    path.write_text(re.sub(r"\bOffsett\b", "MoveLandingAddrOffset", path.read_text()))
    code, again, _ = _patch(capsys, "--llvm-root", str(llvm), *stems)
    assert (code, again) == (0, "")
    assert orc.extract(llvm, "OrcMips32Le").offsets["MoveLandingAddrOffset"] == 0xF8


# LLVM's OrcABISupport.h: (PointerSize, TrampolineSize, StubSize); MIPS32's
# StubSize is 8 there, though its writer puts four words in each stub.
LLVM_HEADER_SIZES = {
    "OrcAArch64": (8, 12, 8),
    "OrcX86_64_SysV": (8, 8, 8),
    "OrcX86_64_Win32": (8, 8, 8),
    "OrcI386": (4, 8, 8),
    "OrcMips32Le": (4, 20, 8),
    "OrcMips32Be": (4, 20, 8),
    "OrcMips64": (8, 40, 32),
    "OrcRiscv64": (8, 16, 16),
    "OrcLoongArch64": (8, 16, 16),
}


def test_fixture_unit_sizes_are_llvms():
    for name, sizes in LLVM_HEADER_SIZES.items():
        constants = orc.extract(TREE, name).constants
        found = tuple(constants[m] for m in ("PointerSize", "TrampolineSize", "StubSize"))
        assert found == sizes, name


def test_new_classes_get_unit_writers(capsys, llvm, tmp_path):
    """Every spec LLVM lacks (the variants and the seed) becomes a class whose
    writeTrampolines and writeIndirectStubsBlock write what the Python writers
    write, for several addresses and counts, pointers above and below."""
    declared = _fixture_classes()
    found = [f for f in spec_files(ROOT / "abi_specs") if f.spec.class_name not in declared]
    tables = [build(f) for f in found]
    assert len(tables) >= 8 and all(t.units is not None for t in tables)
    code, diff, _ = _patch(capsys, "--llvm-root", str(llvm), *(f.path.stem for f in found))
    assert code == 0
    assert not [line for line in diff.splitlines() if line.startswith("-") and line[:3] != "---"]
    # Each class: both writers declared and defined; the helpers once.
    for table in tables:
        name = table.spec.class_name
        assert f"+void {name}::writeTrampolines(" in diff, name
        assert f"+void {name}::writeIndirectStubsBlock(" in diff, name
    assert diff.count("+static void patchField(") == 1
    assert diff.count("+static int64_t displacement(") == 1
    _apply(llvm, diff, tmp_path)
    _assert_clang_format_clean(llvm)

    # Round trip: the constants and the unit arrays read back from the tree.
    for table in tables:
        units = table.units
        found_class = orc.extract(llvm, table.spec.class_name)
        assert found_class.constants == {
            "PointerSize": units.pointer_size,
            "TrampolineSize": units.trampoline.size,
            "StubSize": units.stub.size,
            "StubToPointerMaxDisplacement": units.stub_to_pointer_max_displacement,
        }
        order = table.byteorder
        assert found_class.unit_code("writeTrampolines", order) == units.trampoline.code
        assert found_class.unit_code("writeIndirectStubsBlock", order) == units.stub.code

    # The writers run in this host's byte order, which ORC takes for the
    # target's: big-endian classes (s390x) are checked on their own terms in
    # tests/test_s390x.py.
    hosted = [t for t in tables if t.spec.endian == sys.byteorder]
    assert _check_unit_writers(llvm, tmp_path, hosted, below=True) >= 80
    code, again, _ = _patch(capsys, "--llvm-root", str(llvm), *(f.path.stem for f in found))
    assert (code, again) == (0, "")


def test_helpers_added_once_and_kept_current(capsys, llvm, tmp_path):
    """A second new class reuses the helpers an earlier patch added; a helper
    edited since is put back."""
    code, diff, _ = _patch(capsys, "--llvm-root", str(llvm), "X86_64_Win32_seed_initial")
    _apply(llvm, diff, tmp_path)
    code, diff, _ = _patch(capsys, "--llvm-root", str(llvm), "X86_64_SysV_Lean")
    assert code == 0 and "+void OrcX86_64_SysV_Lean::writeTrampolines(" in diff
    assert "patchField(char" not in diff and "displacement(uint64_t" not in diff
    _apply(llvm, diff, tmp_path)
    _break(llvm, orc.CPP_PATH, "D &= (Sign << 1) - 1;", "D &= Sign - 1;")
    code, diff, _ = _patch(capsys, "--llvm-root", str(llvm), "X86_64_SysV_Lean")
    changed = [
        line
        for line in diff.splitlines()
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    assert changed == ["-    D &= Sign - 1;", "+    D &= (Sign << 1) - 1;"]
    _apply(llvm, diff, tmp_path)
    # A writer asmgen added is regenerated when it differs (LLVM's are kept).
    path, old = llvm / orc.CPP_PATH, "static_assert(sizeof(Stub) == StubSize"
    text = path.read_text()
    at = text.index(old, text.index("OrcX86_64_SysV_Lean::writeIndirectStubsBlock("))
    path.write_text(text[:at] + "//" + text[at:])
    code, diff, _ = _patch(capsys, "--llvm-root", str(llvm), "X86_64_SysV_Lean")
    assert f"-  //{old}" in diff and f"+  {old}" in diff


# -- replacing a table ---------------------------------------------------------


def test_replace_table(capsys, llvm, specs, tmp_path, llvm_tables):
    table = _table(specs, "X86_64_Win32")
    old = llvm_tables["X86_64_Win32"]
    # Independent of the generator: one push fewer moves everything by one byte.
    assert {p.name + "Offset": p.offset for p in table.patches} == {
        name: offset - 1 for name, offset in old["offsets"].items()
    }
    assert len(table.code) == old["size"] - 2

    code, diff, _ = _patch(capsys, "--llvm-root", str(llvm), "--specs", str(specs), "X86_64_Win32")
    assert code == 0
    assert diff.startswith(f"diff --git a/{orc.HEADER_PATH} b/{orc.HEADER_PATH}\n")
    assert f"--- a/{orc.CPP_PATH}\n+++ b/{orc.CPP_PATH}\n" in diff
    assert "-  static constexpr unsigned ResolverCodeSize = 0x74;" in diff
    assert f"+  static constexpr unsigned ResolverCodeSize = {len(table.code):#x};" in diff
    assert "+  const unsigned ReentryFnAddrOffset = 0x39;" in diff
    assert "+  static_assert(sizeof(ResolverCode) == ResolverCodeSize);" in diff

    before_h = (llvm / orc.HEADER_PATH).read_text()
    before_cpp = (llvm / orc.CPP_PATH).read_bytes()
    _apply(llvm, diff, tmp_path)
    _assert_clang_format_clean(llvm)

    # Round trip: the same reader gives back exactly the generated table.
    found = orc.extract(llvm, "OrcX86_64_Win32")
    assert found.code("little") == table.code
    assert found.offsets == {p.name + "Offset": p.offset for p in table.patches}
    assert found.resolver_code_size == len(table.code)

    # Everything outside the Win32 function, its size constant and the x86-64
    # stubs' reach (below the doc comment LLVM's value had) is unchanged.
    after_h = (llvm / orc.HEADER_PATH).read_text()
    reach = "  static constexpr unsigned StubToPointerMaxDisplacement = 1 << 31;\n"
    assert after_h == before_h.replace(
        "ResolverCodeSize = 0x74;", f"ResolverCodeSize = {len(table.code):#x};"
    ).replace(
        "  /// How far a stub's pointer may be from the stub.\n" + reach,
        "  /// How far a stub's pointer may be from the stub.\n"
        "  // Stub reach: -0x7ffffffa..+0x80000005 (x86 disp32: +-2 GiB).\n"
        "  static constexpr unsigned StubToPointerMaxDisplacement = (1U << 31) - 6;\n",
    )
    assert _without_function(llvm, "OrcX86_64_Win32") == _without_function_text(
        before_cpp, "OrcX86_64_Win32"
    )

    # Idempotent: patching the patched tree changes nothing.
    code, again, _ = _patch(capsys, "--llvm-root", str(llvm), "--specs", str(specs), "X86_64_Win32")
    assert (code, again) == (0, "")


def _without_function_text(data: bytes, class_name: str) -> bytes:
    src = orc.Source(orc.CPP_PATH, Path(orc.CPP_PATH), data, orc._parser().parse(data).root_node)
    fn = orc.resolver_functions(src)[f"{class_name}::{orc.RESOLVER_FN}"]
    return data[: fn.node.start_byte] + data[fn.node.end_byte :]


def _without_function(repo: Path, class_name: str) -> bytes:
    return _without_function_text((repo / orc.CPP_PATH).read_bytes(), class_name)


# -- adding an ABI LLVM lacks --------------------------------------------------


def test_add_new_abi(capsys, llvm, tmp_path, llvm_tables):
    abi = "X86_64_Win32_seed_initial"
    table = _table(ROOT / "abi_specs", abi)
    code, diff, _ = _patch(capsys, "--llvm-root", str(llvm), abi)
    assert code == 0
    removed = [
        line for line in diff.splitlines() if line.startswith("-") and not line.startswith("---")
    ]
    assert removed == []  # only additions
    assert "+class LLVM_CLASS_ABI OrcX86_64_Win32_seed_initial {" in diff
    assert "+void OrcX86_64_Win32_seed_initial::writeResolverCode(" in diff

    _apply(llvm, diff, tmp_path)
    _assert_clang_format_clean(llvm)

    found = orc.extract(llvm, "OrcX86_64_Win32_seed_initial")
    facts = llvm_tables[abi]
    assert found.code("little").hex() == facts["hex"] == table.code.hex()
    assert found.offsets == facts["offsets"]
    assert found.resolver_code_size == facts["size"]

    code, again, _ = _patch(capsys, "--llvm-root", str(llvm), abi)
    assert (code, again) == (0, "")

    # The new function, compiled and run, writes LLVM's patched example bytes.
    written = _run_resolvers(llvm, tmp_path, {"OrcX86_64_Win32_seed_initial": (FN, CTX)})
    assert written["OrcX86_64_Win32_seed_initial"].hex() == facts["example"]["hex"]


def test_patched_tree_compiles_and_runs(capsys, llvm, specs, tmp_path, llvm_tables):
    """Replaced table with LLVM's own patching code, and a new class, in one patch."""
    code, diff, _ = _patch(
        capsys,
        *("--llvm-root", str(llvm), "--specs", str(specs)),
        *("X86_64_Win32", "X86_64_Win32_seed_initial"),
    )
    assert code == 0
    _apply(llvm, diff, tmp_path)
    table = _table(specs, "X86_64_Win32")
    written = _run_resolvers(
        llvm, tmp_path, {"OrcX86_64_Win32": (FN, CTX), "OrcX86_64_SysV": (FN, CTX)}
    )
    assert written["OrcX86_64_Win32"] == table.instantiate(
        {"ReentryFnAddr": FN, "ReentryCtxAddr": CTX}
    )
    # The untouched SysV function still writes LLVM's example.
    assert written["OrcX86_64_SysV"].hex() == llvm_tables["X86_64_SysV"]["example"]["hex"]


# -- instruction-word tables (uint32_t) ----------------------------------------


def _variant(tmp_path: Path, source: str, edits: dict[str, str]) -> Path:
    out = tmp_path / "variant_specs"
    out.mkdir(exist_ok=True)
    text = (ROOT / "abi_specs" / source).read_text()
    for old, new in edits.items():
        assert old in text, old
        text = text.replace(old, new)
    (out / source).write_text(text)
    return out


def test_replace_word_table(capsys, llvm, tmp_path, llvm_tables):
    """Riscv64 without a7 in its saves: a smaller frame and table, both data slots move."""
    drop_a7 = {
        "a4, a5, a6, a7]": "a4, a5, a6]",
        "deviations:\n": "deviations:\n  - field: int_args\n    reason: a7 dropped\n",
    }
    specs = _variant(tmp_path, "riscv64.yaml", drop_a7)
    table = _table(specs, "Riscv64")
    offsets = {p.name + "Offset": p.offset for p in table.patches}
    old = llvm_tables["Riscv64"]
    # One `sd` and one `ld` fewer: the table and both slots move by 8 bytes.
    assert len(table.code) == old["size"] - 8
    assert offsets == {name: offset - 8 for name, offset in old["offsets"].items()}

    code, diff, _ = _patch(capsys, "--llvm-root", str(llvm), "--specs", str(specs))
    assert code == 0
    assert "clang-format off" not in diff  # one word a row: clang-format leaves it
    assert "+  static constexpr unsigned ResolverCodeSize = 0x140;" in diff
    _apply(llvm, diff, tmp_path)
    _assert_clang_format_clean(llvm)

    found = orc.extract(llvm, "OrcRiscv64")
    assert (found.element, found.code("little")) == ("uint32_t", table.code)
    assert (found.offsets, found.resolver_code_size) == (offsets, len(table.code))

    written = _run_resolvers(llvm, tmp_path, {"OrcRiscv64": (FN, CTX)})
    assert written["OrcRiscv64"] == table.instantiate({"ReentryFnAddr": FN, "ReentryCtxAddr": CTX})

    code, again, _ = _patch(capsys, "--llvm-root", str(llvm), "--specs", str(specs))
    assert (code, again) == (0, "")


def test_add_word_abi(capsys, llvm, tmp_path, llvm_tables):
    """A MIPS32 variant LLVM lacks: hi/lo pairs and the landing move are written
    whole at run time by the generated function."""
    specs = _variant(
        tmp_path,
        "mips32_le.yaml",
        {"abi: Mips32Le\n": "abi: Mips32Ex\n", "llvm_class: OrcMips32Le\n": ""},
    )
    code, diff, _ = _patch(capsys, "--llvm-root", str(llvm), "--specs", str(specs))
    assert code == 0
    assert "+class LLVM_CLASS_ABI OrcMips32Ex {" in diff
    _apply(llvm, diff, tmp_path)
    _assert_clang_format_clean(llvm)

    facts = llvm_tables["Mips32"]
    found = orc.extract(llvm, "OrcMips32Ex")
    assert (found.element, found.code("little").hex()) == ("uint32_t", facts["hex"])
    assert found.offsets == facts["offsets"]

    fn, ctx = 0x12345678, 0x9ABCDEF0  # the sentinels of LLVM's 32-bit examples
    written = _run_resolvers(llvm, tmp_path, {"OrcMips32Ex": (fn, ctx)})
    assert written["OrcMips32Ex"].hex() == facts["example"]["hex"]

    # Absolute hi/lo fields only: no displacement helper (it would be unused).
    assert "+static void patchField(" in diff and "displacement(" not in diff
    assert _check_unit_writers(llvm, tmp_path, [_table(specs, "Mips32Ex")], below=True) == 6


STUBS = {
    "llvm/ExecutionEngine/Orc/Shared/ExecutorAddress.h": """
#pragma once
#include <cstdint>
namespace llvm { namespace orc {
class ExecutorAddr {
public:
  ExecutorAddr() = default;
  explicit ExecutorAddr(uint64_t A) : A(A) {}
  uint64_t getValue() const { return A; }
private:
  uint64_t A = 0;
};
}}
""",
    "llvm/Support/Compiler.h": "#pragma once\n#define LLVM_CLASS_ABI\n",
    "llvm/Support/ErrorHandling.h": "#pragma once\n#define llvm_unreachable(M) __builtin_trap()\n",
    "llvm/Support/MathExtras.h": """
#pragma once
#include <cassert>
#include <cstdint>
#include <cstring>
namespace llvm {
inline uint64_t alignTo(uint64_t Value, uint64_t Align) {
  return (Value + Align - 1) / Align * Align;
}
}
""",
    "llvm/Support/FormatVariadic.h": "#pragma once\n",
    "llvm/Support/raw_ostream.h": "#pragma once\n#define LLVM_DEBUG(...) do { } while (false)\n",
}


def _run_resolvers(repo: Path, tmp_path: Path, calls: dict[str, tuple[int, int]]) -> dict:
    """Compile the tree's OrcABISupport.cpp with stand-in LLVM headers and call
    `Class::writeResolverCode(Mem, 0, Fn, Ctx)` for each class: its bytes."""
    body = "".join(
        f"""  {{
    static char Mem[{name}::ResolverCodeSize];
    {name}::writeResolverCode(Mem, ExecutorAddr(0), ExecutorAddr({fn:#x}ULL),
                              ExecutorAddr({ctx:#x}ULL));
    dump(Mem, sizeof(Mem));
  }}
"""
        for name, (fn, ctx) in calls.items()
    )
    lines = _compile_and_run(repo, tmp_path, body)
    return dict(zip(calls, map(bytes.fromhex, lines), strict=True))


def _compile_and_run(repo: Path, tmp_path: Path, body: str, flags: tuple = ("-w",)) -> list[str]:
    """Build the tree's OrcABISupport.cpp with a driver whose main() is `body`
    (`dump(Mem, N)` prints N bytes in hex, one line); the lines it printed."""
    stubs = tmp_path / "stubs"
    for rel, text in STUBS.items():
        (stubs / rel).parent.mkdir(parents=True, exist_ok=True)
        (stubs / rel).write_text(text)
    driver = tmp_path / "driver.cpp"
    driver.write_text(
        '#include "llvm/ExecutionEngine/Orc/OrcABISupport.h"\n#include <cstdio>\n'
        "using namespace llvm::orc;\n"
        "static void dump(const char *Mem, unsigned N) {\n"
        '  for (unsigned I = 0; I < N; ++I) printf("%02x", (unsigned char)Mem[I]);\n'
        '  printf("\\n");\n}\n'
        f"int main() {{\n{body}  return 0;\n}}\n"
    )
    exe, errors = gxx_cache.executable(
        "driver",
        ["-std=c++17", *flags, "-I", str(stubs), "-I", str(repo / "llvm/include")],
        [repo / orc.CPP_PATH, driver],
        scratch=[tmp_path, repo],
        out=tmp_path,
    )
    assert errors == "", errors
    ran = subprocess.run([str(exe)], capture_output=True, text=True, check=True)
    return ran.stdout.splitlines()


# -- trampolines and stubs -------------------------------------------------------

# (block, resolver, count) and (stubs, pointers, count); the wide ones only for
# 64-bit pointers.  Pointers below the stubs are left out where LLVM's own
# writers run: its x86-64 formula spills sign bits into the padding bytes
# (tests/test_units.py), a difference no instruction executes.
TRAMPOLINE_CASES = [(0x10000, 0x7F0000, 1), (0x400000, 0x401000, 3), (0x7FF00000, 0x7FF88888, 7)]
WIDE_TRAMPOLINE_CASES = [(0x7FFF12345000, 0x7FFF9ABC8888, 2)]
STUB_CASES = [(0x10000, 0x20000, 1), (0x400000, 0x412340, 4)]
BELOW_STUB_CASES = [(0x7FF80000, 0x7FF7F000, 3)]
WIDE_STUB_CASES = [(0x7FFF12340000, 0x7FFF12348888, 2)]


def _unit_cases(table, below: bool) -> tuple[list, list]:
    wide = table.spec.pointer_size == 8
    trampolines = TRAMPOLINE_CASES + (WIDE_TRAMPOLINE_CASES if wide else [])
    stubs = STUB_CASES + (BELOW_STUB_CASES if below else []) + (WIDE_STUB_CASES if wide else [])
    return trampolines, stubs


def _check_unit_writers(repo: Path, tmp_path: Path, tables: list, below: bool) -> int:
    """Compile the tree and call each class's writeTrampolines and
    writeIndirectStubsBlock; assert they write what the Python writers write,
    and that the class's size constants describe those bytes.  Returns the
    number of blocks compared."""
    body, expected = [], {}
    for table in tables:
        name, units = table.spec.class_name, table.units
        body.append(
            f'  printf("{name} %u %u %u\\n", {name}::PointerSize, {name}::TrampolineSize, '
            f"{name}::StubSize);\n"
        )
        expected[name] = f"{units.pointer_size} {units.trampoline.size} {units.stub.size}"
        trampolines, stubs = _unit_cases(table, below)
        for block, resolver, n in trampolines:
            data = units.write_trampolines(block, resolver, n)
            # n trampolines, then (where the code loads it) the resolver's address.
            assert len(data) >= n * units.trampoline.size
            key = f"{name}.trampolines({block:#x},{resolver:#x},{n})"
            body.append(
                f'  {{ static char M[{len(data)}]; printf("{key} "); {name}::writeTrampolines(M, '
                f"ExecutorAddr({block:#x}ULL), ExecutorAddr({resolver:#x}ULL), {n}); "
                "dump(M, sizeof(M)); }\n"
            )
            expected[key] = data.hex()
        for first, pointers, n in stubs:
            data = units.write_stubs(first, pointers, n)
            assert len(data) == n * units.stub.size
            key = f"{name}.stubs({first:#x},{pointers:#x},{n})"
            body.append(
                f'  {{ static char M[{n} * {name}::StubSize]; printf("{key} "); '
                f"{name}::writeIndirectStubsBlock(M, ExecutorAddr({first:#x}ULL), "
                f"ExecutorAddr({pointers:#x}ULL), {n}); dump(M, sizeof(M)); }}\n"
            )
            expected[key] = data.hex()
    flags = ("-Wall", "-Werror=unused-function")
    printed = _compile_and_run(repo, tmp_path, "".join(body), flags)
    assert dict(line.split(" ", 1) for line in printed) == expected
    return len(expected) - len(tables)


# -- errors: one line naming the file, exit 2, no patch -----------------------


def _break(repo: Path, rel: str, old: str, new: str) -> None:
    path = repo / rel
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


# The end of OrcX86_64_Win32::writeResolverCode in the fixture.
WIN32_TAIL = """  const unsigned ReentryFnAddrOffset = 0x3a;
  const unsigned ReentryCtxAddrOffset = 0x28;

  memcpy(ResolverWorkingMem, ResolverCode, sizeof(ResolverCode));
  memcpy(ResolverWorkingMem + ReentryFnAddrOffset, &ReentryFnAddr,
         sizeof(uint64_t));
  memcpy(ResolverWorkingMem + ReentryCtxAddrOffset, &ReentryCtxAddr,
         sizeof(uint64_t));
}

void OrcI386"""


@pytest.mark.parametrize(
    ("rel", "old", "new", "where", "message"),
    [
        (orc.HEADER_PATH, None, None, orc.HEADER_PATH, "missing file: expected LLVM's"),
        (orc.CPP_PATH, None, None, orc.CPP_PATH, "missing file: expected LLVM's"),
        (
            orc.CPP_PATH,
            "void OrcX86_64_Win32::writeResolverCode(",
            "void OrcX86_64_Win32::writeResolver(",
            orc.CPP_PATH,
            "expected a definition `void OrcX86_64_Win32::writeResolverCode(...)`",
        ),
        (
            orc.CPP_PATH,
            WIN32_TAIL,
            "  const unsigned ReentryCtxAddrOffset = 0x28;\n"
            "  memcpy(ResolverWorkingMem + ReentryCtxAddrOffset, &ReentryCtxAddr, 8);\n"
            "}\n\nvoid OrcI386",
            orc.CPP_PATH,
            "expected `const unsigned ReentryFnAddrOffset = ...;` (any name) written as "
            "ResolverWorkingMem + ReentryFnAddrOffset",
        ),
        (
            orc.CPP_PATH,
            WIN32_TAIL,
            WIN32_TAIL.replace(
                "= 0x28;\n",
                "= 0x28;\n  const unsigned LandingOffset = 0x40;\n"
                "  memcpy(ResolverWorkingMem + LandingOffset, ResolverCode, 1);\n",
            ),
            orc.CPP_PATH,
            "writes at ResolverWorkingMem + LandingOffset, but no patch point of spec "
            "X86_64_Win32 is left for it",
        ),
        (
            orc.HEADER_PATH,
            "  static constexpr unsigned ResolverCodeSize = 0x74;\n",
            "",
            orc.HEADER_PATH,
            "expected `static constexpr unsigned ResolverCodeSize = ...;` in class OrcX86_64_Win32",
        ),
        (
            orc.HEADER_PATH,
            "  static constexpr unsigned StubSize = 8;\n"
            "  /// How far a stub's pointer may be from the stub.\n",
            "  /// How far a stub's pointer may be from the stub.\n",
            orc.HEADER_PATH,
            "expected `static constexpr unsigned StubSize = ...;` in class OrcX86_64_SysV",
        ),
        (
            orc.HEADER_PATH,
            "namespace orc {",
            "namespace orcx {",
            orc.HEADER_PATH,
            "expected `namespace llvm { namespace orc { ... } }`",
        ),
    ],
    ids=[
        "missing header",
        "missing cpp",
        "renamed function",
        "missing offset constant",
        "unknown offset constant",
        "missing size constant",
        "missing stub size",
        "no orc namespace",
    ],
)
def test_errors(capsys, llvm, specs, tmp_path, rel, old, new, where, message):
    if old is None:
        (llvm / rel).unlink()
    else:
        _break(llvm, rel, old, new)
    out = tmp_path / "out.patch"
    code, stdout, err = _patch(
        capsys,
        *("--llvm-root", str(llvm), "--specs", str(specs), "-o", str(out)),
        # SysV would patch cleanly; Win32 fails, and no partial patch is left.
        *("X86_64_SysV", "X86_64_Win32", "X86_64_Win32_seed_initial"),
    )
    assert code == 2
    assert stdout == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(str(llvm / where))
    assert message in err
    assert not out.exists()


def test_unknown_abi(capsys, llvm, tmp_path):
    out = tmp_path / "out.patch"
    code, _, err = _patch(capsys, "--llvm-root", str(llvm), "-o", str(out), "Vax")
    assert code == 2
    assert "ABI 'Vax' not found; expected one of: AArch64, " in err and " I386," in err
    assert err.startswith(str(ROOT / "abi_specs"))
    assert not out.exists()


def test_a_new_class_named_like_a_declaration_of_llvms_is_refused(capsys, llvm, specs):
    """A class the patch would add to llvm::orc must not take a name LLVM's
    headers declare: a class of another header, or a namespace."""
    header = llvm / "llvm" / "include" / "llvm" / "ExecutionEngine" / "Orc" / "Shared" / "X.h"
    header.parent.mkdir(parents=True, exist_ok=True)
    header.write_text("namespace llvm {\nnamespace orc {\nclass ExecutorAddr {};\n}\n}\n")
    spec = specs / "x86_64_sysv_lean.yaml"
    text = spec.read_text()
    at = text.splitlines().index("abi: X86_64_SysV_Lean") + 2  # the llvm_class line
    lines = TREE.joinpath(orc.HEADER_PATH).read_text().splitlines()
    orc_line = lines.index("namespace orc {") + 1
    for name, where in (
        ("ExecutorAddr", f"{header.relative_to(llvm)}:3"),
        ("orc", f"{orc.HEADER_PATH}:{orc_line}"),
    ):
        spec.write_text(text.replace("abi: X86_64_SysV_Lean\n", f"abi: Lean\nllvm_class: {name}\n"))
        code, out, err = _patch(capsys, "--llvm-root", str(llvm), "--specs", str(specs), "Lean")
        assert (code, out) == (2, ""), err
        assert err == (
            f"{spec}:{at}: error: llvm_class: LLVM already declares {name} "
            f"({where}); a new class of that "
            "name in llvm::orc would clash with it (hint: give the spec another llvm_class)\n"
        )


def test_output_file(capsys, llvm, specs, tmp_path):
    out = tmp_path / "out.patch"
    code, stdout, _ = _patch(
        capsys, "--llvm-root", str(llvm), "--specs", str(specs), "-o", str(out), "X86_64_Win32"
    )
    assert code == 0
    assert stdout == f"wrote {out}\n"
    code, diff, _ = _patch(capsys, "--llvm-root", str(llvm), "--specs", str(specs), "X86_64_Win32")
    assert out.read_text() == diff != ""


# -- the shapes other LLVM releases use ----------------------------------------


def _rename_in_function(repo: Path, function: str, names: dict[str, str]) -> None:
    path = repo / orc.CPP_PATH
    text = path.read_text()
    start = text.index(f"void {function}(")
    end = text.index("\n}\n", start)
    body = text[start:end]
    for old, new in names.items():
        body = re.sub(rf"\b{old}\b", new, body)
    path.write_text(text[:start] + body + text[end:])


def test_offset_constants_found_by_meaning(capsys, llvm, specs, tmp_path):
    """Offset constants under other names are found by what the function writes
    at them (the address parameter) and keep their names."""
    _rename_in_function(
        llvm,
        "OrcX86_64_Win32::writeResolverCode",
        {"ReentryFnAddrOffset": "FnSlot", "ReentryCtxAddrOffset": "CtxSlot"},
    )
    code, diff, _ = _patch(capsys, "--llvm-root", str(llvm), "--specs", str(specs), "X86_64_Win32")
    assert code == 0
    cpp = _changed(diff, orc.CPP_PATH)
    # One push fewer: both slots move down a byte (facts: LLVM's 0x3a and 0x28).
    assert "-  const unsigned FnSlot = 0x3a;" in cpp and "+  const unsigned FnSlot = 0x39;" in cpp
    assert "-  const unsigned CtxSlot = 0x28;" in cpp and "+  const unsigned CtxSlot = 0x27;" in cpp
    _apply(llvm, diff, tmp_path)
    table = _table(specs, "X86_64_Win32")
    written = _run_resolvers(llvm, tmp_path, {"OrcX86_64_Win32": (FN, CTX)})
    assert written["OrcX86_64_Win32"] == table.instantiate(
        {"ReentryFnAddr": FN, "ReentryCtxAddr": CTX}
    )


def test_new_class_follows_the_headers_export_macros(capsys, llvm):
    """Current LLVM marks the member functions `LLVM_ABI`, not the class: a new
    class is declared the way the header's own ABI classes are."""
    path = llvm / orc.HEADER_PATH
    text = path.read_text().replace("class LLVM_CLASS_ABI ", "class ")
    text = re.sub(r"\n  static void (write\w+\([^;{]*\);)", r"\n  LLVM_ABI static void \1", text)
    path.write_text(text)
    code, diff, _ = _patch(capsys, "--llvm-root", str(llvm), "X86_64_Win32_seed_initial")
    assert code == 0
    assert "+class OrcX86_64_Win32_seed_initial {" in diff
    assert diff.count("+  LLVM_ABI static void") == 3
    assert "LLVM_CLASS_ABI" not in diff


def test_jit_target_address_releases_are_refused(capsys, llvm, tmp_path):
    """LLVM 16 and older pass JITTargetAddress: one line names the release range."""
    path = llvm / orc.HEADER_PATH
    path.write_text(path.read_text().replace("ExecutorAddr", "JITTargetAddress"))
    out = tmp_path / "out.patch"
    code, stdout, err = _patch(capsys, "--llvm-root", str(llvm), "-o", str(out))
    assert (code, stdout) == (2, "")
    assert err.startswith(f"{path}:") and err.count("\n") == 1
    assert "takes JITTargetAddress (LLVM 16 or older)" in err
    assert "supports the ExecutorAddr releases, LLVM 17 and later" in err
    assert not out.exists()


def test_fixture_table_comments_come_from_asmgen_disassembler():
    """Every row comment of the fixture's tables is what asmgen's disassembler
    reads from the row's values (tests/fixture_tables.py rewrites them)."""
    cpp = orc.load(TREE, orc.CPP_PATH)
    assert fixture_tables.render(cpp, orc.load(TREE, orc.HEADER_PATH)) == cpp.data.decode()
    # n64 names, not LLVM's text: the MIPS64 save of $12 reads `t0`.
    assert "0xffac0050, // 0x02c: sd $t0, 0x50($sp)" in cpp.data.decode()
