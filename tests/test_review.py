"""`asmgen review`: aligned instruction diffs between tables.

The SysV -> Win64 example is checked twice: from the two specs (built by the
generator) and from two tables.json files made from LLVM's own bytes in the
fixtures, so the expected diff does not come from the generator under test.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from asmgen.build.pipeline import build_all
from asmgen.cli import main
from asmgen.emit.json_tables import emit_json
from asmgen.resources import SPECS_DIR
from asmgen.review.diff import review
from asmgen.review.format import print_terminal
from asmgen.review.sources import resolve
from asmgen.spec.files import spec_files

ROOT = Path(__file__).resolve().parent.parent

# What a reviewer must see for SysV -> Win64 (AT&T, as the spec's syntax says):
# three instructions change and two are inserted, in four changes.
EXPECTED_EDITS = [
    "-0x26        movabsq $0, %rdi    ; patch ReentryCtxAddr",
    "+      0x26  movabsq $0, %rcx    ; patch ReentryCtxAddr",
    "-0x30        movq 8(%rbp), %rsi",
    "-0x34        subq $6, %rsi",
    "+      0x30  movq 8(%rbp), %rdx",
    "+      0x34  subq $6, %rdx",
    "+      0x42  subq $0x20, %rsp",
    "+      0x48  addq $0x20, %rsp",
]


def run_json(capsys, *argv: str) -> dict:
    assert main(["review", *argv, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def edits(abi: dict) -> list[str]:
    return [line for line in abi["diff"] if line[:1] in "+-"]


def check_sysv_to_win64(abi: dict) -> None:
    assert edits(abi) == EXPECTED_EDITS
    assert abi["counts"] == {"changes": 4, "changed": 3, "inserted": 2, "deleted": 0}
    assert [(c["kind"], c["rewrite"]) for c in abi["changes"]] == [
        ("changed", [["%rdi", "%rcx"]]),
        ("changed", [["%rsi", "%rdx"]]),
        ("inserted", []),
        ("inserted", []),
    ]
    assert abi["size"] == {"old": 0x6C, "new": 0x74}
    assert abi["patches"] == {
        "ReentryCtxAddr": {"old": 0x28, "new": 0x28},
        "ReentryFnAddr": {"old": 0x3A, "new": 0x3A},
    }
    # Unchanged instructions: 18 in place, callq moved by 4, the 19 after it by 8.
    shifts = [line["shift"] for line in abi["lines"] if line["tag"] == "equal"]
    assert shifts == [0] * 18 + [0] + [4] + [8] * 19
    assert "@@ 0x48..0x6b -> 0x50..0x73, shifted +0x8: 18 instructions @@" in abi["diff"]
    assert " 0x42  0x46  callq *%rax         ; +0x4" in abi["diff"]


def test_sysv_to_win64_from_specs(capsys):
    doc = run_json(
        capsys, str(SPECS_DIR / "x86_64_sysv.yaml"), str(SPECS_DIR / "x86_64_win64.yaml")
    )
    (abi,) = doc["abis"]
    assert (abi["old_abi"], abi["new_abi"], abi["status"]) == (
        "X86_64_SysV",
        "X86_64_Win32",
        "changed",
    )
    check_sysv_to_win64(abi)
    # Derived from the pushes and pops in the code: the same fifteen registers.
    regs = ["rbp", "rax", "rbx", "rcx", "rdx", "rsi", "rdi", *(f"r{i}" for i in range(8, 16))]
    assert abi["saved"] == {"old": regs, "new": regs}
    assert abi["restored"]["new"] == regs[::-1]
    assert abi["frame"]["old"]["shadow"] == 0 and abi["frame"]["new"]["shadow"] == 0x20


def _llvm_tables_json(path: Path, llvm_tables: dict, name: str) -> Path:
    """A tables.json holding one of LLVM's own tables (bytes and offsets from the fixtures)."""
    facts = llvm_tables[name]
    patches = {
        key.removesuffix("Offset"): {"offset": offset, "size": 8, "kind": "abs64"}
        for key, offset in facts["offsets"].items()
    }
    record = {
        "arch": "x86_64",
        "endian": "little",
        "syntax": "att",
        "size": facts["size"],
        "hex": facts["hex"],
        "patches": patches,
    }
    path.write_text(json.dumps({"abis": {name: record}}))
    return path


def test_sysv_to_win64_from_llvm_tables_json(tmp_path, capsys, llvm_tables):
    old = _llvm_tables_json(tmp_path / "sysv.json", llvm_tables, "X86_64_SysV")
    new = _llvm_tables_json(tmp_path / "win64.json", llvm_tables, "X86_64_Win32")
    (abi,) = run_json(capsys, str(old), str(new))["abis"]
    check_sysv_to_win64(abi)


