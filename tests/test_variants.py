"""Variant resolvers beyond LLVM's: AVX-safe (xsave64), lean, CET landing pad.

Vector state beyond SSE is checked by running the tables natively (unicorn
models no AVX); everything else by one emulated round trip each.
"""

from __future__ import annotations

import pytest
from native_vectors import run_isolated
from roundtrip import CTX, ENTRY_SP, run, run_table
from scratch_tree import tree_options

from asmgen.build.pipeline import build
from asmgen.cli import main
from asmgen.errors import AsmgenError
from asmgen.spec.files import select, spec_files
from asmgen.verify.vector_harness import cpu_flags

AVX_SAFE = ("X86_64_SysV_AVX", "X86_64_SysV_AVX_Fixed", "X86_64_Win32_AVX")
LEAN = ("X86_64_SysV_Lean", "X86_64_Win32_Lean")
VARIANTS = (*AVX_SAFE, *LEAN, "X86_64_SysV_CET")
# Variants on other arches; asmgen patch adds them as new classes too.
OTHER_VARIANTS = ("Riscv64_Aligned", "LoongArch64_Aligned", "AArch64_BTI")


@pytest.fixture(scope="module")
def tables():
    found = spec_files()
    return {
        abi: build(select(found, [abi])[0]) for abi in (*VARIANTS, "X86_64_SysV", "X86_64_Win32")
    }


def _llvm(llvm_tables, name):
    table = llvm_tables[name]
    offsets = table["offsets"]
    patches = {
        "ReentryFnAddr": offsets["ReentryFnAddrOffset"],
        "ReentryCtxAddr": offsets["ReentryCtxAddrOffset"],
    }
    return bytes.fromhex(table["hex"]), patches


# --- native: the full vector state ------------------------------------------


def test_this_machine_has_avx():
    # The native checks below need AVX; on a machine without it they must fail,
    # not pass vacuously.
    assert "avx" in cpu_flags()


@pytest.mark.parametrize("abi", AVX_SAFE)
def test_avx_safe_keeps_every_vector_register_natively(abi):
    seen = run_isolated(abi)
    assert all(seen.xmm), seen.xmm
    assert len(seen.upper) >= 0x10 and all(seen.upper), seen.upper
    assert all(seen.masks), seen.masks
    assert len(seen.masks) == (8 if "avx512f" in cpu_flags() else 0)


def test_llvm_fxsave_loses_the_upper_halves_natively():
    # The negative control: the same harness shows what LLVM's table loses.
    seen = run_isolated("X86_64_SysV")
    assert all(seen.xmm[:0x10])
    assert not any(seen.upper)
    if seen.masks:
        assert not any(seen.masks)


def test_lean_keeps_the_fp_arguments_natively():
    seen = run_isolated("X86_64_SysV_Lean")
    assert all(seen.xmm[:8])
    assert not any(seen.xmm[8:0x10])  # not arguments: the re-entry function may clobber them


@pytest.mark.parametrize("abi", ("X86_64_SysV_AVX", "X86_64_Win32_AVX"))
def test_native_reentry_arguments(abi, tables):
    seen = run_isolated(abi)
    first, second = tables[abi].spec.call.int_args[:2]
    assert seen.reentry_args[first] == 0x0C0FFEE0C0FFEE00
    assert seen.reentry_args[second] == seen.trampoline
    assert seen.reentry_sp % 0x10 == 8  # the call left sp 16-byte aligned


# --- emulated round trip ----------------------------------------------------


@pytest.mark.parametrize("abi", VARIANTS)
def test_round_trip(abi, tables):
    spec = tables[abi].spec
    trip = run_table(tables[abi])
    assert trip.landed
    assert trip.sp_at_landing == ENTRY_SP and trip.caller_return_kept
    assert trip.reentry_args == (CTX, trip.trampoline)
    assert trip.reentry_sp % spec.call.stack_align == 8
    kept = set(spec.call.int_args + spec.call.fp_args + spec.call.callee_saved)
    kept |= set(spec.resolver.saves + spec.resolver.fp_saves)
    assert not kept & set(trip.changed), trip.changed


@pytest.mark.parametrize("abi", AVX_SAFE)
def test_xsave_area_is_64_byte_aligned(abi, tables):
    trip = run_table(tables[abi])
    assert trip.vector_area_addr is not None and trip.vector_area_addr % 0x40 == 0


def test_lean_moves_at_most_half_of_llvms_stack_bytes(tables, llvm_tables):
    for lean, llvm in (("X86_64_SysV_Lean", "X86_64_SysV"), ("X86_64_Win32_Lean", "X86_64_Win32")):
        code, patches = _llvm(llvm_tables, llvm)
        spec = tables[lean].spec
        reference = run(
            code, patches, tables[llvm], spec.call.int_args, spec.call.callee_saved, 0x0
        )
        assert reference.landed
        assert run_table(tables[lean]).stack_moved * 2 <= reference.stack_moved


