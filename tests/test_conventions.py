"""Calling conventions are reviewed files; specs name one and hold only
implementation choices; breaking a convention fact takes a named deviation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from scratch_tree import generate_args, tree_options

from asmgen.build.pipeline import build
from asmgen.cli import main
from asmgen.errors import AsmgenError
from asmgen.resources import SPECS_DIR
from asmgen.spec import load_spec, parse_spec
from asmgen.spec.convention import CITED, DEVIATIONS, all_conventions
from asmgen.spec.files import SpecFile, spec_files
from asmgen.verify.runner import subject_from_table, verify

CONVENTIONS = SPECS_DIR / "conventions"
# The conventions the issue names, and the arch each one is for.
EXPECTED = {
    "sysv_amd64": "x86_64",
    "ms_x64": "x86_64",
    "i386_sysv": "i386",
    "aapcs64": "aarch64",
    "mips_o32": "mips32",
    "mips_n64": "mips64",
    "riscv_lp64d": "riscv64",
    "loongarch_lp64d": "loongarch64",
    "ppc64_elfv2": "ppc64le",
    # Issue 18's s390x, with and without the vector facility.
    "s390x_elf": "s390x",
    "s390x_elf_novector": "s390x",
}


def test_one_reviewed_file_per_convention():
    found = {c.convention: c for c in all_conventions(CONVENTIONS)}
    assert {name: c.arch for name, c in found.items()} == EXPECTED
    for conv in found.values():
        # Every fact names the document and section it comes from:
        # stack.link_area where a file has one (ELFv2's frame header), and the
        # optional back chain where a file states it.
        cited = {*CITED, *(("stack.link_area",) if conv.stack.link_area else ())}
        optional = {"stack.back_chain"} if conv.stack.back_chain is not None else set()
        assert set(conv.cite) == cited | optional, conv.convention
        assert all(conv.cite[key].split(":")[0] in conv.sources for key in cited)


def test_facts_from_the_psabis():
    """A few facts stated by the documents themselves (not by asmgen)."""
    found = {c.convention: c for c in all_conventions(CONVENTIONS)}
    assert found["ms_x64"].stack.home_area == 0x20
    assert found["mips_o32"].stack.home_area == 0x10
    assert found["sysv_amd64"].stack.red_zone == 0x80
    # s390x ELF ABI: the 160-byte register save area, the back chain at 0(r15),
    # r2-r6 and f0/f2/f4/f6 for arguments, 8-byte stack alignment.
    s390x = found["s390x_elf"]
    assert (s390x.stack.home_area, s390x.stack.back_chain, s390x.stack.align) == (0xA0, 0, 8)
    assert s390x.args.int_regs == ("r2", "r3", "r4", "r5", "r6")
    assert s390x.args.fp_regs == ("f0", "f2", "f4", "f6")
    assert {"r6", "r13", "f8", "f15"} <= set(s390x.callee_saved)
    assert found["sysv_amd64"].args.int_regs == ("rdi", "rsi", "rdx", "rcx", "r8", "r9")
    assert found["ms_x64"].args.int_regs == ("rcx", "rdx", "r8", "r9")
    assert {"rdi", "rsi", "xmm6", "xmm15"} <= set(found["ms_x64"].callee_saved)
    assert not {"rdi", "rsi"} & set(found["sysv_amd64"].callee_saved)
    assert found["mips_o32"].result_regs("big", 4) == ("v1", "v0")
    assert found["mips_o32"].result_regs("little", 4) == ("v0", "v1")
    assert found["i386_sysv"].result_regs("little", 4) == ("eax", "edx")
    assert found["aapcs64"].stack.align == found["riscv_lp64d"].stack.align == 0x10
    # ELFv2: r3-r10, f1-f13, v2-v13; the 32-byte frame header; the 288-byte
    # protected zone; the ninth argument doubleword after the header and the
    # 64-byte parameter save area.
    elfv2 = found["ppc64_elfv2"]
    assert elfv2.args.int_regs == tuple(f"r{i}" for i in range(3, 11))
    assert elfv2.args.fp_regs == tuple(f"f{i}" for i in range(1, 14))
    assert elfv2.args.vec_regs == tuple(f"v{i}" for i in range(2, 14))
    assert (elfv2.stack.link_area, elfv2.stack.red_zone, elfv2.args.stack_offset) == (
        0x20,
        0x120,
        0x60,
    )
    assert {"r14", "r31", "f14", "f31", "v20", "v31"} <= set(elfv2.callee_saved)
    assert not {"r2", "r12", "r13", "f13", "v19"} & set(elfv2.callee_saved)


def test_specs_name_a_convention_and_never_restate_it():
    for path in sorted(SPECS_DIR.glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        assert "call" not in data, path.name
        assert data["convention"] in EXPECTED, path.name


def test_the_contract_is_the_conventions():
    for item in spec_files():
        spec, conv = item.spec, item.spec.convention_info
        call = spec.call
        assert call.int_args == conv.args.int_regs
        assert call.fp_args == conv.args.fp_regs + conv.args.vec_regs
        assert call.callee_saved == conv.callee_saved
        assert call.shadow_space == conv.stack.home_area
        assert call.link_area == conv.stack.link_area
        assert call.stack_align == conv.stack.align
        assert call.fp_control == tuple(c.reg for c in conv.fp_control)
        assert call.return_reg == conv.result_regs(spec.endian, spec.pointer_size)[0]


def test_every_deviation_is_needed_and_named():
    """Each declared deviation is one the spec's resolver really makes: without
    the declaration the spec is refused."""
    for item in spec_files():
        for deviation in item.spec.deviations:
            assert deviation.field in DEVIATIONS
            text = item.path.read_text()
            block = text[text.index("deviations:") : text.index("\nresolver:")]
            kept = [
                chunk
                for chunk in block.split("\n  - field: ")[1:]
                if not chunk.startswith(deviation.field)
            ]
            rest = "deviations:\n  - field: " + "\n  - field: ".join(kept) if kept else ""
            with pytest.raises(AsmgenError, match=f"declare a `{deviation.field}` deviation"):
                parse_spec(text.replace(block, rest), item.path)


def test_a_spec_that_drops_the_home_area_is_refused_and_fails_verify(tree, capsys):
    spec = tree / "abi_specs" / "x86_64_win64.yaml"
    text = spec.read_text()
    spec.write_text(text.replace("  scratch: rax\n", "  scratch: rax\n  shadow_space: 0x0\n"))
    capsys.readouterr()
    for argv in (generate_args(tree), ["verify", "--build", *tree_options(tree)]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"{spec}:" in err[0]
        assert "resolver.shadow_space: reserves 0x0 bytes, but ms_x64 gives the callee" in err[0]
    # Loaded without the contract checks (as `asmgen review` does), the table
    # fails verify: unicorn sees the live data, wine the -O0 spill over it.
    item = SpecFile(spec, load_spec(spec, contract=False))
    (report,) = verify([subject_from_table(build(item, tree / "templates"))])
    home = report.outcomes["shadow_space"]
    assert home.outcome == "FAIL"
    assert {r.method: r.status for r in home.runs} == {"unicorn": "fail", "wine": "fail"}


def test_verify_reports_every_deviation(capsys):
    capsys.readouterr()
    assert main(["verify", "--no-compiled", "--format", "json", "X86_64_Win32_seed_initial"]) == 0
    abi = json.loads(capsys.readouterr().out)["abis"]["X86_64_Win32_seed_initial"]
    assert [d["field"] for d in abi["deviations"]] == ["home_area"]
    assert main(["verify", "--no-compiled", "Riscv64"]) == 0
    out = capsys.readouterr().out
    assert "Riscv64: deviates from its convention: stack_align:" in out
    assert "Riscv64: deviates from its convention: fp_args:" in out


def test_a_users_own_spec_folder_uses_the_shipped_conventions(tmp_path):
    source = (SPECS_DIR / "x86_64_win64.yaml").read_text()
    (tmp_path / "mine.yaml").write_text(source.replace("abi: X86_64_Win32", "abi: Mine"))
    spec = load_spec(tmp_path / "mine.yaml")
    assert spec.convention_info.path == CONVENTIONS / "ms_x64.yaml"
    # A convention next to the spec wins.
    (tmp_path / "conventions").mkdir()
    own = (CONVENTIONS / "ms_x64.yaml").read_text().replace("red_zone: 0x0", "red_zone: 0x8")
    (tmp_path / "conventions" / "ms_x64.yaml").write_text(own)
    spec = load_spec(tmp_path / "mine.yaml")
    assert spec.convention_info.path == (tmp_path / "conventions" / "ms_x64.yaml").resolve()
    assert spec.convention_info.stack.red_zone == 8


def test_generated_files_name_each_tables_convention():
    header = Path(SPECS_DIR.parent / "generated" / "orc_resolvers.h").read_text()
    assert "//   convention abi_specs/conventions/ms_x64.yaml" in header


def test_verify_emulation_only_runs_unicorn_and_the_static_check(capsys):
    """The seed's Win64 table: unicorn alone still finds its declared home-area
    violation; nothing ran on this CPU, under wine or qemu."""
    capsys.readouterr()
    args = ["verify", "--emulation-only", "--format", "json", "X86_64_Win32_seed_initial"]
    assert main(args) == 0
    abi = json.loads(capsys.readouterr().out)["abis"]["X86_64_Win32_seed_initial"]
    methods = {run["method"] for check in abi["checks"].values() for run in check["runs"]}
    ran = {
        run["method"]
        for check in abi["checks"].values()
        for run in check["runs"]
        if run["status"] != "n/a"
    }
    assert ran <= {"unicorn", "static"} <= methods | {"static"}
    assert abi["checks"]["shadow_space"]["outcome"] == "declared"
    assert abi["checks"]["native"]["status"] == "n/a"
