"""`asmgen review` on LLVM's sources: OrcABISupport.h/.cpp read, compiled and verified.

The reading is checked against facts and against LLVM itself: the tables read
from the fixture tree (tests/fixtures/llvm_tree, LLVM 19.1.x-shaped) against
LLVM's byte values and offsets (tests/fixtures/llvm_tables.json), and what the
tree's writers write (as the review reads and compiles them) against Debian's
libLLVM-19 writers.  The seed thread is the test of the review itself: its
first Windows table added as a new class must show three changed instructions
and a missing home area whose cause is the saved FCW and MXCSR; the r268845
fix must review as clean; hand edits that break an LLVM table are caught by
name.  The review patches are tests/fixtures/review/*.patch.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
from pathlib import Path

import llvm_oracle as oracle
import pytest
from test_review import EXPECTED_EDITS

from asmgen.cli import main
from asmgen.patch import orc_source as orc
from asmgen.review.cli import exit_status
from asmgen.review.diff import review
from asmgen.review.format import to_json, to_markdown
from asmgen.review.llvm_inputs import Tree, from_checkout
from asmgen.review.llvm_side import read_side, swap_words
from asmgen.review.llvm_tables import Conventions, infer_convention, read_tree
from asmgen.review.sources import llvm_pair

ROOT = Path(__file__).resolve().parent.parent
TREE = ROOT / "tests" / "fixtures" / "llvm_tree"
PATCHES = ROOT / "tests" / "fixtures" / "review"

# LLVM's names in llvm_tables.json -> the classes of the fixture tree.
FACT_CLASSES = {
    "AArch64": "OrcAArch64",
    "X86_64_SysV": "OrcX86_64_SysV",
    "X86_64_Win32": "OrcX86_64_Win32",
    "I386": "OrcI386",
    "Riscv64": "OrcRiscv64",
    "LoongArch64": "OrcLoongArch64",
}
# The seed's first table against SysV's: the argument registers, nothing else
# (SysV -> Win64's edits without the home area's two insertions).
SEED_EDITS = EXPECTED_EDITS[:6]
FIX_INSERTS = ["+      0x42  subq $0x20, %rsp", "+      0x48  addq $0x20, %rsp"]


def run(capsys, *argv: str) -> tuple[int, dict]:
    status = main(["review", *argv, "--format", "json"])
    captured = capsys.readouterr()
    return status, json.loads(captured.out) if captured.out else {}


def by_name(doc: dict) -> dict[str, dict]:
    return {abi["new_abi"] or abi["old_abi"]: abi for abi in doc["abis"]}


def edits(abi: dict) -> list[str]:
    return [line for line in abi["diff"] if line[:1] in "+-"]


@pytest.fixture(scope="module")
def before_r268845(tmp_path_factory) -> Path:
    """The fixture tree as LLVM was before r268845: no Windows class."""
    root = tmp_path_factory.mktemp("before") / "llvm-project"
    for rel in (orc.HEADER_PATH, orc.CPP_PATH):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(TREE / rel, root / rel)
    done = subprocess.run(
        ["git", "apply", str(PATCHES / "before_r268845.patch")],
        cwd=root,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    return root


# --- reading LLVM's sources ---------------------------------------------------------------


@pytest.fixture(scope="module")
def fixture_classes():
    return read_tree(TREE, Conventions())


def test_tables_read_from_the_source_are_llvms(fixture_classes, llvm_tables, llvm19_tables):
    for fact, name in FACT_CLASSES.items():
        facts, record = llvm_tables[fact], fixture_classes[name].record
        assert record["hex"] == facts["hex"], name
        assert record["element"] == facts["element"]
        offsets = {f"{p}Offset": point["offset"] for p, point in record["patches"].items()}
        assert offsets == facts["offsets"], name
        # The writer as LLVM runs it: the example LLVM's code writes for two addresses.
        example = facts["example"]
        fn, ctx = int(example["ReentryFnAddr"], 16), int(example["ReentryCtxAddr"], 16)
        assert fixture_classes[name].evaluate(0, fn, ctx).hex() == example["hex"], name
    mips = llvm19_tables["Mips32"]
    le, be = fixture_classes["OrcMips32Le"].record, fixture_classes["OrcMips32Be"].record
    assert le["hex"] == mips["hex"] and (le["endian"], be["endian"]) == ("little", "big")
    assert be["hex"] == swap_words(bytes.fromhex(mips["hex"]), 4).hex()
    mips64 = llvm19_tables["Mips64"]
    assert fixture_classes["OrcMips64"].record["hex"] == mips64["hex"]
    assert fixture_classes["OrcMips64"].record["patches"]["ReentryFnAddr"]["offset"] == 140


def test_mips_runtime_words_and_the_byte_order_switch(fixture_classes):
    """The landing move is written whole at run time, chosen by isBigEndian, which
    each class's forwarder fixes: Mips32Le and Mips32Be are reviewed separately."""
    for name, word in (("OrcMips32Le", 0x0040C825), ("OrcMips32Be", 0x0060C825)):
        patches = fixture_classes[name].record["patches"]
        (landing,) = patches["Offsett"]["fields"]
        assert (landing["offset"], landing["kind"], landing["base"]) == (0xF8, "runtime_word", word)
        assert landing["whole_word"] and landing["bits"] == 0
        kinds = [(f["offset"], f["kind"], f["base"]) for f in patches["ReentryCtxAddr"]["fields"]]
        assert kinds == [(0x6C, "hi16", 0x3C040000), (0x70, "lo16", 0x24840000)]
    chain = fixture_classes["OrcMips64"].record["patches"]["ReentryFnAddr"]
    assert chain["kind"] == "highest16+higher16+hi16+lo16"
    # The dsll words between the steps are written whole, with no address bits.
    assert [f["kind"] for f in chain["fields"]].count("runtime_word") == 2