def test_markdown_and_terminal(capsys):
    sysv, win64 = str(SPECS_DIR / "x86_64_sysv.yaml"), str(SPECS_DIR / "x86_64_win64.yaml")
    assert main(["review", sysv, win64, "--format", "markdown"]) == 0
    text = capsys.readouterr().out
    assert (
        "| X86_64_SysV -> X86_64_Win32 | changed | 0x6c -> 0x74 | "
        "4 changes (3 changed, 2 inserted instructions) | unchanged | unchanged | "
        "size_at_call 0x290 -> 0x2b0, shadow 0x0 -> 0x20 |"
    ) in text
    fence = text.split("```diff\n", 1)[1].split("```", 1)[0].splitlines()
    assert [line for line in fence if line[:1] in "+-"] == EXPECTED_EDITS

    result = review(
        resolve(sysv, None, ROOT / "templates"), resolve(win64, None, ROOT / "templates")
    )
    plain, tty = io.StringIO(), io.StringIO()
    print_terminal(result, Console(file=plain, highlight=False, soft_wrap=True))
    print_terminal(
        result, Console(file=tty, force_terminal=True, color_system="standard", soft_wrap=True)
    )
    assert "\x1b[" not in plain.getvalue()
    assert "\x1b[32m+      0x42  subq $0x20, %rsp" in tty.getvalue()
    assert "\x1b[31m-0x26        movabsq $0, %rdi" in tty.getvalue()


# --- git revisions ----------------------------------------------------------------------------


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
        check=True,
        capture_output=True,
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    for name in ("abi_specs", "templates", "generated"):
        shutil.copytree(ROOT / name, tmp_path / name)
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "base")
    return tmp_path


def _widen_shadow(repo: Path) -> None:
    # The resolver reserves more home area than ms_x64's 32 bytes.
    spec = repo / "abi_specs" / "x86_64_win64.yaml"
    text = spec.read_text()
    assert "  scratch: rax\n" in text
    spec.write_text(text.replace("  scratch: rax\n", "  scratch: rax\n  shadow_space: 0x40\n"))


def _check_shadow_review(doc: dict) -> None:
    by_name = {abi["new_abi"]: abi for abi in doc["abis"]}
    assert {n for n, a in by_name.items() if a["status"] == "changed"} == {"X86_64_Win32"}
    abi = by_name["X86_64_Win32"]
    assert edits(abi) == [
        "-0x42        subq $0x20, %rsp",
        "+      0x42  subq $0x40, %rsp",
        "-0x48        addq $0x20, %rsp",
        "+      0x48  addq $0x40, %rsp",
    ]
    assert abi["counts"] == {"changes": 2, "changed": 2, "inserted": 0, "deleted": 0}
    assert abi["frame"]["old"]["shadow"] == 0x20 and abi["frame"]["new"]["shadow"] == 0x40
    assert abi["size"] == {"old": 0x74, "new": 0x74}


def test_git_head_against_working_tree(repo, capsys):
    # Default OLD is HEAD's committed tables.json; NEW is the working tree built fresh,
    # so an uncommitted spec edit is reviewed before anything is regenerated.
    _widen_shadow(repo)
    _check_shadow_review(run_json(capsys, "--repo", str(repo)))


def test_git_two_revisions(repo, capsys):
    _widen_shadow(repo)
    # Only tables.json matters to a revision's review; skip the slower C++ and Python.
    tables = build_all(spec_files(repo / "abi_specs"), repo / "templates")
    (repo / "generated" / "tables.json").write_text(emit_json(tables))
    _git(repo, "commit", "-qam", "wider shadow")
    capsys.readouterr()
    _check_shadow_review(run_json(capsys, "HEAD~1", "HEAD", "--repo", str(repo)))
    # Nothing uncommitted: the working tree matches HEAD.
    doc = run_json(capsys, "--repo", str(repo))
    assert {abi["status"] for abi in doc["abis"]} == {"unchanged"}
    assert main(["review", "HEAD", "HEAD", "--repo", str(repo), "--exit-code"]) == 0
    assert main(["review", "HEAD~1", "HEAD", "--repo", str(repo), "--exit-code"]) == 1


