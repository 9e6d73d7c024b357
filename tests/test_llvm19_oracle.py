"""LLVM itself is the reference: LLVM 19's compiled ORC writers (Debian's
libLLVM-19.so) against the generated Python module, the generated C++ header,
and the writers `asmgen patch` leaves in a tree made of the fixture .cpp and
LLVM 19's installed header (tests/llvm_oracle.py).  Every difference is
declared in tests/llvm19/differences.yaml; an undeclared one fails, and so
does a declared one that no longer occurs.
"""

from __future__ import annotations

from pathlib import Path

import llvm_oracle as oracle
import llvm_trees
import pytest

from asmgen.cli import main
from asmgen.patch import orc_source as orc

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_TREE = ROOT / "tests" / "fixtures" / "llvm_tree"
FIXTURE_CPP = FIXTURE_TREE / orc.CPP_PATH


@pytest.fixture(scope="module")
def drivers_dir(request) -> Path:
    """Built drivers, kept between runs (keyed by the hash of their inputs)."""
    return request.config.cache.mkdir("llvm19-drivers")


@pytest.fixture(scope="module")
def declarations() -> oracle.Declarations:
    return oracle.Declarations.load()


@pytest.fixture(scope="module")
def llvm_driver(drivers_dir) -> Path:
    return oracle.llvm_driver(drivers_dir)


@pytest.fixture(scope="module")
def llvm_constants(llvm_driver) -> dict:
    return oracle.constants(llvm_driver)


@pytest.fixture(scope="module")
def cases(generated_module, llvm_constants) -> list[oracle.Case]:
    return oracle.cases(generated_module, llvm_constants)


@pytest.fixture(scope="module")
def llvm19_tree(tmp_path_factory) -> tuple[Path, str]:
    """The fixture .cpp with LLVM 19's installed header, after a default
    `asmgen patch` (every ABI) applied with git; and the patch."""
    repo = tmp_path_factory.mktemp("llvm19") / "llvm-project"
    diff = llvm_trees.patched_tree(
        repo,
        {orc.CPP_PATH: FIXTURE_CPP, orc.HEADER_PATH: oracle.installed_header()}
        | llvm_trees.factory_files(FIXTURE_TREE),
    )
    return repo, diff


def _assert_matches(outcome: oracle.Outcome, declarations: oracle.Declarations) -> None:
    undeclared = [
        f"{case}: {diff.where} {diff.at:#x}: {diff.llvm!r} vs {diff.asmgen!r}"
        for case, diff in outcome.undeclared[:10]
    ]
    assert not undeclared, f"{len(outcome.undeclared)} undeclared differences:\n" + "\n".join(
        undeclared
    )
    assert outcome.overflows == []
    assert outcome.stale(declarations) == [], "declared differences that no longer occur"


def test_llvm_19_writers(llvm_driver, generated_module, declarations, cases):
    """All nine ABI classes: resolvers, trampoline blocks and stub blocks."""
    outcome = oracle.compare("llvm", llvm_driver, generated_module, declarations, cases)
    _assert_matches(outcome, declarations)
    assert {c.abi for c in cases} == set(oracle.LLVM_ABIS)
    assert outcome.compared > 4500
    assert outcome.identical > 4000  # most blocks: byte for byte


def test_generated_header_writers(drivers_dir, generated_module, declarations, cases):
    driver = oracle.header_driver(drivers_dir, ROOT / "generated")
    outcome = oracle.compare("header", driver, generated_module, declarations, cases)
    _assert_matches(outcome, declarations)


def test_patched_llvm_19_writers(drivers_dir, llvm19_tree, generated_module, declarations, cases):
    """The default patch's writers, compiled against LLVM 19's headers with the
    patched header first: the resolvers are the generated ones (MIPS fixed),
    the constants the true ones, LLVM's unit writers kept."""
    repo, _ = llvm19_tree
    driver = oracle.patched_driver(drivers_dir, repo, orc.CPP_PATH, scratch=True)
    outcome = oracle.compare("patched", driver, generated_module, declarations, cases)
    _assert_matches(outcome, declarations)