def test_header_constants_checked_against_the_code(fixture_classes):
    """LLVM 19's own inconsistencies, found without running anything but the writers."""
    found = {n: [f.text for f in c.findings] for n, c in fixture_classes.items()}
    assert found["OrcI386"] == [
        "ResolverCodeSize is 0x4a, but OrcI386::writeResolverCode's table holds 0x49 bytes"
    ]
    assert found["OrcX86_64_SysV"] == [] and found["OrcX86_64_Win32"] == []


@pytest.fixture(scope="module")
def fixture_side():
    return read_side(from_checkout(TREE), Conventions())


def test_the_trees_writers_against_libllvm(fixture_side, request):
    """What the review compiles from the tree writes what Debian's libLLVM-19 writes:
    every resolver (through the compiled driver and the Python reading alike), two
    trampolines and two stubs of every class."""
    # The driver test_llvm19_oracle builds, kept between runs under its inputs' hash.
    llvm = oracle.llvm_driver(request.config.cache.mkdir("llvm19-drivers"))
    assert fixture_side.driver is not None and not fixture_side.notes
    requests, expected = [], []
    for name, cls in fixture_side.classes.items():
        abi = name.removeprefix("Orc")
        size = cls.record["size"]
        fix = fixture_side.order_fix(name)
        for kind, a, b, c, n in (
            ("R", 0, 0x7EC7_1234_5678, 0x1122_3344_5566, size + 64),
            ("T", 0x10000, 0x8000, 2, 2 * cls.record["constants"]["TrampolineSize"] + 64),
            ("S", 0x20000, 0x21000, 2, 2 * cls.record["constants"]["StubSize"] + 64),
        ):
            requests.append(f"{kind} {abi} {a:x} {b:x} {c:x} {n:x}\n")
            if kind == "R":
                mine = [fixture_side.resolver(name, a, b, c), cls.evaluate(a, b, c)]
            else:
                mine = [fixture_side.block(kind, name, a, b, c)]
            expected.append((name, kind, n, fix, mine))
    for answer, (name, kind, _, fix, mine) in zip(
        oracle.ask(llvm, requests), expected, strict=True
    ):
        assert not answer.endswith("overflow"), (name, kind)
        # Up to the last byte LLVM's writer wrote; a byte it skipped reads as 0.
        pairs = [answer[i : i + 2] for i in range(0, len(answer), 2)]
        written = max(i + 1 for i, p in enumerate(pairs) if p != "..")
        theirs = fix(bytes.fromhex("".join(pairs[:written]).replace("..", "00")))
        for data in mine:
            assert data == theirs, (name, kind)
    assert set(fixture_side.units) == {
        "OrcAArch64::writeTrampolines",
        "OrcAArch64::writeIndirectStubsBlock",
        "OrcX86_64_Base::writeTrampolines",
        "OrcX86_64_Base::writeIndirectStubsBlock",
        "OrcI386::writeTrampolines",
        "OrcI386::writeIndirectStubsBlock",
        "OrcMips32_Base::writeTrampolines",
        "OrcMips32_Base::writeIndirectStubsBlock",
        "OrcMips64::writeTrampolines",
        "OrcMips64::writeIndirectStubsBlock",
        "OrcRiscv64::writeTrampolines",
        "OrcRiscv64::writeIndirectStubsBlock",
        "OrcLoongArch64::writeTrampolines",
        "OrcLoongArch64::writeIndirectStubsBlock",
    }


