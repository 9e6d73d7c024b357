"""`asmgen patch` adds an arch's cases to LLVM's factory functions
(createLocalCompileCallbackManager, createLocalIndirectStubsManagerBuilder,
createLocalLazyCallThroughManager) that pick an ORC ABI class by triple.

The stand-in tree (tests/fixtures/llvm_tree) has LLVM 19.1.x's factory
functions; a tree without RISC-V's cases stands for an LLVM that lacks an
arch.  Each patch is applied with git, checked with `git clang-format`, run
twice (the second patch is empty) and compiled against LLVM 19's installed
headers with the patched header first.  The triple names are checked against
LLVM 19's `Triple::ArchType`, not against asmgen.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import llvm_oracle as oracle
import llvm_trees
import pytest

from asmgen.arches import ARCHES
from asmgen.arches.model import OrcFactory
from asmgen.cli import main
from asmgen.patch import orc_factories
from asmgen.patch import orc_source as orc

ROOT = Path(__file__).resolve().parent.parent
TREE = ROOT / "tests" / "fixtures" / "llvm_tree"

# LLVM 19.1.x's factory cases (the release's IndirectionUtils.cpp and
# LazyReexports.cpp): enumerator -> class; x86_64 picks by OS.
LLVM19_CASES = {
    "aarch64": {"OrcAArch64"},
    "aarch64_32": {"OrcAArch64"},
    "x86": {"OrcI386"},
    "loongarch64": {"OrcLoongArch64"},
    "mips": {"OrcMips32Be"},
    "mipsel": {"OrcMips32Le"},
    "mips64": {"OrcMips64"},
    "mips64el": {"OrcMips64"},
    "riscv64": {"OrcRiscv64"},
    "x86_64": {"OrcX86_64_Win32", "OrcX86_64_SysV"},
}


def _triple_enumerators() -> set[str]:
    """LLVM 19's Triple::ArchType enumerators, read from its installed header."""
    header = Path(oracle.llvm_config("--includedir")[0]) / "llvm" / "TargetParser" / "Triple.h"
    text = header.read_text()
    body = text[text.index("enum ArchType {") : text.index("};", text.index("enum ArchType {"))]
    body = re.sub(r"//[^\n]*", "", body)
    return set(re.findall(r"^\s*(\w+)\s*[,=]", body, re.M))


def _strip_cases(repo: Path, enumerator: str) -> None:
    """Remove every case group labelled `enumerator` from the factory files
    (an LLVM that lacks the arch), and commit."""
    for fn in orc_factories.FACTORIES:
        src = orc.load(repo, fn.path)
        _, groups = orc_factories.groups(src, fn.name)
        (group,) = [g for g in groups if g.enumerators == [enumerator]]
        start = group.cases[0].start_byte - group.cases[0].start_point.column
        data = src.data[:start] + src.data[group.cases[-1].end_byte + 1 :]
        (repo / fn.path).write_bytes(data)
    assert llvm_trees.git(repo, "commit", "-qam", f"no {enumerator}").returncode == 0


def _compile(repo: Path, rel: str) -> None:
    assert oracle.syntax_check(repo, rel) == ""


def _files(diff: str) -> dict[str, list[str]]:
    """Each file of a diff -> its added and removed lines, blank ones left out."""
    out: dict[str, list[str]] = {}
    for part in diff.split("diff --git a/")[1:]:
        rel = part.split(" ", 1)[0]
        out[rel] = [
            line
            for line in part.splitlines()
            if line[:1] in "+-" and not line.startswith(("+++", "---")) and line[1:].strip()
        ]
    return out


def _patch(capsys, repo: Path, *abis: str) -> str:
    code = main(["patch", "--llvm-root", str(repo), *abis])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


@pytest.fixture
def llvm(tmp_path: Path) -> Path:
    return llvm_trees.scratch_tree(tmp_path / "llvm-project", llvm_trees.llvm_files(TREE))


def test_fixture_has_llvm19s_cases():
    for fn in orc_factories.FACTORIES:
        found = orc_factories.cases(orc.load(TREE, fn.path), fn.name)
        assert found == LLVM19_CASES, fn.name