def test_git_verify_reads_the_revisions_specs(repo, capsys):
    # The old side's contract comes from HEAD's own specs (read with git), the new
    # side's from the working tree: a wider home area keeps every check passing.
    _widen_shadow(repo)
    doc = run_json(capsys, "--repo", str(repo), "--verify", "--abi", "X86_64_Win32")
    (abi,) = doc["abis"]
    assert abi["verify"]["old"] == abi["verify"]["new"]
    assert abi["verify"]["new"]["shadow_space"] == "pass"
    assert "verify: unchanged" in abi["summary"][-1]


def test_bad_revision_is_one_error_line(repo, capsys):
    assert main(["review", "no-such-rev", "--repo", str(repo)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error: 'no-such-rev' is not a file" in err


# --- a synthetic change for each arch ---------------------------------------------------------


def _one_spec_per_arch() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for item in spec_files(SPECS_DIR):
        found.setdefault(item.spec.arch, item.path)
    return found


ARCH_SPECS = _one_spec_per_arch()


def _edited(tmp_path: Path, path: Path, edit) -> Path:
    data = yaml.safe_load(path.read_text())
    edit(data)
    out = tmp_path / f"edited_{path.name}"
    out.write_text(yaml.safe_dump(data))
    return out


def _bare(name: str) -> str:
    return name.lstrip("%$#")


def test_spec_per_arch_found():
    assert "x86_64" in ARCH_SPECS


@pytest.mark.parametrize("arch", sorted(ARCH_SPECS))
def test_synthetic_swapped_saves(tmp_path, capsys, arch):
    """Swapping two saved registers keeps the size and every patch point.

    (The trampoline's call size is no longer a free edit: the build checks it
    against the trampoline template.)
    """
    path = ARCH_SPECS[arch]
    first, second = yaml.safe_load(path.read_text())["resolver"]["saves"][-2:]

    def edit(data):
        saves = data["resolver"]["saves"]
        saves[-2], saves[-1] = saves[-1], saves[-2]

    (abi,) = run_json(capsys, str(path), str(_edited(tmp_path, path, edit)))["abis"]
    assert abi["changes"], "the edit must show"
    # A swap reads as rewrites in place, or as an instruction moved (deleted here,
    # inserted there); never as code added or lost.
    counts = abi["counts"]
    assert counts["inserted"] == counts["deleted"]
    swapped = {_bare(first), _bare(second)}
    for change in abi["changes"]:
        if change["kind"] == "changed":
            rewritten = {_bare(token) for pair in change["rewrite"] for token in pair}
            assert rewritten <= swapped, change
    assert abi["size"]["old"] == abi["size"]["new"]
    assert all(p["old"] == p["new"] for p in abi["patches"].values())


@pytest.mark.parametrize("arch", sorted(ARCH_SPECS))
def test_synthetic_dropped_saves(tmp_path, capsys, arch):
    """Dropping two registers from resolver.saves shows in the code's stores and loads.

    Two, because some arches save registers in pairs (AArch64 `stp`).
    """
    path = ARCH_SPECS[arch]
    dropped = yaml.safe_load(path.read_text())["resolver"]["saves"][-2:]

    def edit(data):
        del data["resolver"]["saves"][-2:]

    (abi,) = run_json(capsys, str(path), str(_edited(tmp_path, path, edit)))["abis"]
    want = sorted(map(_bare, dropped))
    gone = {
        what: sorted(_bare(r) for r in abi[what]["old"] if r not in abi[what]["new"])
        for what in ("saved", "restored")
    }
    assert gone["restored"] == want
    # A stack-argument ABI (i386) still pushes a dropped register as an argument.
    assert gone["saved"] and set(gone["saved"]) <= set(want)
    for what in ("saved", "restored"):
        assert not [r for r in abi[what]["new"] if r not in abi[what]["old"]], what
    assert abi["size"]["new"] < abi["size"]["old"]
    assert abi["counts"]["deleted"] + abi["counts"]["changed"] >= 2
    assert abi["status"] == "changed"


def test_runtime_written_word_is_reviewed(capsys):
    """MIPS32's two byte orders share one table except the word the runtime writes
    for the landing move: the review shows that instruction, not its zero placeholder."""
    le, be = str(SPECS_DIR / "mips32_le.yaml"), str(SPECS_DIR / "mips32_be.yaml")
    (abi,) = run_json(capsys, le, be, "-U", "0")["abis"]
    assert edits(abi) == [
        "-0x0f8         move $t9, $v0          ; patch MoveLandingAddr; written at run time",
        "+       0x0f8  move $t9, $v1          ; patch MoveLandingAddr; written at run time",
    ]
    assert abi["counts"] == {"changes": 1, "changed": 1, "inserted": 0, "deleted": 0}
    assert abi["fields"]["endian"] == {"old": "little", "new": "big"}
    assert {line["shift"] for line in abi["lines"]} == {0}


def test_verify_verdict_changes(capsys):
    """Dropping the home area (the seed's Win64 table) turns two verify checks into
    the violations its spec declares."""
    win64, seed = str(SPECS_DIR / "x86_64_win64.yaml"), str(SPECS_DIR / "x86_64_win64_seed.yaml")
    (abi,) = run_json(capsys, win64, seed, "--verify")["abis"]
    old, new = abi["verify"]["old"], abi["verify"]["new"]
    # Both lose the YMM/ZMM upper halves (fxsave64) and return where no call
    # pushed (LLVM's design, refused by CET shadow stacks), and declare it alike.
    assert {c for c, v in old.items() if v not in ("pass", "n/a")} <= {
        "vector_width",
        "shadow_stack",
    }
    assert old["shadow_space"] == "pass"
    assert {c: v for c, v in new.items() if v != old[c]} == {
        "shadow_space": "fail (declared)",
        "fp_control": "fail (declared)",
    }
    line = "verify: shadow_space pass -> fail (declared), fp_control pass -> fail (declared)"
    assert line in abi["summary"]


def test_identical_inputs_are_unchanged(capsys):
    path = str(SPECS_DIR / "x86_64_sysv.yaml")
    (abi,) = run_json(capsys, path, path)["abis"]
    assert abi["status"] == "unchanged" and abi["changes"] == []
    assert all(line["tag"] == "equal" and line["shift"] == 0 for line in abi["lines"])


def _x86_tables_json(path: Path, source: str) -> Path:
    import keystone

    code = bytes(keystone.Ks(keystone.KS_ARCH_X86, keystone.KS_MODE_64).asm(source, 0)[0])
    record = {"arch": "x86_64", "endian": "little", "size": len(code), "hex": code.hex()}
    path.write_text(json.dumps({"abis": {"T": {**record, "patches": {}}}}))
    return path


def test_moved_branch_targets_are_not_changes(tmp_path, capsys):
    """A jump and a RIP-relative load whose targets moved with the code are context."""
    body = "jmp done; mov rax, qword ptr [rip + slot]; nop; {extra} done: ret; slot: int3"
    old = _x86_tables_json(tmp_path / "old.json", body.format(extra=""))
    new = _x86_tables_json(tmp_path / "new.json", body.format(extra="pause;"))
    (abi,) = run_json(capsys, str(old), str(new), "-U", "3")["abis"]
    assert [line["tag"] for line in abi["lines"]] == [
        "retargeted",
        "retargeted",
        "equal",
        "inserted",
        "equal",
        "equal",
    ]
    assert abi["counts"] == {"changes": 1, "changed": 0, "inserted": 1, "deleted": 0}
    assert [line[:1] for line in abi["diff"]] == [" ", " ", " ", "+", " ", " "]
    assert abi["diff"][0].startswith(" 0x00  0x00  jmp 0xc ")
    assert abi["diff"][0].endswith("; target moved, was `jmp 0xa`")


def test_docs_example_is_current(capsys, monkeypatch):
    """docs/review.md shows the SysV -> Win64 review exactly as the command prints it."""
    monkeypatch.chdir(ROOT)
    sysv, win64 = "abi_specs/x86_64_sysv.yaml", "abi_specs/x86_64_win64.yaml"
    assert main(["review", sysv, win64, "--format", "markdown"]) == 0
    shown = "".join(f"    {line}".rstrip() + "\n" for line in capsys.readouterr().out.splitlines())
    assert shown in (ROOT / "docs" / "review.md").read_text()


def test_added_and_removed_abis(tmp_path, capsys, llvm_tables):
    both = {}
    for name in ("X86_64_SysV", "X86_64_Win32"):
        path = _llvm_tables_json(tmp_path / f"{name}.json", llvm_tables, name)
        both.update(json.loads(path.read_text())["abis"])
    (tmp_path / "old.json").write_text(json.dumps({"abis": both}))
    sysv = tmp_path / "X86_64_SysV.json"
    doc = run_json(capsys, str(tmp_path / "old.json"), str(sysv))
    assert [(a["old_abi"], a["new_abi"], a["status"]) for a in doc["abis"]] == [
        ("X86_64_SysV", "X86_64_SysV", "unchanged"),
        ("X86_64_Win32", None, "removed"),
    ]
    assert main(["review", str(sysv), str(tmp_path / "old.json"), "--format", "markdown"]) == 0
    assert "| X86_64_Win32 | added | 0x74 | - | - | - | - |" in capsys.readouterr().out
