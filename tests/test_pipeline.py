"""Offsets come from labels, outputs are correct and deterministic, the CLI behaves."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import gxx_cache
import pytest
from scratch_tree import generate_args

from asmgen.build.pipeline import build
from asmgen.cli import main
from asmgen.spec.files import select, spec_files

TEMPLATE = Path("templates/x86_64/resolver.s.j2")


def _table(tree: Path, abi: str):
    return build(select(spec_files(tree / "abi_specs"), [abi])[0], tree / "templates")


@pytest.mark.parametrize("extra", ["    nop", "    leaq 0x10(%rsp), %r11", "    movl $0x1, %eax"])
def test_inserted_instruction_moves_both_offsets(tree, extra):
    before = {p.name: p.offset for p in _table(tree, "X86_64_SysV").patches}
    path = tree / TEMPLATE
    text = path.read_text()
    anchor = "ReentryCtxAddr:\n"
    path.write_text(text.replace(anchor, f"{extra}\n{anchor}"))
    table = _table(tree, "X86_64_SysV")
    after = {p.name: p.offset for p in table.patches}
    # The length of what was inserted, as the assembler encodes it.
    inserted = next(s for s in table.statements if s.text == extra.strip()).size
    assert inserted > 0
    assert after == {name: offset + inserted for name, offset in before.items()}


def test_generate_writes_outputs_and_is_idempotent(tree, capsys):
    out = tree / "generated"
    args = ["generate", "--specs", str(tree / "abi_specs"), "--templates", str(tree / "templates")]
    assert main([*args, "--out", str(out)]) == 0
    files = sorted(p for p in out.rglob("*") if p.is_file())
    names = [str(p.relative_to(out)) for p in files]
    tables = ["orc_resolvers.h", "orc_resolvers.py", "orc_resolvers_llvm.h", "tables.json"]
    assert [n for n in names if "/" not in n] == tables
    # LLVM's newer path: one reentry source per spec of an arch that has one.
    assert "reentry/X86_64_SysV.S" in names and "reentry/Riscv64.S" in names
    stamps = {p: p.stat().st_mtime_ns for p in files}
    capsys.readouterr()
    assert main([*args, "--out", str(out)]) == 0
    assert "up to date" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in files} == stamps


def test_generated_files_are_deterministic_across_folders(tree, tmp_path_factory):
    other = tmp_path_factory.mktemp("elsewhere")
    for name in ("abi_specs", "templates"):
        shutil.copytree(tree / name, other / name)
    outputs = []
    for root in (tree, other):
        assert main(generate_args(root)) == 0
        out = root / "generated"
        files = sorted(p for p in out.rglob("*") if p.is_file())
        outputs.append({str(p.relative_to(out)): p.read_bytes() for p in files})
    assert outputs[0] == outputs[1]


def test_checked_in_outputs_start_with_do_not_edit():
    root = Path(__file__).resolve().parent.parent / "generated"
    for name, prefix in (("orc_resolvers.py", "# "), ("orc_resolvers.h", "// ")):
        first = (root / name).read_text().splitlines()[0]
        assert first.startswith(f"{prefix}DO NOT EDIT")
        assert "spec abi_specs/x86_64_win64.yaml" in (root / name).read_text()
    data = json.loads((root / "tables.json").read_text())
    assert data["generated_by"][0].startswith("DO NOT EDIT")


def test_header_names_every_template_and_keeps_its_lines():
    """Each ABI's entry names its resolver, trampoline and stub templates, and
    clang-format has not reflowed the tool list into the ABI list."""
    root = Path(__file__).resolve().parent.parent / "generated"
    data = json.loads((root / "tables.json").read_text())
    for name, prefix in (("orc_resolvers.py", "# "), ("orc_resolvers.h", "// ")):
        lines = (root / name).read_text().splitlines()
        comment = [line.removeprefix(prefix) for line in lines[: len(data["generated_by"])]]
        assert comment == data["generated_by"]
    entry = data["generated_by"].index("X86_64_Win32:")
    assert data["generated_by"][entry + 1 : entry + 6] == [
        "  spec abi_specs/x86_64_win64.yaml",
        "  convention abi_specs/conventions/ms_x64.yaml",
        "  template templates/x86_64/resolver.s.j2",
        "  template templates/x86_64/trampoline.s.j2",
        "  template templates/x86_64/stub.s.j2",
    ]
    assert all(len(line) <= 76 for line in data["generated_by"])


def test_check_catches_a_hand_edit(tree, capsys):
    args = ["--specs", str(tree / "abi_specs"), "--templates", str(tree / "templates")]
    out = ["--out", str(tree / "generated")]
    assert main(["generate", *args, *out]) == 0
    assert main(["check", *args, *out]) == 0
    header = tree / "generated" / "orc_resolvers.h"
    header.write_text(header.read_text().replace("0x48, 0x89, 0xe5,", "0x48, 0x89, 0xe6,", 1))
    capsys.readouterr()
    assert main(["check", *args, *out]) == 1
    shown = capsys.readouterr().out
    assert "orc_resolvers.h: stale" in shown
    assert "0xe6" in shown


def test_explain_lists_offsets_bytes_and_patch_points(capsys):
    assert main(["explain", "X86_64_Win32"]) == 0
    text = capsys.readouterr().out
    assert "size: 0x74 bytes" in text
    assert (
        "0x26  48b90000000000000000  movabsq $0, %rcx  ; patch ReentryCtxAddr: abs64 at 0x28"
        in (text)
    )
    assert "0x42  4883ec20" in text and "subq $0x20, %rsp" in text


def test_generated_python_module(generated_module, llvm_tables):
    table = generated_module.TABLES["X86_64_Win32"]
    assert table.size == 0x74 == len(table.code)
    assert table.code.hex() == llvm_tables["X86_64_Win32"]["hex"]
    points = {(p.name, p.offset, p.size, p.kind) for p in table.patches}
    assert points == {("ReentryFnAddr", 0x3A, 8, "abs64"), ("ReentryCtxAddr", 0x28, 8, "abs64")}
    example = llvm_tables["X86_64_Win32"]["example"]
    code = table.instantiate(int(example["ReentryFnAddr"], 16), int(example["ReentryCtxAddr"], 16))
    assert code.hex() == example["hex"]
    assert "fxsave64" in table.listing


def test_generated_json_keys(llvm_tables):
    root = Path(__file__).resolve().parent.parent / "generated"
    abis = json.loads((root / "tables.json").read_text())["abis"]
    record = abis["X86_64_SysV"]
    assert record["element"] == "uint8_t"
    assert record["size"] == 0x6C
    assert record["hex"] == llvm_tables["X86_64_SysV"]["hex"]
    assert record["patches"]["ReentryFnAddr"] | {"fields": None} == {
        "offset": 0x3A,
        "size": 8,
        "kind": "abs64",
        "fields": None,
    }


def test_cpp_is_clang_format_clean():
    from asmgen.emit.clangformat import clang_format_binary

    header = Path(__file__).resolve().parent.parent / "generated" / "orc_resolvers.h"
    result = subprocess.run(
        [clang_format_binary(), "--style=LLVM", "--dry-run", "-Werror", str(header)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def test_cpp_compiles_and_writes_the_same_bytes(tmp_path, generated_module):
    """The emitted C++ writeResolverCode produces what the Python module does."""
    header = Path(__file__).resolve().parent.parent / "generated" / "orc_resolvers.h"
    addresses = {8: (0x1122334455667788, 0x99AABBCCDDEEFF00), 4: (0x12345678, 0x9ABCDEF0)}
    # The C++ writes in host byte order, as ORC does: compare the host's order only.
    tables = {t.llvm_class: t for t in generated_module.TABLES.values() if t.byteorder == "little"}
    body = ""
    for name, table in sorted(tables.items()):
        fn, ctx = addresses[table.pointer_size]
        body += (
            f"  {{ char Mem[asmgen::{name}::ResolverCodeSize];\n"
            f"    asmgen::{name}::writeResolverCode(Mem, {fn:#x}ULL, {ctx:#x}ULL);\n"
            f'    printf("{name} ");\n'
            "    for (unsigned I = 0; I < sizeof(Mem); ++I)\n"
            '      printf("%02x", (unsigned char)Mem[I]);\n'
            f'    printf("\\n"); }}\n'
        )
    source = tmp_path / "main.cpp"
    source.write_text(f'#include "{header}"\n#include <cstdio>\nint main() {{\n{body}}}\n')
    binary, errors = gxx_cache.executable(
        "main", ["-std=c++17", "-Wall", "-Werror"], [source], scratch=[tmp_path], out=tmp_path
    )
    assert errors == "", errors
    printed = dict(
        line.split()
        for line in subprocess.run([binary], capture_output=True, text=True).stdout.splitlines()
    )
    assert sorted(printed) == sorted(tables)
    for name, table in tables.items():
        assert printed[name] == table.instantiate(*addresses[table.pointer_size]).hex()


# generated ABI id -> (LLVM fixture key, which bytes)
GENERATED_VS_LLVM = {
    "X86_64_SysV": ("X86_64_SysV", "hex"),
    "X86_64_Win32": ("X86_64_Win32", "hex"),
    "X86_64_Win32_seed_initial": ("X86_64_Win32_seed_initial", "hex"),
    "I386": ("I386", "hex"),
    "AArch64": ("AArch64", "hex"),
    "Mips32Le": ("Mips32", "hex"),
    "Mips32Be": ("Mips32", "hex_be"),
    "Mips64": ("Mips64", "hex"),
    "Riscv64": ("Riscv64", "hex"),
    "LoongArch64": ("LoongArch64", "hex"),
}


@pytest.mark.parametrize("abi", GENERATED_VS_LLVM)
def test_generated_module_matches_llvm(generated_module, llvm_tables, abi):
    key, which = GENERATED_VS_LLVM[abi]
    expected = llvm_tables[key]
    table = generated_module.TABLES[abi]
    assert table.code.hex() == expected[which]
    assert table.size == expected["size"]
    for name, offset in expected["offsets"].items():
        assert table.patch_point(name.removesuffix("Offset")).offset == offset
    if which == "hex":  # LLVM's examples are patched on a little-endian host
        example = expected["example"]
        fn, ctx = int(example["ReentryFnAddr"], 16), int(example["ReentryCtxAddr"], 16)
        assert table.instantiate(fn, ctx).hex() == example["hex"]


def test_generated_module_covers_every_spec(generated_module):
    from asmgen.spec.files import spec_files

    assert sorted(generated_module.TABLES) == sorted(f.spec.abi for f in spec_files())
    # Every ABI LLVM has is compared with LLVM's table; the rest are variants.
    assert set(GENERATED_VS_LLVM) <= set(generated_module.TABLES)


def test_a_parallel_build_reports_the_first_spec_error_in_order(tree):
    """Specs build side by side (gather.py), but the error raised is the one a
    loop over the specs would raise first, not the one that happened first."""
    from asmgen.build.pipeline import build_all
    from asmgen.errors import AsmgenError

    slow = tree / "templates/riscv64/resolver.s.j2"  # fails in llvm-mc, after a gathered round
    slow.write_text(
        slow.read_text().replace("resolver_entry:\n", "resolver_entry:\n    bogus a0\n", 1)
    )
    fast = tree / TEMPLATE  # fails at once, in Jinja
    fast.write_text("{% if %}\n" + fast.read_text())
    items = spec_files(tree / "abi_specs")
    order = select(items, ["Riscv64"]) + select(items, ["X86_64_SysV", "X86_64_Win32"])
    for _ in range(3):
        with pytest.raises(AsmgenError) as raised:
            build_all(order, tree / "templates")
        assert raised.value.path == str(slow) and "bogus" in raised.value.message
    with pytest.raises(AsmgenError) as raised:
        build_all(order[1:], tree / "templates")
    assert raised.value.path == str(fast)
