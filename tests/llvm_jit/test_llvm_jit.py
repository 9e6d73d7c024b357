"""asmgen's ORC-ready classes in a real LLVM 19 lazy JIT (lazy_jit_test.cpp).

The oracle is LLVM itself: Debian's libLLVM-19 runs an LLLazyJIT and a
LocalJITCompileCallbackManager whose resolver, trampolines and stubs are
written by the generated classes (and, as the baseline, by LLVM's own
OrcX86_64_SysV), and the JIT'd code checks what it receives against values
computed in C++.  The outcome of every class is declared in expected.yaml;
what the runs measured is printed at the end of the session.

Runs: the deliberate clobber on the host CPU (the declared outcomes), the
natural mode (what glibc's own routines do; printed, AVX-safe classes
asserted), and the clobber again with the JIT'd code built for narrower CPUs
(AVX2 without AVX-512, and plain x86-64), so every vector width the
declarations adapt to is exercised on this machine.
"""

from __future__ import annotations

import dataclasses
import re

import jit_build
import pytest
from jit_build import REPORTS, ROOT
from llvm_oracle import LLVM_ABIS

from asmgen.emit.orc_header import orcabi_class
from asmgen.spec.files import spec_files
from asmgen.verify.vector_harness import cpu_flags


@pytest.fixture(scope="session")
def expected():
    return jit_build.load_expected()


@pytest.fixture(scope="session")
def every_class():
    return [orcabi_class(f.spec) for f in spec_files()]


@pytest.fixture(scope="session")
def executable(expected):
    built = jit_build.build(jit_build.rows_source(expected, jit_build.every_class(expected)))
    how = "from the cache" if built.cached else f"built in {built.seconds:.1f} s (g++ -O0)"
    REPORTS.append(f"lazy_jit_test: {how}: {built.executable}")
    return built.executable


_RUNS: dict[tuple, dict] = {}


def _run(executable, mode: str, cpu: str | None = None, iters: int = 100) -> dict:
    key = (mode, cpu, iters)
    if key not in _RUNS:
        _RUNS[key] = jit_build.run(executable, mode, cpu, iters)
    return _RUNS[key]


def _judged(executable, expected, title: str, mode: str, cpu=None, iters=100):
    result = _run(executable, mode, cpu, iters)
    verdicts = jit_build.judge(result, expected)
    REPORTS.append(jit_build.report(title, result, expected, verdicts))
    return result, verdicts


def _failures(verdicts) -> list[str]:
    return [f"{label} / {path}: {'; '.join(why)}" for (label, path), why in verdicts.items() if why]


# ---------------------------------------------------------------- declarations


def test_every_system_v_class_has_a_declared_outcome(expected):
    family = jit_build.native_family(f.spec for f in spec_files())
    assert family, "no spec runs natively on this host: the lazy-JIT test needs x86-64 Linux"
    declared = {row.abi for row in expected.rows if row.abi}
    assert declared == {spec.abi for spec in family}


def test_declared_losses_agree_with_the_specs(expected):
    """A class declared `lost` is one whose spec declares the vector_width
    violation that verify finds natively, and the other way round."""
    specs = {f.spec.abi: f.spec for f in spec_files()}
    for row in expected.rows:
        if row.abi:
            declares = any(v.check == "vector_width" for v in specs[row.abi].expected_violations)
            assert declares == (row.vector_upper == "lost"), row.abi


def test_every_generated_class_is_instantiated(expected, every_class):
    """rows.inc instantiates LocalLazyCallThroughManager::Create<C>,
    LocalIndirectStubsManager<C>, LocalJITCompileCallbackManager<C> and
    EPCIndirectionUtils::CreateWithABI<C> for every class of the header,
    foreign arches included, under `using namespace llvm; using namespace
    llvm::orc; using namespace asmgen;`, and for LLVM's classes of the specs
    (LLVM 19's nine here; after a patch, every one): the build is the proof."""
    header = (ROOT / "generated" / "orc_resolvers_llvm.h").read_text()
    assert re.findall(r"^struct (\w+) \{", header, re.MULTILINE) == every_class
    assert len(every_class) == len(spec_files())
    llvm = {name for name in jit_build.every_class(expected) if name not in every_class}
    assert llvm == {f"llvm::orc::Orc{abi}" for abi in LLVM_ABIS}  # LLVM 19's nine


