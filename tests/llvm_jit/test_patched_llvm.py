"""The patch proven by running it: a default `asmgen patch` (every ABI) on the
stand-in fixture's OrcABISupport.cpp and LLVM 19's installed OrcABISupport.h
(copied into a scratch tree only to be patched), applied with git, then the
lazy-JIT test built with the patched .cpp linked in and the patched header
first (jit_build.run_patched_tree; `make test-llvm` does the same on a real
checkout).

The rows are LLVM's own classes as the patched header defines them:
OrcX86_64_SysV, whose writers now come from the patched .cpp, and every
x86-64 System V class the patch adds, each declared by the `abi` row of its
ABI in expected.yaml.  One run, the deliberate clobber on the host CPU, is
the proof (see run_patched_tree): the other modes of test_llvm_jit.py vary
the JIT'd code, and the patched writers write the very bytes of the asmgen
classes run there, which is checked here.
"""

from __future__ import annotations

from pathlib import Path

import jit_build
import llvm_trees
import pytest
from jit_build import REPORTS, ROOT

from asmgen.patch import orc_source as orc
from asmgen.spec.files import spec_files

FIXTURE_TREE = ROOT / "tests" / "fixtures" / "llvm_tree"
FIXTURE_CPP = FIXTURE_TREE / orc.CPP_PATH


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    repo = tmp_path_factory.mktemp("patched-jit") / "llvm-project"
    llvm_trees.patched_tree(
        repo,
        {orc.CPP_PATH: FIXTURE_CPP, orc.HEADER_PATH: jit_build.installed_orc_header()}
        | llvm_trees.factory_files(FIXTURE_TREE),
    )
    return repo


@pytest.fixture(scope="module")
def patched(tree) -> jit_build.PatchedRun:
    run = jit_build.run_patched_tree(tree)
    built = run.built
    how = "from the cache" if built.cached else f"built in {built.seconds:.1f} s (g++ -O0)"
    REPORTS.append(f"lazy_jit_test with the patched OrcABISupport.cpp/.h: {how}")
    REPORTS.append(run.report())
    return run


@pytest.fixture(scope="module")
def system_v_classes() -> set[str]:
    return {spec.class_name for spec in jit_build.native_family(f.spec for f in spec_files())}


def test_the_rows_are_llvms_classes_as_patched(patched, system_v_classes):
    """OrcX86_64_SysV (bare and with borrowed frames) and a row for every
    System V class: the four the patch adds to LLVM among them."""
    assert set(patched.expected.llvm_classes()) == system_v_classes
    assert len(system_v_classes) >= 5
    assert all(row.llvm_class for row in patched.expected.rows)
    labels = {row.label for row in patched.expected.rows}
    assert {f"llvm::orc::{name} + WithEHFrames" for name in system_v_classes} <= labels
    assert "llvm::orc::OrcX86_64_SysV" in labels


def test_the_patched_writers_are_the_ones_called(tree, patched, system_v_classes):
    """The executable defines every writer of the patched .cpp itself, so the
    test's calls bind to them and not to libLLVM-19.so's."""
    written = jit_build.written_writers(tree / orc.CPP_PATH)
    assert {f"{name}::writeResolverCode" for name in system_v_classes} <= written
    assert patched.unlinked == []


def test_outcomes_as_declared_with_the_deliberate_clobber(patched):
    """Every row on both paths: the AVX classes keep every argument, the
    others lose exactly the upper bytes of every ymm/zmm argument, as their
    asmgen classes do; everything compiled once, results right, backtraces
    end as declared (complete: the patched header's ResolverCodeSize and
    TrampolineSize are those of the asmgen frames they borrow)."""
    assert not patched.failures()
    assert {got["path"] for got in patched.result["rows"]} == {"LLLazyJIT", "CompileCallbacks"}
    assert len(patched.result["rows"]) == 2 * len(patched.expected.rows)


def test_patched_writers_write_the_asmgen_classes_bytes(patched, system_v_classes):
    """Resolver, a page of trampolines and a page of stubs of each patched
    class, byte for byte those of its asmgen class (same process)."""
    assert {w.llvm for w in patched.expected.writers} == {
        f"llvm::orc::{name}" for name in system_v_classes
    }
    assert patched.wrong_writers == []


def test_every_class_of_the_patch_builds_into_llvms_templates(patched):
    """Every spec's class as the patched header defines it, foreign arches
    included, instantiated in LocalLazyCallThroughManager,
    LocalIndirectStubsManager, LocalJITCompileCallbackManager and
    EPCIndirectionUtils, and linked with the patched .cpp's writers: the
    build is the proof."""
    assert set(patched.instantiated) == {f"llvm::orc::{f.spec.class_name}" for f in spec_files()}