def test_fixture_factories_compile_against_llvm19():
    for rel in orc_factories.FACTORY_PATHS:
        _compile(TREE, rel)


@pytest.mark.parametrize(
    "arch", [a for a in ARCHES.values() if a.orc_factory], ids=lambda arch: arch.name
)
def test_arch_factory_triples_are_llvm_enumerators(arch):
    assert set(arch.orc_factory.triples) <= _triple_enumerators()
    assert not set(arch.orc_factory.triples) & set(LLVM19_CASES), "LLVM 19 has these cases"


def test_factory_cases_added_where_llvm_lacks_the_arch(capsys, llvm, tmp_path, monkeypatch):
    """An LLVM without RISC-V's cases; with riscv64's record naming them, the
    patch of OrcRiscv64 puts them back, in each function's own shape."""
    _strip_cases(llvm, "riscv64")
    for fn in orc_factories.FACTORIES:
        assert "riscv64" not in orc_factories.cases(orc.load(llvm, fn.path), fn.name)
    # Riscv64's patch fixes LLVM 19's StubToPointerMaxDisplacement; without
    # the record, the factory files are left alone.
    assert set(_files(_patch(capsys, llvm, "Riscv64"))) == {orc.HEADER_PATH}
    factory = OrcFactory(triples=("riscv64",), llvm_class="OrcRiscv64")
    record = dataclasses.replace(ARCHES["riscv64"], orc_factory=factory)
    monkeypatch.setitem(ARCHES, "riscv64", record)
    diff = _patch(capsys, llvm, "Riscv64")
    parts = _files(diff)
    assert list(parts) == [orc.HEADER_PATH, *orc_factories.FACTORY_PATHS]
    factory_lines = [line for rel in orc_factories.FACTORY_PATHS for line in parts[rel]]
    assert all(line.startswith("+") for line in factory_lines)  # only additions
    added = [line[1:].strip() for line in factory_lines]
    assert sum(line.startswith("case Triple::riscv64:") for line in added) == len(
        orc_factories.FACTORIES
    )
    assert "typedef orc::LocalJITCompileCallbackManager<orc::OrcRiscv64> CCMgrT;" in added
    assert "return LocalLazyCallThroughManager::Create<OrcRiscv64>(ES," in added
    patch = tmp_path / "factory.patch"
    patch.write_text(diff)
    assert llvm_trees.apply(llvm, patch) == ""
    assert llvm_trees.clang_format_diff(llvm) == ""
    for fn in orc_factories.FACTORIES:
        assert orc_factories.cases(orc.load(llvm, fn.path), fn.name) == LLVM19_CASES, fn.name
    assert _patch(capsys, llvm, "Riscv64") == ""
    for rel in orc_factories.FACTORY_PATHS:
        _compile(llvm, rel)


def test_factory_cases_for_a_new_class(capsys, llvm, tmp_path, monkeypatch):
    """The class the cases name is one the same patch adds (as OrcSystemZ
    is), with two labels (as MIPS64 has); the patched files compile, each
    factory instantiating LLVM's templates with the new class."""
    factory = OrcFactory(triples=("riscv32", "riscv64"), llvm_class="OrcRiscv64_Aligned")
    _strip_cases(llvm, "riscv64")
    monkeypatch.setitem(
        ARCHES, "riscv64", dataclasses.replace(ARCHES["riscv64"], orc_factory=factory)
    )
    diff = _patch(capsys, llvm, "Riscv64_Aligned")
    assert "+class LLVM_CLASS_ABI OrcRiscv64_Aligned {" in diff
    patch = tmp_path / "factory.patch"
    patch.write_text(diff)
    assert llvm_trees.apply(llvm, patch) == ""
    assert llvm_trees.clang_format_diff(llvm) == ""
    assert _patch(capsys, llvm, "Riscv64_Aligned") == ""
    for fn in orc_factories.FACTORIES:
        found = orc_factories.cases(orc.load(llvm, fn.path), fn.name)
        assert found["riscv32"] == found["riscv64"] == {"OrcRiscv64_Aligned"}, fn.name
    for rel in orc_factories.FACTORY_PATHS:
        _compile(llvm, rel)


