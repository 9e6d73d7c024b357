"""I386, AArch64, MIPS32 (both byte orders), MIPS64, RISC-V 64 and LoongArch64:
byte-exact with LLVM, offsets from labels, patching equal to assembling."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from assembled import assemble_with_addresses

from asmgen.build.crosscheck import Difference, _compare, cross_check, supports_both, unexplained
from asmgen.build.layout import build_table
from asmgen.build.llvm_mc import assemble_llvm_mc
from asmgen.build.pipeline import build, template_for
from asmgen.build.render import render
from asmgen.errors import AsmgenError
from asmgen.resources import SPECS_DIR
from asmgen.spec import load_spec, parse_spec
from asmgen.spec.files import select, spec_files

# spec file -> (key of LLVM's table in the fixtures, which hex to compare)
CASES = {
    "i386": ("I386", "hex"),
    "aarch64": ("AArch64", "hex"),
    "mips32_le": ("Mips32", "hex"),
    "mips32_be": ("Mips32", "hex_be"),
    "mips64": ("Mips64", "hex"),
    "riscv64": ("Riscv64", "hex"),
    "loongarch64": ("LoongArch64", "hex"),
}

SIZES = {
    "i386": 0x49,
    "aarch64": 0x120,
    "mips32_le": 0x104,
    "mips32_be": 0x104,
    "mips64": 0x124,
    "riscv64": 0x148,
    "loongarch64": 0xC8,
}

OFFSETS = {
    "i386": {"ReentryCtxAddr": 0x25, "ReentryFnAddr": 0x2A},
    "aarch64": {"ReentryFnAddr": 0x110, "ReentryCtxAddr": 0x118},
    "mips32_le": {"ReentryCtxAddr": 0x6C, "ReentryFnAddr": 0x7C, "MoveLandingAddr": 0xF8},
    "mips32_be": {"ReentryCtxAddr": 0x6C, "ReentryFnAddr": 0x7C, "MoveLandingAddr": 0xF8},
    "mips64": {"ReentryCtxAddr": 0x6C, "ReentryFnAddr": 0x8C},
    "riscv64": {"ReentryCtxAddr": 0x138, "ReentryFnAddr": 0x140},
    "loongarch64": {"ReentryCtxAddr": 0xB8, "ReentryFnAddr": 0xC0},
}

ADDRESS_PATCHES = ("ReentryCtxAddr", "ReentryFnAddr")


@pytest.fixture(scope="module")
def found():
    return spec_files(SPECS_DIR)


@pytest.fixture(scope="module")
def tables(found):
    return {stem: build(select(found, [stem])[0]) for stem in CASES}


def _item(found, stem):
    return select(found, [stem])[0]


@pytest.mark.parametrize("stem", CASES)
def test_bytes_identical_to_llvm(tables, llvm_tables, stem):
    key, which = CASES[stem]
    table = tables[stem]
    assert table.code.hex() == llvm_tables[key][which]
    assert len(table.code) == llvm_tables[key]["size"] == SIZES[stem]


@pytest.mark.parametrize("stem", CASES)
def test_patch_offsets_identical_to_llvm(tables, llvm_tables, stem):
    key, _ = CASES[stem]
    points = {p.name: p.offset for p in tables[stem].patches}
    expected = {name.removesuffix("Offset"): v for name, v in llvm_tables[key]["offsets"].items()}
    assert points == expected == OFFSETS[stem]


def test_patch_kinds(tables):
    kinds = {stem: {p.name: p.kind for p in t.patches} for stem, t in tables.items()}
    assert kinds["i386"] == {"ReentryCtxAddr": "abs32", "ReentryFnAddr": "abs32"}
    for stem in ("aarch64", "riscv64", "loongarch64"):
        assert set(kinds[stem].values()) == {"abs64"}
    for stem in ("mips32_le", "mips32_be"):
        assert kinds[stem] == {
            "ReentryCtxAddr": "hi16+lo16",
            "ReentryFnAddr": "hi16+lo16",
            "MoveLandingAddr": "runtime_word",
        }
    chain = "highest16+higher16+runtime_word+hi16+runtime_word+lo16"
    assert kinds["mips64"] == {"ReentryCtxAddr": chain, "ReentryFnAddr": chain}


def _bases(table) -> dict[str, list[int]]:
    return {p.name: [f.base for f in p.fields] for p in table.patches}


def test_mips_base_words_come_from_the_assembler(tables):
    # The constants LLVM writes at run time (`0x3c040000 | hi`, ...).
    for stem in ("mips32_le", "mips32_be"):
        bases = _bases(tables[stem])
        assert bases["ReentryCtxAddr"] == [0x3C040000, 0x24840000]
        assert bases["ReentryFnAddr"] == [0x3C190000, 0x27390000]
    assert _bases(tables["mips32_le"])["MoveLandingAddr"] == [0x0040C825]  # move $t9, $v0
    assert _bases(tables["mips32_be"])["MoveLandingAddr"] == [0x0060C825]  # move $t9, $v1
    bases = _bases(tables["mips64"])
    # lui, daddiu (%higher), dsll, daddiu (%hi), dsll, daddiu (%lo)
    lui, daddiu, dsll = 0x3C040000, 0x64840000, 0x00042438  # into $a0
    assert bases["ReentryCtxAddr"] == [lui, daddiu, dsll, daddiu, dsll, daddiu]
    lui, daddiu, dsll = 0x3C190000, 0x67390000, 0x0019CC38  # into $t9
    assert bases["ReentryFnAddr"] == [lui, daddiu, dsll, daddiu, dsll, daddiu]
    for stem in ("mips32_le", "mips32_be", "mips64"):
        for point in tables[stem].patches:
            assert all(f.whole_word and f.size == 4 for f in point.fields)
            for field in point.fields:  # the table holds zero there
                assert tables[stem].code[field.offset : field.offset + 4] == bytes(4)


def test_data_slot_markers_and_padding(tables):
    def words(stem, start, count):
        code = tables[stem].code
        return [
            int.from_bytes(code[i : i + 4], "little") for i in range(start, start + 4 * count, 4)
        ]

    assert words("aarch64", 0x110, 4) == [0x01234567, 0xDEADBEEF, 0x98765432, 0xCAFEF00D]
    assert words("riscv64", 0x134, 5) == [
        0x12345678,
        0x12345678,
        0xDEADBEEF,
        0x98765432,
        0xCAFEF00D,
    ]
    assert words("loongarch64", 0xB4, 5) == [0, 0x01234567, 0xDEEDBEEF, 0x98765432, 0xCAFEF00D]


@pytest.mark.parametrize("stem", CASES)
def test_instantiate_matches_llvm_example(tables, llvm_tables, stem):
    key, which = CASES[stem]
    example = llvm_tables[key]["example"]
    addresses = {name: int(example[name], 16) for name in ADDRESS_PATCHES}
    expected = bytes.fromhex(example["hex"])
    if which == "hex_be":
        # LLVM's example is the little-endian table; a big-endian target holds
        # the same words in its byte order, with `move $t9, $v1` for the landing.
        words = [int.from_bytes(expected[i : i + 4], "little") for i in range(0, len(expected), 4)]
        words[0xF8 // 4] = 0x0060C825
        expected = b"".join(w.to_bytes(4, "big") for w in words)
    assert tables[stem].instantiate(addresses) == expected


def _addresses(pointer_size: int, seed: int) -> list[dict[str, int]]:
    """Edge cases of the %hi/%lo carries and random addresses."""
    top = 1 << (8 * pointer_size)
    edges = [0, 0x7FFF, 0x8000, 0xFFFF, 0x7FFF8000, 0x80007FFF, top - 1, top - 0x8000]
    if pointer_size == 8:
        edges += [0x7FFF7FFF8000, 0x800080008000, 0x0000FFFF_FFFF8000, 0x1122334455667788]
    rng = random.Random(seed)
    values = edges + [rng.randrange(top) for _ in range(4)]
    return [
        {"ReentryCtxAddr": a, "ReentryFnAddr": values[(i + 3) % len(values)]}
        for i, a in enumerate(values)
    ]


@pytest.mark.parametrize("stem", CASES)
def test_instantiate_equals_assembling_the_real_addresses(found, tables, stem):
    item = _item(found, stem)
    table = tables[stem]
    template = template_for(item)
    for addresses in _addresses(item.spec.pointer_size, seed=len(stem)):
        assembled = assemble_with_addresses(item.spec, template, addresses)
        assert table.instantiate(addresses) == assembled, {k: hex(v) for k, v in addresses.items()}


def test_instantiate_refuses_addresses_wider_than_a_pointer(tables):
    with pytest.raises(ValueError, match="does not fit"):
        tables["mips32_le"].instantiate({"ReentryCtxAddr": 1 << 32, "ReentryFnAddr": 0})


def test_frames(tables):
    frames = {stem: t.frame for stem, t in tables.items()}
    i386 = frames["i386"]
    assert i386.realign and i386.vector_alloc == 0x218 and i386.vector_offset == 0x10
    assert i386.arg_offsets == (0x0, 0x4)
    assert {s: frames[s].size for s in CASES if s != "i386"} == {
        "aarch64": 0x2E0,
        "mips32_le": 0x68,
        "mips32_be": 0x68,
        "mips64": 0xD0,
        "riscv64": 0x108,
        "loongarch64": 0x88,
    }
    # LLVM's RISC-V and LoongArch frames are rounded to 8 only: the specs say
    # so (resolver.frame_align), and the frame knows the call is misaligned.
    aligned = {stem: f.aligned_at_call for stem, f in frames.items()}
    assert aligned == {s: s not in ("riscv64", "loongarch64") for s in CASES}


BOTH_BACKENDS = [s for s in CASES if s not in ("riscv64", "loongarch64")]


@pytest.mark.parametrize("stem", [*BOTH_BACKENDS, "x86_64_sysv", "x86_64_win64"])
def test_keystone_and_llvm_mc_agree(found, stem):
    item = _item(found, stem)
    assert supports_both(item.spec)
    diffs = cross_check(item.path)
    assert unexplained(diffs) == []


def test_cross_check_skips_single_backend_arches(found):
    for stem in ("riscv64", "loongarch64"):
        assert cross_check(_item(found, stem).path) == []


def test_cross_check_reports_a_differing_statement(found):
    item = _item(found, "i386")
    base = build(item)
    statements = list(base.statements)
    code = bytearray(base.code)
    code[statements[0].offset] ^= 0xFF

    class Fake:
        pass

    ks, mc = Fake(), Fake()
    ks.code, ks.statements = base.code, base.statements
    mc.code, mc.statements = bytes(code), base.statements
    (diff,) = _compare(item.spec, "placeholders", ks, mc)
    assert isinstance(diff, Difference) and diff.statement == statements[0].text
    assert unexplained([diff]) == [diff]


@pytest.mark.parametrize("stem", BOTH_BACKENDS)
def test_llvm_mc_backend_reproduces_llvm_too(found, llvm_tables, stem):
    item = _item(found, stem)
    spec = item.spec.model_copy(update={"backend": "llvm-mc"})
    table = build_table(spec, item.path, template_for(item))
    key, which = CASES[stem]
    assert table.code.hex() == llvm_tables[key][which]


def _tree_template(tmp_path: Path, arch: str, text: str) -> Path:
    path = tmp_path / arch / "resolver.s.j2"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    return path


def test_llvm_mc_errors_point_at_the_template_line(found, tmp_path):
    spec = _item(found, "riscv64").spec
    template = _tree_template(
        tmp_path, "riscv64", "{# comment #}\nstart:\n    addi sp, sp, -0x10\n    frobnicate a0\n"
    )
    rendered = render(spec, template, build(_item(found, "riscv64")).frame, lambda i, u: 0)
    with pytest.raises(AsmgenError) as info:
        assemble_llvm_mc(spec, rendered)
    assert info.value.line == 4 and info.value.path == str(template)
    assert "frobnicate" in info.value.message


def test_unknown_label_points_at_the_template_line(found, tmp_path):
    item = _item(found, "loongarch64")
    template = _tree_template(
        tmp_path, "loongarch64", "start:\n    addi.d $sp, $sp, {{ hex(label('nowhere')) }}\n"
    )
    with pytest.raises(AsmgenError) as info:
        build_table(item.spec, item.path, template)
    assert "nowhere" in info.value.message and info.value.path == str(template)


def _spec_text(stem: str) -> str:
    return (SPECS_DIR / f"{stem}.yaml").read_text()


@pytest.mark.parametrize(
    ("stem", "old", "new", "message"),
    [
        ("riscv64", "pointer_size: 8\n", "pointer_size: 8\nendian: big\n", "no big-endian"),
        ("riscv64", "fp_saves: [fs0,", "fp_saves: [a5,", "is a gpr register"),
        ("aarch64", "fp_saves: [q0,", "fp_saves: [d0,", "stores vec registers"),
        ("riscv64", "frame_align: 0x8", "frame_align: 0x6", "not a power of two"),
        ("mips32_le", "scratch: t9", "scratch: f0", "is a fpr register"),
        ("i386", "area_size: 0x200}", "area_size: 0x0}", "needs an area_size"),
        ("riscv64", "landing: t0", "landing: x9", "'x9' is not a register"),
    ],
)
def test_spec_checks(stem, old, new, message):
    text = _spec_text(stem)
    assert old in text
    with pytest.raises(AsmgenError, match=message):
        parse_spec(text.replace(old, new, 1), Path(f"{stem}.yaml"))


def test_specs_load(found):
    for stem in CASES:
        assert load_spec(SPECS_DIR / f"{stem}.yaml").abi == _item(found, stem).spec.abi