def test_unit_sizes_and_reach_checked_by_running_the_writers(fixture_side):
    """LLVM 19's MIPS32 stubs are 16 bytes with StubSize 8; AArch64's literal-load
    stubs reach +-1 MiB while StubToPointerMaxDisplacement says 128 MiB."""
    found = {n: {f.key: f.text for f in c.findings} for n, c in fixture_side.classes.items()}
    for name in ("OrcMips32Le", "OrcMips32Be"):
        assert found[name]["size:StubSize"] == (
            "StubSize is 0x8, but OrcMips32_Base::writeIndirectStubsBlock writes 0x20 bytes "
            "for 2 stubs (0x10 a unit)"
        )
    reach = found["OrcAArch64"]["reach:StubToPointerMaxDisplacement"]
    assert reach.startswith("StubToPointerMaxDisplacement is 0x8000000, but a stub 0x7fff000")
    assert reach.endswith("its load does not reach that far")
    others = [n for n, f in found.items() if "reach:StubToPointerMaxDisplacement" in f]
    assert others == ["OrcAArch64"]


def test_reach_check_passes_asmgens_own_stubs():
    """The reach check itself, on stubs known to reach: asmgen's generated ones."""
    from asmgen.build.pipeline import build
    from asmgen.resources import TEMPLATES_DIR
    from asmgen.review.llvm_reach import stub_reach
    from asmgen.spec.files import spec_files

    for item in spec_files():
        table = build(item, TEMPLATES_DIR)
        assert stub_reach(table, item.spec) == "", item.spec.abi


def test_class_names_that_name_a_convention():
    assert infer_convention("OrcX86_64_Win64") == ("ms_x64", ("X86_64", "Win64"))
    assert infer_convention("OrcX86_64_SysV_Fast")[0] == "sysv_amd64"
    assert infer_convention("OrcMips32Le")[0] == "mips_o32"
    assert infer_convention("OrcWindowsTest") is None
    assert infer_convention("OrcX86_64_Win32_SysV") is None  # names two: not certain


# --- the seed thread ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seed_review(before_r268845):
    """The thread's first attempt, added as LLVM's OrcX86_64_Win32, reviewed once
    (from the folder above the checkout, as docs/review.md runs it)."""
    with contextlib.chdir(before_r268845.parent):
        old, new = llvm_pair(
            before_r268845.name, str(PATCHES / "seed_initial.patch"), None, Conventions(), True
        )
        return review(old, new, abis=("X86_64_Win32",))


def test_seed_shows_the_three_changed_instructions(seed_review):
    doc = json.loads(to_json(seed_review))
    win32 = by_name(doc)["OrcX86_64_Win32"]
    assert (win32["status"], win32["added"], win32["old_abi"]) == ("added", True, "OrcX86_64_SysV")
    assert edits(win32) == SEED_EDITS
    assert win32["counts"] == {"changes": 2, "changed": 3, "inserted": 0, "deleted": 0}
    assert win32["fields"]["convention"] == {"old": "sysv_amd64", "new": "ms_x64"}