def test_llvm_19s_class_runs_with_the_declaration_of_its_abi(expected):
    """LLVM 19's header defines OrcX86_64_SysV and no other System V class:
    one derived row, declared as the X86_64_SysV row, and one byte comparison."""
    derived = [row for row in expected.rows if row.abi and row.llvm_class]
    assert [(row.label, row.call_through) for row in derived] == [
        (
            "llvm::orc::OrcX86_64_SysV + WithEHFrames",
            "WithEHFrames<llvm::orc::OrcX86_64_SysV, X86_64_SysV_ORCABI>",
        )
    ]
    (own,) = [row for row in expected.rows if row.label == "X86_64_SysV_ORCABI"]
    assert (derived[0].vector_upper, derived[0].backtrace) == (own.vector_upper, own.backtrace)
    assert [(w.llvm, w.asmgen, w.same) for w in expected.writers] == [
        ("llvm::orc::OrcX86_64_SysV", "X86_64_SysV_ORCABI", True)
    ]


def test_the_program_builds(executable):
    assert executable.is_file()


def test_the_program_exercises_the_calling_convention(executable):
    result = _run(executable, "clobber")
    assert result["functions"] >= 50
    assert result["stack_arguments"] > 0
    # Compiled for this CPU: wide vectors travel in its widest registers.
    flags = cpu_flags()
    assert result["vec_reg_bytes"] == (64 if "avx512f" in flags else 32 if "avx" in flags else 16)
    assert (result["wide_register_arguments"] > 0) == ("avx" in flags)


# ----------------------------------------------------------------------- runs


def test_declared_outcomes_with_the_deliberate_clobber(executable, expected):
    """Every row, both paths, on the host CPU: the AVX-safe classes keep every
    argument; LLVM's, the fxsave and the lean classes lose the upper bytes of
    every ymm/zmm argument, and nothing else; unwinding ends as declared."""
    _, verdicts = _judged(executable, expected, "Deliberate clobber, host CPU", "clobber")
    assert not _failures(verdicts)


def test_natural_mode(executable, expected):
    """No deliberate clobber: what the compile's own C++ (glibc's AVX/EVEX
    string routines) does to the vector registers depends on glibc and the
    CPU, so `lost` rows are printed, not asserted; everything else is."""
    _, verdicts = _judged(
        executable, expected, "Natural (no deliberate clobber), host CPU", "natural"
    )
    assert not _failures(verdicts)


@pytest.mark.parametrize(
    ("cpu", "needs"),
    [("x86-64-v3", "avx2"), ("x86-64", "sse2")],
    ids=["avx2-codegen", "sse2-codegen"],
)
def test_declared_outcomes_on_narrower_vectors(executable, expected, cpu, needs):
    """The JIT'd code built for an AVX2 CPU (512-bit vectors in ymm pairs)
    and for plain x86-64 (xmm only: nothing to lose for any class)."""
    if needs not in cpu_flags():
        # Said, not silent: -ra lists the reason; the host run covers the CPU.
        pytest.skip(f"this CPU lacks {needs.upper()}: it cannot run code built for {cpu}")
    result, verdicts = _judged(
        executable, expected, f"Deliberate clobber, JIT'd code for {cpu}", "clobber", cpu
    )
    assert result["vec_reg_bytes"] == (32 if cpu == "x86-64-v3" else 16)
    assert not _failures(verdicts)


def test_eh_frame_registration_as_documented(executable):
    """registerResolverEHFrame / registerTrampolineEHFrame / EHFrameRegistry,
    asked through libgcc's _Unwind_Find_FDE: each range is covered exactly,
    overlapping new code replaces the old frame, remove() and clear() drop."""
    registry = _run(executable, "clobber")["registry"]
    assert len(registry) >= 8 and all(registry.values()), registry


def test_llvm_writers_are_asmgens_as_declared(executable, expected):
    """LLVM's compiled writers and asmgen's class write the same resolver,
    trampolines and stubs (run in the same process)."""
    result = _run(executable, "clobber")
    assert not jit_build.judge_writers(result, expected)


def test_the_judge_fails_a_wrong_declaration(executable, expected):
    """The declarations can fail: swap kept and lost, and every swapped row
    fails with the deliberate clobber."""
    result = _run(executable, "clobber")
    swapped = dataclasses.replace(
        expected,
        rows=tuple(
            dataclasses.replace(r, vector_upper="kept" if r.vector_upper == "lost" else "lost")
            for r in expected.rows
        ),
    )
    verdicts = jit_build.judge(result, swapped)
    assert all(verdicts.values()), [k for k, v in verdicts.items() if not v]