def test_avx_safe_costs_at_most_twice_llvm(tables, llvm_tables):
    code, patches = _llvm(llvm_tables, "X86_64_SysV")
    spec = tables["X86_64_SysV"].spec
    reference = run(
        code, patches, tables["X86_64_SysV"], spec.call.int_args, spec.call.callee_saved, 0x0
    )
    for abi in AVX_SAFE:
        assert run_table(tables[abi]).instructions <= 2 * reference.instructions


# --- CET landing pad --------------------------------------------------------


def test_endbr64_bytes_match_llvm_mc(tables, llvm_tables):
    from native_vectors import assemble_harness

    code, _ = assemble_harness(".text\nendbr64\n")
    cet = tables["X86_64_SysV_CET"].code
    assert cet[: len(code)] == code == bytes.fromhex("f30f1efa")
    # The rest is LLVM's table, four bytes later, except that the trampoline
    # (endbr64 and the 6-byte call) is 0xa bytes before the return address.
    old, _ = assemble_harness(".text\nsubq $6, %rsi\n")
    new, _ = assemble_harness(".text\nsubq $10, %rsi\n")
    llvm = llvm_tables["X86_64_SysV"]["hex"]
    assert llvm.count(old.hex()) == 1
    assert cet[len(code) :].hex() == llvm.replace(old.hex(), new.hex())
    points = {p.name: p.offset for p in tables["X86_64_SysV_CET"].patches}
    offsets = llvm_tables["X86_64_SysV"]["offsets"]
    assert points["ReentryCtxAddr"] == offsets["ReentryCtxAddrOffset"] + 4
    assert points["ReentryFnAddr"] == offsets["ReentryFnAddrOffset"] + 4


def test_endbr64_decodes_as_endbr64(tables):
    import capstone

    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    first = next(md.disasm(tables["X86_64_SysV_CET"].code, 0))
    assert first.mnemonic == "endbr64"


@pytest.mark.parametrize("unit", ["trampoline", "stub"])
def test_cet_units_open_with_endbr64(tables, unit):
    """Stubs are reached indirectly too (JITLink calls them through the GOT, a
    function pointer may hold one), so they open with endbr64 like the
    trampolines; then comes the plain SysV unit (LLVM's), its field moved by
    the pad.  A stub is padded with int3 to a size that divides the page, as
    LLVM's getIndirectStubsBlockSizes requires (it asserts)."""
    from native_vectors import assemble_harness

    pad, _ = assemble_harness(".text\nendbr64\n")
    cet = getattr(tables["X86_64_SysV_CET"].units, unit)
    plain = getattr(tables["X86_64_SysV"].units, unit)
    grown = len(pad) + plain.size
    assert cet.code[:grown] == pad + plain.code
    assert set(cet.code[grown:]) <= {0xCC}
    assert cet.size == (grown if unit == "trampoline" else 16)
    assert 0x1000 % plain.size == 0
    assert [f.field.offset for f in cet.unit.fields] == [
        f.field.offset + len(pad) for f in plain.unit.fields
    ]
    assert [f.anchor for f in cet.unit.fields] == [f.anchor + len(pad) for f in plain.unit.fields]


# --- spec validation --------------------------------------------------------

AVX_SPEC = "abi_specs/x86_64_sysv_avx_fixed.yaml"