def test_seed_misses_the_home_area_and_loses_fcw_and_mxcsr(seed_review):
    (win32,) = [a for a in seed_review.abis if a.new_abi == "OrcX86_64_Win32"]
    old, new = win32.verify
    assert (old["shadow_space"], new["shadow_space"]) == ("n/a", "FAIL")
    assert (old["fp_control"], new["fp_control"]) == ("pass", "FAIL")
    assert win32.problems == ["verify fails: shadow_space (home area), fp_control (FP state)"]
    cause = win32.verdicts[1].causes["shadow_space"]
    assert cause.startswith("no home area: at the call, the 0x20 bytes above sp that ms_x64")
    assert "fxsave64 area bytes 0x0-0x1f" in cause
    assert "saved by `fxsave64 (%rsp)` at resolver+0x21" in cause
    assert "read back after the call by `fxrstor64 (%rsp)` at resolver+0x48" in cause
    assert cause.endswith(
        "A callee that spills its register arguments (rcx, rdx, r8, r9) there overwrites "
        "the saved FCW and MXCSR"
    )
    assert win32.verdicts[1].causes["fp_control"].startswith("the saved FCW and MXCSR lie")
    # The compiled run (mingw code under wine) names the spills: r9 over MXCSR.
    wine = " ".join(win32.verdicts[1].details["shadow_space"])
    assert "r9 at sp+0x18 over fxsave64 area bytes 0x18-0x1f: MXCSR (bytes 0x18-0x1b)" in wine
    assert "class name" not in win32.verdicts[1].about
    assert win32.verdicts[1].about.startswith("verified against ms_x64 (asmgen's spec")


def test_seed_review_as_a_pull_request_comment(seed_review):
    text = to_markdown(seed_review)
    assert "**Verdict: 1 problem in NEW**" in text
    assert (
        "- OrcX86_64_Win32: verify fails: shadow_space (home area), fp_control (FP state)" in text
    )
    assert "| OrcX86_64_Win32 | added | 0x6c | 2 changes (3 changed instructions) |" in text
    fence = text.split("```diff\n", 1)[1].split("```", 1)[0].splitlines()
    assert [line for line in fence if line[:1] in "+-"] == SEED_EDITS
    assert "  - shadow_space (home area) FAIL: no home area" in text


def test_seed_exit_status(seed_review):
    assert exit_status(seed_review) == 1
    assert json.loads(to_json(seed_review))["verdict"] == "1 problem in NEW"


def test_r268845_reviews_as_clean(before_r268845, capsys):
    status, doc = run(
        capsys, str(before_r268845), str(PATCHES / "r268845.patch"), "--abi", "X86_64_Win32"
    )
    assert status == 0 and doc["verdict"] == "clean (NEW fails nothing that OLD passes)"
    win32 = by_name(doc)["OrcX86_64_Win32"]
    assert edits(win32)[: len(SEED_EDITS)] == SEED_EDITS
    assert edits(win32)[len(SEED_EDITS) :] == FIX_INSERTS
    assert win32["verify"]["new"]["shadow_space"] == "pass"
    assert win32["verify"]["new"]["fp_control"] == "pass"
    # What still fails, fails in the table it came from too.
    failing = [c for c, o in win32["verify"]["new"].items() if o == "FAIL"]
    assert all(win32["verify"]["old"][c] == "FAIL" for c in failing)
    assert win32["problems"] == []


def test_from_the_seed_to_the_fix(before_r268845, tmp_path, capsys):
    """Two checkouts: the seed's class, then r268845's."""
    seed = tmp_path / "seed"
    shutil.copytree(before_r268845, seed)
    subprocess.run(["git", "apply", str(PATCHES / "seed_initial.patch")], cwd=seed, check=True)
    status, doc = run(capsys, str(seed), str(TREE), "--abi", "X86_64_Win32")
    win32 = by_name(doc)["OrcX86_64_Win32"]
    assert status == 0 and win32["status"] == "changed" and edits(win32) == FIX_INSERTS
    moved = {c: (win32["verify"]["old"][c], o) for c, o in win32["verify"]["new"].items()}
    assert moved["shadow_space"] == ("FAIL", "pass") and moved["fp_control"] == ("FAIL", "pass")