def test_cases_llvm_has_are_kept(capsys, llvm, monkeypatch):
    """A record naming cases LLVM has (even for another class) changes nothing."""
    factory = OrcFactory(triples=("riscv64",), llvm_class="OrcRiscv64_Aligned")
    monkeypatch.setitem(
        ARCHES, "riscv64", dataclasses.replace(ARCHES["riscv64"], orc_factory=factory)
    )
    diff = _patch(capsys, llvm, "Riscv64_Aligned")
    assert "IndirectionUtils" not in diff and "LazyReexports" not in diff
    assert "+class LLVM_CLASS_ABI OrcRiscv64_Aligned {" in diff


def test_missing_factory_file_is_one_error_line(capsys, llvm, monkeypatch):
    factory = OrcFactory(triples=("riscv32",), llvm_class="OrcRiscv64")
    monkeypatch.setitem(
        ARCHES, "riscv64", dataclasses.replace(ARCHES["riscv64"], orc_factory=factory)
    )
    (llvm / orc_factories.LAZY_REEXPORTS).unlink()
    assert main(["patch", "--llvm-root", str(llvm), "Riscv64"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.strip().endswith(
        f"LazyReexports.cpp: error: missing file: expected LLVM's {orc_factories.LAZY_REEXPORTS} "
        f"under --llvm-root {llvm}"
    )
    assert len(err.strip().splitlines()) == 1


def test_renamed_factory_function_is_one_error_line(capsys, llvm, monkeypatch):
    factory = OrcFactory(triples=("riscv32",), llvm_class="OrcRiscv64")
    monkeypatch.setitem(
        ARCHES, "riscv64", dataclasses.replace(ARCHES["riscv64"], orc_factory=factory)
    )
    path = llvm / orc_factories.LAZY_REEXPORTS
    path.write_text(path.read_text().replace("createLocalLazyCallThroughManager", "createLCTM"))
    assert main(["patch", "--llvm-root", str(llvm), "Riscv64"]) == 2
    _, err = capsys.readouterr()
    assert (
        "LazyReexports.cpp: error: expected a definition of createLocalLazyCallThroughManager"
        in err
    )


def test_make_test_llvm_reports_and_compiles_the_factory_files(capsys, tmp_path, monkeypatch):
    """tests/llvm_release.py's factory steps on a tree without RISC-V's cases."""
    import llvm_release

    files = llvm_trees.llvm_files(TREE)
    base = llvm_trees.scratch_tree(tmp_path / "base", files)
    _strip_cases(base, "riscv64")
    tree = llvm_trees.scratch_tree(tmp_path / "tree", llvm_trees.llvm_files(base))
    factory = OrcFactory(triples=("riscv64",), llvm_class="OrcRiscv64")
    record = dataclasses.replace(ARCHES["riscv64"], orc_factory=factory)
    monkeypatch.setitem(ARCHES, "riscv64", record)
    patch = tmp_path / "p.patch"
    patch.write_text(_patch(capsys, tree, "Riscv64"))
    assert llvm_trees.apply(tree, patch) == ""
    steps = llvm_release.compile_factories(base, tree)
    assert [(what.split()[0], error) for what, error in steps] == [
        ("IndirectionUtils.cpp", ""),
        ("LazyReexports.cpp", ""),
        ("EPCIndirectionUtils.cpp", ""),
    ]
    lines = llvm_release.changes(base, tree)
    for fn in orc_factories.FACTORIES:
        assert f"- {fn.name}: new cases riscv64 -> OrcRiscv64" in lines
    # A patched file that does not compile is a failed step.
    broken = tree / orc_factories.LAZY_REEXPORTS
    broken.write_text(broken.read_text().replace("Create<OrcRiscv64>", "Create<OrcRiscv65>"))
    (_, error), *_ = [s for s in llvm_release.compile_factories(base, tree) if "Lazy" in s[0]]
    assert "OrcRiscv65" in error