@pytest.mark.parametrize(
    ("old", "new", "fragment"),
    [
        ("area_size: 0xa80", "area_size: 0x680", "less than the 0xa80 bytes"),
        ("align: 0x40", "align: 0x10", "needs at least 0x40"),
        ("feature_mask: 0xe7", "feature_mask: 0x20007", "component 17"),
        ("[rax, rbx, rcx, rdx,", "[rax, rbx, rcx,", "overwrites rdx"),
    ],
)
def test_bad_xsave_specs(tree, capsys, old, new, fragment):
    path = tree / AVX_SPEC
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    code = main(["check", "--specs", str(tree / "abi_specs"), "--out", str(tree / "generated")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith(f"{path}:") and fragment in err[0], err[0]


def test_stub_that_does_not_divide_a_page(tree, capsys):
    path = tree / "templates/x86_64/stub.s.j2"
    path.write_text(path.read_text().replace("    .balign 0x8, 0xcc\n", ""))
    code = main(["check", *tree_options(tree), "--out", str(tree / "generated")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith(f"{path}:") and "does not divide a 0x1000-byte page" in err[0], err


def test_unknown_landing_pad(tree, capsys):
    path = tree / "abi_specs/x86_64_sysv_cet.yaml"
    path.write_text(path.read_text().replace("landing_pad: endbr64", "landing_pad: bti_c"))
    code = main(["check", "--specs", str(tree / "abi_specs"), "--out", str(tree / "generated")])
    err = capsys.readouterr().err
    assert code == 2 and "landing_pad 'bti_c'" in err and "endbr64" in err


def test_native_child_failure_is_reported():
    # A failing child (here: an unknown ABI) is an error with its message.
    with pytest.raises(AsmgenError, match="unknown ABI 'NoSuchABI'"):
        run_isolated("NoSuchABI")


def test_docs_cost_table_is_current():
    from costs import markdown, rows

    from asmgen.build.pipeline import build_all
    from asmgen.resources import REPO_ROOT

    items = [i for i in spec_files() if i.spec.arch == "x86_64"]
    fresh = markdown(rows(build_all(items), REPO_ROOT / "tests" / "fixtures" / "llvm_tables.json"))
    doc = (REPO_ROOT / "docs" / "variants.md").read_text()
    assert f"<!-- costs:begin -->\n{fresh}<!-- costs:end -->" in doc
    # LLVM's own rows compare with themselves: the harness measured LLVM's bytes.
    assert "| X86_64_SysV | X86_64_SysV | 0x6c |" in fresh


# --- asmgen patch: each variant as a new ABI class in LLVM -------------------


def test_patch_adds_every_variant_as_a_new_class(capsys, tmp_path):
    import llvm_trees
    from test_llvm_patch import TREE, _apply, _assert_clang_format_clean, _patch, _run_resolvers

    from asmgen.patch import orc_source as orc

    llvm = llvm_trees.scratch_tree(tmp_path / "llvm-project", llvm_trees.llvm_files(TREE))

    code, diff, _ = _patch(capsys, "--llvm-root", str(llvm), *VARIANTS, *OTHER_VARIANTS)
    assert code == 0
    removed = [
        line for line in diff.splitlines() if line.startswith("-") and not line.startswith("---")
    ]
    assert removed == []  # only new classes
    _apply(llvm, diff, tmp_path)
    _assert_clang_format_clean(llvm)
    found = spec_files()
    tables = {abi: build(select(found, [abi])[0]) for abi in (*VARIANTS, *OTHER_VARIANTS)}
    fn, ctx = 0x1122334455667788, 0x99AABBCCDDEEFF00
    classes = {t.spec.class_name: (fn, ctx) for t in tables.values()}
    written = _run_resolvers(llvm, tmp_path, classes)
    for abi, table in tables.items():
        name = table.spec.class_name
        assert orc.extract(llvm, name).code("little") == table.code, abi
        patched = table.instantiate({"ReentryFnAddr": fn, "ReentryCtxAddr": ctx})
        assert written[name] == patched, abi


# --- corrected RISC-V and LoongArch frames, AArch64 BTI ----------------------


def _verify_outcomes(capsys, *abis):
    import json

    capsys.readouterr()
    code = main(["verify", "--format", "json", *abis])
    found = json.loads(capsys.readouterr().out)["abis"]
    return code, {abi: {c: r["outcome"] for c, r in found[abi]["checks"].items()} for abi in abis}


def test_corrected_riscv64_and_loongarch64_frames(capsys):
    from native_vectors import assemble_harness

    found = spec_files()
    # 21 GPRs and fa0-fa7 (29 x 8 = 232) round up to 240; LLVM's 9 + 8
    # LoongArch registers (136) round up to 144.
    cases = {
        "Riscv64_Aligned": ("riscv64", "+d,-relax", "addi sp, sp, -240"),
        "LoongArch64_Aligned": ("loongarch64", "+d", "addi.d $sp, $sp, -144"),
    }
    for abi, (triple, mattr, first) in cases.items():
        table = build(select(found, [abi])[0])
        expected, _ = assemble_harness(f".text\n{first}\n", triple, mattr)
        assert table.code[:4] == expected, abi
    code, outcomes = _verify_outcomes(capsys, *cases)
    assert code == 0
    rv = outcomes["Riscv64_Aligned"]
    assert rv["stack_align"] == rv["fp_args"] == rv["frame_align"] == "ok"
    assert outcomes["LoongArch64_Aligned"]["frame_align"] == "ok"


def test_aarch64_bti_landing_pad(capsys, llvm_tables):
    import capstone
    from native_vectors import assemble_harness

    table = build(select(spec_files(), ["AArch64_BTI"])[0])
    bti, _ = assemble_harness(".text\nbti c\n", "aarch64", "+bti")
    assert table.code[:4] == bti
    md = capstone.Cs(capstone.CS_ARCH_ARM64, capstone.CS_MODE_ARM)
    assert next(md.disasm(table.code, 0)).mnemonic == "bti"
    # LLVM's first instruction follows it.
    assert table.code[4:8].hex() == llvm_tables["AArch64"]["hex"][:8]
    code, outcomes = _verify_outcomes(capsys, "AArch64_BTI")
    assert code == 0
    # LLVM's AArch64 table's declared loss of x18 (the static chain) is kept.
    found = dict(outcomes["AArch64_BTI"])
    assert found.pop("caller_conventions") == "declared"
    # ... and so is its `ret x17`, which Arm GCS refuses (AArch64_GCS_BTI does not).
    assert found.pop("shadow_stack") == "declared"
    assert set(found.values()) <= {"ok", "n/a"}
    # The stubs open with `bti c` too (JIT'd code reaches them with blr), 16 bytes.
    assert table.units.stub.code[:4] == bti
    assert table.units.stub.size == 0x10
