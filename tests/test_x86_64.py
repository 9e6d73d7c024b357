"""x86-64 SysV, Win64 and the seed's first Win64 attempt, byte-exact with LLVM."""

from __future__ import annotations

from pathlib import Path

import pytest

from asmgen.build.pipeline import build
from asmgen.resources import SPECS_DIR
from asmgen.spec.files import select, spec_files

# spec file -> the key of LLVM's table in the fixtures
CASES = {
    "x86_64_sysv": "X86_64_SysV",
    "x86_64_win64": "X86_64_Win32",
    "x86_64_win64_seed": "X86_64_Win32_seed_initial",
}


@pytest.fixture(scope="module")
def tables():
    found = spec_files(SPECS_DIR)
    return {stem: build(select(found, [stem])[0]) for stem in CASES}


@pytest.mark.parametrize("stem", CASES)
def test_bytes_identical_to_llvm(tables, llvm_tables, stem):
    expected = llvm_tables[CASES[stem]]
    table = tables[stem]
    assert table.code.hex() == expected["hex"]
    assert len(table.code) == expected["size"]


@pytest.mark.parametrize("stem", CASES)
def test_patch_offsets_identical_to_llvm(tables, llvm_tables, stem):
    expected = llvm_tables[CASES[stem]]["offsets"]
    points = {p.name: p for p in tables[stem].patches}
    assert points["ReentryCtxAddr"].offset == expected["ReentryCtxAddrOffset"] == 0x28
    assert points["ReentryFnAddr"].offset == expected["ReentryFnAddrOffset"] == 0x3A
    for point in points.values():
        assert (point.size, point.kind) == (8, "abs64")


def test_sizes(tables):
    assert {stem: len(t.code) for stem, t in tables.items()} == {
        "x86_64_sysv": 0x6C,
        "x86_64_win64": 0x74,
        "x86_64_win64_seed": 0x6C,
    }


@pytest.mark.parametrize("stem", CASES)
def test_instantiate_matches_llvm_example(tables, llvm_tables, stem):
    example = llvm_tables[CASES[stem]]["example"]
    fn, ctx = int(example["ReentryFnAddr"], 16), int(example["ReentryCtxAddr"], 16)
    code = tables[stem].instantiate({"ReentryFnAddr": fn, "ReentryCtxAddr": ctx})
    assert code.hex() == example["hex"]


def _fields(path: Path) -> dict:
    import yaml

    return yaml.safe_load(path.read_text())


def test_seed_differs_from_win64_only_in_reserved_shadow_space():
    # Same convention (ms_x64: a 32-byte home area); the seed's resolver
    # reserves none, declares that deviation, and what verify finds it costs.
    win64 = _fields(SPECS_DIR / "x86_64_win64.yaml")
    seed = _fields(SPECS_DIR / "x86_64_win64_seed.yaml")
    identity = ("abi", "llvm_class", "description")
    for fields in (win64, seed):
        for key in identity:
            fields.pop(key, None)
    assert win64["convention"] == seed["convention"] == "ms_x64"
    ms_x64 = _fields(SPECS_DIR / "conventions" / "ms_x64.yaml")
    assert ms_x64["stack"]["home_area"] == 0x20
    assert "shadow_space" not in win64["resolver"]
    assert seed["resolver"].pop("shadow_space") == 0
    assert [d["field"] for d in seed.pop("deviations")] == ["home_area"]
    declared = seed.pop("expected_violations")
    checks = ["fp_control", "shadow_space", "shadow_stack", "vector_width"]
    assert sorted(v["check"] for v in declared) == checks
    # Both lose the YMM/ZMM upper halves (fxsave64) and say so alike.
    llvms = ("vector_width", "shadow_stack")  # the Win64 table's own declarations
    assert win64.pop("expected_violations") == [v for v in declared if v["check"] in llvms]
    assert win64 == seed


def test_sysv_and_win64_differ_only_in_convention_fields():
    sysv = _fields(SPECS_DIR / "x86_64_sysv.yaml")
    win64 = _fields(SPECS_DIR / "x86_64_win64.yaml")
    assert sysv["resolver"] == win64["resolver"]
    assert sysv["trampoline"] == win64["trampoline"]
    assert (sysv["convention"], win64["convention"]) == ("sysv_amd64", "ms_x64")
    specs = {item.spec.abi: item.spec for item in spec_files(SPECS_DIR)}
    assert specs["X86_64_SysV"].call.int_args[:2] == ("rdi", "rsi")
    assert specs["X86_64_Win32"].call.int_args[:2] == ("rcx", "rdx")


def test_template_never_asks_which_abi_it_renders():
    text = (SPECS_DIR.parent / "templates" / "x86_64" / "resolver.s.j2").read_text()
    for name in ("spec.abi", "llvm_class", "class_name", "description", "SysV", "Win32", "Win64"):
        assert name not in text