def test_a_class_asmgen_has_no_spec_for(before_r268845, tmp_path, capsys):
    """Named OrcX86_64_Win64, the seed's class is verified against the convention
    its name names, and the review says so; a name that names none needs
    --convention."""
    text = (PATCHES / "seed_initial.patch").read_text()
    win64 = tmp_path / "win64.patch"
    win64.write_text(text.replace("OrcX86_64_Win32", "OrcX86_64_Win64"))
    status, doc = run(capsys, str(before_r268845), str(win64), "--abi", "X86_64_Win64")
    abi = by_name(doc)["OrcX86_64_Win64"]
    about = abi["verify_detail"]["new"]["about"]
    assert about.startswith(
        "no asmgen spec; verified against ms_x64 (inferred from the class name: X86_64, Win64)"
    )
    assert status == 1 and abi["verify"]["new"]["shadow_space"] == "FAIL"

    unnamed = tmp_path / "unnamed.patch"
    unnamed.write_text(text.replace("OrcX86_64_Win32", "OrcWindowsTest"))
    assert main(["review", str(before_r268845), str(unnamed)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "OrcWindowsTest: asmgen has no spec for this class" in err
    assert "--convention OrcWindowsTest=<convention>" in err
    status, doc = run(
        capsys,
        str(before_r268845),
        str(unnamed),
        "--convention",
        "OrcWindowsTest=ms_x64",
        "--abi",
        "OrcWindowsTest",
        "--no-verify",
        "--no-compile",
    )
    abi = by_name(doc)["OrcWindowsTest"]
    assert status == 0 and edits(abi) == SEED_EDITS


def test_the_projects_specs_and_conventions_serve_a_review(before_r268845, tmp_path, capsys):
    """The conventions a review of LLVM's sources verifies with are the
    project's (found from the current folder, as for every command): one only
    the project has is known inside it and unknown elsewhere."""
    project = tmp_path / "project"
    shutil.copytree(ROOT / "abi_specs", project / "abi_specs")
    own = (ROOT / "abi_specs" / "conventions" / "ms_x64.yaml").read_text()
    own = own.replace("convention: ms_x64", "convention: project_x64")
    (project / "abi_specs" / "conventions" / "project_x64.yaml").write_text(own)
    unnamed = tmp_path / "unnamed.patch"
    text = (PATCHES / "seed_initial.patch").read_text()
    unnamed.write_text(text.replace("OrcX86_64_Win32", "OrcWindowsTest"))
    argv = [str(before_r268845), str(unnamed), "--convention", "OrcWindowsTest=project_x64"]
    argv += ["--abi", "OrcWindowsTest", "--no-verify", "--no-compile"]
    with contextlib.chdir(project):
        status, doc = run(capsys, *argv)
    abi = by_name(doc)["OrcWindowsTest"]
    assert status == 0 and abi["fields"]["convention"]["new"] == "project_x64"
    with contextlib.chdir(tmp_path):
        assert main(["review", *argv]) == 2
    assert "--convention: no convention 'project_x64'" in capsys.readouterr().err


# --- hand edits that break an LLVM table ------------------------------------------------------


def test_a_dropped_push_is_caught_by_name(capsys):
    status, doc = run(
        capsys, str(TREE), str(PATCHES / "dropped_push.patch"), "--abi", "X86_64_SysV"
    )
    sysv = by_name(doc)["OrcX86_64_SysV"]
    assert status == 1
    assert edits(sysv) == ["-0x05        pushq %rbx"]
    assert "rbx" not in sysv["saved"]["new"] and "rbx" in sysv["restored"]["new"]
    assert sysv["stale"] == [
        "rbx is no longer saved but still restored: its restore loads another slot"
    ]
    assert sysv["patches"]["ReentryFnAddr"] == {"old": 0x3A, "new": 0x39}
    # Running it: one slot short, fxsave64's area is no longer 16-byte aligned.
    assert sysv["verify"]["old"]["callee_saved"] == "pass"
    assert sysv["verify"]["new"]["callee_saved"] == "FAIL"
    assert "fxsave64 (%rsp)" in sysv["verify_detail"]["new"]["details"]["ctx_arg"][0]


def test_a_stale_offset_constant_is_caught_by_name(capsys):
    status, doc = run(
        capsys, str(TREE), str(PATCHES / "stale_offset.patch"), "--abi", "X86_64_SysV"
    )
    sysv = by_name(doc)["OrcX86_64_SysV"]
    assert status == 1
    assert sysv["stale"] == [
        "ReentryFnAddrOffset is 0x3a, but the field it patches moved with `movabsq $0, %rax` "
        "(0x38 -> 0x3c) to 0x3e; the write at 0x3a lands in `nopl (%rax)` (0x38)"
    ]
    assert sysv["fields"]["constants"] == {
        "old": {**sysv["fields"]["constants"]["old"], "ResolverCodeSize": 0x6C},
        "new": {**sysv["fields"]["constants"]["old"], "ResolverCodeSize": 0x70},
    }
    # The runtime's write lands in code: the resolver never reaches the re-entry call.
    assert sysv["verify"]["new"]["ctx_arg"] == "FAIL"


def test_the_byte_order_switch_swapped(capsys):
    """`isBigEndian ? A : B` with A and B swapped: each class's landing move changes,
    and running them shows it."""
    status, doc = run(
        capsys,
        str(TREE),
        str(PATCHES / "mips_byte_order.patch"),
        "-U",
        "0",
        "--no-verify",
        "--no-compile",
    )
    abis = by_name(doc)
    assert edits(abis["OrcMips32Le"]) == [
        "-0xf8        move $t9, $v0          ; patch Offsett; written at run time",
        "+      0xf8  move $t9, $v1          ; patch Offsett; written at run time",
    ]
    assert edits(abis["OrcMips32Be"]) == [
        "-0xf8        move $t9, $v1          ; patch Offsett; written at run time",
        "+      0xf8  move $t9, $v0          ; patch Offsett; written at run time",
    ]
    changed = {n for n, a in abis.items() if a["status"] != "unchanged"}
    assert changed == {"OrcMips32Le", "OrcMips32Be"} and status == 0
    # Verified (tests above run the chain for x86-64): the edit breaks both byte
    # orders on MIPS, under qemu and in unicorn.
    status, doc = run(
        capsys,
        str(TREE),
        str(PATCHES / "mips_byte_order.patch"),
        "--abi",
        "Mips32Be",
    )
    mips = by_name(doc)["OrcMips32Be"]
    assert status == 1 and mips["verify"]["old"]["callee_saved"] == "pass"
    assert mips["verify"]["new"]["callee_saved"] == "FAIL"


# --- inputs ---------------------------------------------------------------------------------


def test_revisions_of_an_llvm_repository(tmp_path, capsys):
    repo = tmp_path / "llvm-project"
    for rel in (orc.HEADER_PATH, orc.CPP_PATH):
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(TREE / rel, repo / rel)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "base"]):
        subprocess.run([*git, *args], cwd=repo, check=True)
    subprocess.run([*git, "apply", str(PATCHES / "stale_offset.patch")], cwd=repo, check=True)
    # HEAD against the working tree (the edit not yet committed), then two revisions.
    status, doc = run(capsys, "--repo", str(repo), "--no-verify")
    assert (doc["old"], doc["new"]) == ("HEAD", "working tree") and status == 1
    assert by_name(doc)["OrcX86_64_SysV"]["stale"]
    subprocess.run([*git, "commit", "-qam", "edit"], cwd=repo, check=True)
    status, doc = run(capsys, "HEAD~1", "HEAD", "--repo", str(repo), "--no-verify")
    assert status == 1 and by_name(doc)["OrcX86_64_SysV"]["status"] == "changed"