def test_default_patch_on_llvm_19(llvm19_tree, tmp_path):
    """The default run on LLVM 19's header: git applies it, a second run is
    empty, `git clang-format` finds nothing, and the header changes only where
    LLVM 19 is wrong (or gains the classes it lacks)."""
    repo, diff = llvm19_tree
    assert llvm_trees.clang_format_diff(repo) == ""
    again = tmp_path / "again.patch"
    assert main(["patch", "--llvm-root", str(repo), "-o", str(again)]) == 0
    assert again.read_text() == ""
    header = diff.split(f"+++ b/{orc.HEADER_PATH}\n", 1)[1].split("diff --git", 1)[0]
    removed = [line for line in header.splitlines() if line.startswith("-")]
    assert removed == [
        "-  static constexpr unsigned StubToPointerMaxDisplacement = 1U << 27;",
        "-  static constexpr unsigned StubToPointerMaxDisplacement = 1 << 31;",
        "-  static constexpr unsigned ResolverCodeSize = 0x4a;",
        "-  static constexpr unsigned StubSize = 8;",
        "-  static constexpr unsigned ResolverCodeSize = 0xfc;",
        "-  static constexpr unsigned ResolverCodeSize = 0x120;",
        "-  static constexpr unsigned StubToPointerMaxDisplacement = 1 << 31;",
        "-  static constexpr unsigned StubToPointerMaxDisplacement = 1 << 31;",
    ]
    # LLVM 19's header has no export macro on the ABI classes: neither do new ones.
    assert "+class OrcX86_64_SysV_AVX {" in diff


def test_llvm_stubs_within_llvms_bound_load_the_wrong_pointer(
    llvm_driver, generated_module, llvm_constants
):
    """LLVM's reach bug, shown with LLVM's own writer: stub blocks whose every
    stub LLVM 19's StubToPointerMaxDisplacement allows, but which asmgen
    refuses.  Decoding what LLVM wrote, a stub reaches its pointer exactly when
    asmgen accepts that stub: the others load from somewhere else."""
    module = generated_module
    refused = oracle.reach_cases(module, llvm_constants)
    assert {c.abi for c in refused} == {
        "AArch64",
        "X86_64_SysV",
        "X86_64_Win32",
        "Riscv64",
        "LoongArch64",
    }
    requests = [oracle.request(c, c.c * module.TABLES[c.abi].stub_size) for c in refused]
    wrong = 0
    for case, dump in zip(refused, oracle.ask(llvm_driver, requests), strict=True):
        table = module.TABLES[case.abi]
        for i, loaded in enumerate(oracle.stubs_loaded_from(module, case, dump)):
            stub, pointer = case.a + i * table.stub_size, case.b + i * table.pointer_size
            reachable = oracle.ours(module, oracle.Case(case.abi, "S", stub, pointer, 1))
            assert (loaded == pointer) == (reachable is not None), (case, i, hex(loaded))
            wrong += loaded != pointer
    assert wrong >= len(refused)
    # AArch64: a stub 1 MiB before its pointer (within LLVM's 128 MiB) loads
    # from 1 MiB before itself.
    (case,) = [c for c in refused if c.abi == "AArch64" and c.b - c.a == 0x100000 and c.c == 1]
    (dump,) = oracle.ask(llvm_driver, [oracle.request(case, 8)])
    assert oracle.stubs_loaded_from(module, case, dump) == [case.a - 0x100000]


def test_decoding_stubs_reads_the_pointer_of_every_stub_in_reach(
    llvm_driver, generated_module, cases
):
    """The decoder above, on the stubs LLVM writes in reach: each loads its own pointer."""
    module = generated_module
    stubs = [
        c
        for c in cases
        if c.kind == "S"
        and c.abi in ("AArch64", "X86_64_SysV", "Riscv64", "LoongArch64")
        and oracle.ours(module, c) is not None
    ]
    assert len(stubs) > 100
    requests = [oracle.request(c, c.c * module.TABLES[c.abi].stub_size) for c in stubs]
    for case, dump in zip(stubs, oracle.ask(llvm_driver, requests), strict=True):
        table = module.TABLES[case.abi]
        pointers = [case.b + i * table.pointer_size for i in range(case.c)]
        assert oracle.stubs_loaded_from(module, case, dump) == pointers, case