def test_without_the_compiler_the_resolver_tables_are_reviewed(capsys):
    status, doc = run(
        capsys,
        str(TREE),
        str(PATCHES / "stale_offset.patch"),
        "--abi",
        "X86_64_SysV",
        "--no-compile",
    )
    assert doc["notes"] == [
        "OLD: this side's writers were not compiled (--no-compile): trampolines and stubs are "
        "not compared",
        "NEW: this side's writers were not compiled (--no-compile): trampolines and stubs are "
        "not compared",
    ]
    assert set(by_name(doc)) == {"OrcX86_64_SysV"}
    sysv = by_name(doc)["OrcX86_64_SysV"]
    assert "writeResolverCode as asmgen reads it" in sysv["verify_detail"]["new"]["about"]
    assert "asmgen's from x86_64_sysv.yaml standing in" in sysv["verify_detail"]["new"]["about"]
    assert sysv["verify"]["new"]["ctx_arg"] == "FAIL" and status == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{tree}", "{missing}"], "does not apply to"),
        (["{tree}", "{bad}"], "not a patch git can read"),
        (["{tree}", "{tree}", "--convention", "no_such"], "--convention: no convention"),
        (["{specs}", "{patch}"], "is not LLVM's sources"),
    ],
)
def test_bad_input_is_one_error_line(tmp_path, capsys, args, message):
    missing = tmp_path / "other.patch"
    missing.write_text((PATCHES / "stale_offset.patch").read_text().replace("0x6C", "0x6D"))
    bad = tmp_path / "bad.diff"
    bad.write_text("diff --git a/x b/x\n@@ nonsense\n")
    names = {
        "tree": TREE,
        "missing": missing,
        "bad": bad,
        "specs": ROOT / "abi_specs",
        "patch": PATCHES / "seed_initial.patch",
    }
    argv = [a.format(**names) for a in args]
    with_class = ["--abi", "X86_64_SysV", "--no-verify"]
    assert main(["review", *argv, *with_class]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err


def test_unreadable_writer_is_one_error_line(tmp_path, capsys):
    """A resolver that writes its memory in a way asmgen cannot read is refused at
    its line, not guessed at."""
    root = tmp_path / "llvm-project"
    for rel in (orc.HEADER_PATH, orc.CPP_PATH):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(TREE / rel, root / rel)
    cpp = root / orc.CPP_PATH
    text = cpp.read_text()
    anchor = "  const unsigned ReentryFnAddrOffset = 0x3a;\n"
    line = text[: text.index(anchor)].count("\n") + 2
    cpp.write_text(
        text.replace(
            anchor, anchor + "  *reinterpret_cast<uint32_t *>(ResolverWorkingMem + 4) = 0;\n", 1
        )
    )
    assert main(["review", str(TREE), str(root), "--no-verify"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{cpp}:{line}: error: OrcX86_64_SysV::writeResolverCode: cannot")


def test_review_tree_label_names_the_patch(before_r268845):
    _, new = llvm_pair(
        str(before_r268845), str(PATCHES / "r268845.patch"), None, Conventions(), False
    )
    assert new.label == f"{before_r268845} + r268845.patch"
    assert isinstance(new.llvm.tree, Tree) and new.llvm.driver is None


def test_docs_llvm_example_is_current(seed_review):
    """docs/review.md shows the seed's review as the command prints it (the
    `native:` lines depend on the CPU's vector width and are left out)."""
    doc = (ROOT / "docs" / "review.md").read_text()
    start = doc.index("### asmgen review: `llvm-project` -> `llvm-project + seed_initial.patch`")
    shown = []
    for line in doc[start - 4 :].splitlines():
        if line and not line.startswith("    "):
            break
        shown.append(line[4:])
    while shown and not shown[-1]:
        shown.pop()
    printed = to_markdown(seed_review).splitlines()

    def stable(lines: list[str]) -> list[str]:
        return [line for line in lines if "- native:" not in line]

    assert stable(shown) == stable(printed)


def test_a_trampoline_writer_edit_is_reviewed_as_code(capsys):
    """The units come from the side's own compiled writers: an edit of the x86-64
    trampoline's displacement formula shows as the `callq` it writes."""
    status, doc = run(
        capsys,
        str(TREE),
        str(PATCHES / "trampoline_displacement.patch"),
        "--abi",
        "X86_64_SysV",
        "--no-verify",
    )
    abis = by_name(doc)
    assert edits(abis["OrcX86_64_Base::writeTrampolines"]) == [
        "-0x00        callq *0xa(%rip)",
        "+      0x00  callq *0xe(%rip)",
        "-0x08        callq *2(%rip)",
        "+      0x08  callq *6(%rip)",
    ]
    assert abis["OrcX86_64_SysV"]["status"] == "unchanged" and status == 0
