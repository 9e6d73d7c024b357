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
import json
import re

import jit_build
import pytest
import shared
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


@pytest.fixture(scope="session")
def runs(executable, tmp_path_factory):
    """The program's run in a mode (and CPU), once for the session: pytest-xdist's
    workers share it (shared.py), so each mode runs once."""
    done: dict[tuple, dict] = {}

    def run(mode: str, cpu: str | None = None, iters: int = 100) -> dict:
        key = (mode, cpu, iters)
        if key not in done:
            name = f"lazy-jit-{executable.parent.name}-{mode}-{cpu or 'host'}-{iters}"
            text = shared.once(
                tmp_path_factory,
                name,
                lambda: json.dumps(jit_build.run(executable, mode, cpu, iters)),
            )
            done[key] = json.loads(text)
        return done[key]

    return run


def _judged(runs, expected, title: str, mode: str, cpu=None, iters=100):
    result = runs(mode, cpu, iters)
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


def test_the_program_exercises_the_calling_convention(runs):
    result = runs("clobber")
    assert result["functions"] >= 50
    assert result["stack_arguments"] > 0
    # Compiled for this CPU: wide vectors travel in its widest registers.
    flags = cpu_flags()
    assert result["vec_reg_bytes"] == (64 if "avx512f" in flags else 32 if "avx" in flags else 16)
    assert (result["wide_register_arguments"] > 0) == ("avx" in flags)


# ----------------------------------------------------------------------- runs


def test_declared_outcomes_with_the_deliberate_clobber(runs, expected):
    """Every row, both paths, on the host CPU: the AVX-safe classes keep every
    argument; LLVM's, the fxsave and the lean classes lose the upper bytes of
    every ymm/zmm argument, and nothing else; unwinding ends as declared.  The
    callers of other conventions lose what each row declares."""
    result, verdicts = _judged(runs, expected, "Deliberate clobber, host CPU", "clobber")
    assert not _failures(verdicts)
    assert not _failures(jit_build.judge_callers(result, expected))


def test_natural_mode(runs, expected):
    """No deliberate clobber: what the compile's own C++ (glibc's AVX/EVEX
    string routines) does to the vector registers depends on glibc and the
    CPU, so `lost` rows are printed, not asserted; everything else is."""
    result, verdicts = _judged(
        runs, expected, "Natural (no deliberate clobber), host CPU", "natural"
    )
    assert not _failures(verdicts)
    assert not _failures(jit_build.judge_callers(result, expected))


@pytest.mark.parametrize(
    ("cpu", "needs"),
    [("x86-64-v3", "avx2"), ("x86-64", "sse2")],
    ids=["avx2-codegen", "sse2-codegen"],
)
def test_declared_outcomes_on_narrower_vectors(runs, expected, cpu, needs):
    """The JIT'd code built for an AVX2 CPU (512-bit vectors in ymm pairs)
    and for plain x86-64 (xmm only: nothing to lose for any class)."""
    if needs not in cpu_flags():
        # Said, not silent: -ra lists the reason; the host run covers the CPU.
        pytest.skip(f"this CPU lacks {needs.upper()}: it cannot run code built for {cpu}")
    result, verdicts = _judged(
        runs, expected, f"Deliberate clobber, JIT'd code for {cpu}", "clobber", cpu
    )
    assert result["vec_reg_bytes"] == (32 if cpu == "x86-64-v3" else 16)
    assert not _failures(verdicts)
    assert not _failures(jit_build.judge_callers(result, expected))


def test_eh_frame_registration_as_documented(runs):
    """registerResolverEHFrame / registerTrampolineEHFrame / EHFrameRegistry,
    asked through libgcc's _Unwind_Find_FDE: each range is covered exactly,
    overlapping new code replaces the old frame, remove() and clear() drop."""
    registry = runs("clobber")["registry"]
    assert len(registry) >= 8 and all(registry.values()), registry


def test_llvm_writers_are_asmgens_as_declared(runs, expected):
    """LLVM's compiled writers and asmgen's class write the same resolver,
    trampolines and stubs (run in the same process)."""
    result = runs("clobber")
    assert not jit_build.judge_writers(result, expected)


def test_the_judge_fails_a_wrong_declaration(runs, expected):
    """The declarations can fail: swap kept and lost, and every swapped row
    fails with the deliberate clobber."""
    result = runs("clobber")
    swapped = dataclasses.replace(
        expected,
        rows=tuple(
            dataclasses.replace(r, vector_upper="kept" if r.vector_upper == "lost" else "lost")
            for r in expected.rows
        ),
    )
    verdicts = jit_build.judge(result, swapped)
    assert all(verdicts.values()), [k for k, v in verdicts.items() if not v]


# ---------------------------------------------------------- callers' conventions


def _convention_of_host():
    """The caller conventions of the host's C convention (System V here)."""
    (spec, *_) = jit_build.native_family(f.spec for f in spec_files())
    return spec.convention_info


def test_callers_hold_values_where_their_convention_keeps_them(runs):
    """Read from the JIT'd callers' code: LLVM keeps the values in registers
    the convention keeps (never in one the facts say it does not), wider than
    128 bits only where the facts allow, and uses the registers the
    convention keeps beyond C's: coldcc r11 and xmm8-15, preserve_mostcc rax,
    rcx, ..., r10, preserve_allcc xmm8-15 (as ymm with AVX).  So the cases
    test what the issue is about, and the facts agree with LLVM's own code."""
    result = runs("clobber")
    holdings = jit_build.caller_holdings(result)
    conv = _convention_of_host()
    c_keeps = set(conv.callee_saved)
    flags = cpu_flags()
    for case, cc in (("coldcc", "coldcc"), ("preserve_mostcc", "preserve_mostcc")):
        held = holdings[case]
        caller = conv.caller_conventions[cc]
        widths = caller.widths(flags)
        for reg in filter(None, held):
            assert reg[0] in caller.callee_saved, (case, reg)
            assert reg[1] <= widths.get(reg[0], 128 if reg[0].startswith("xmm") else 64)
    held = {reg[0]: reg[1] for reg in filter(None, holdings["coldcc"])}
    assert "r11" in held and {f"xmm{i}" for i in range(8, 16)} & set(held)
    held = {reg[0] for reg in filter(None, holdings["preserve_mostcc"])}
    assert held - c_keeps and held - c_keeps <= {
        "rax",
        "rcx",
        "rdx",
        "rsi",
        "rdi",
        "r8",
        "r9",
        "r10",
    }
    allcc = conv.caller_conventions["preserve_allcc"]
    held = {reg[0]: reg[1] for reg in filter(None, holdings["preserve_allcc"])}
    assert set(held) <= set(allcc.callee_saved)
    high = {f"xmm{i}" for i in range(8, 16)} & set(held)
    assert high
    wide = 256 if "avx" in flags else 128
    assert (
        {held[r] for r in high}
        == {wide}
        == {min(wide, allcc.widths(flags).get(r, 128)) for r in high}
    )


def test_declared_callers_agree_with_the_specs(expected):
    """No class claims a convention the lazy JIT shows it breaking: a row of an
    asmgen class declares `kept` or `upper-lost` exactly for the conventions
    its spec serves (`upper-lost` only where the spec declares vector_width,
    `kept` where it does not), and `lost` for the others."""
    specs = {f.spec.abi: f.spec for f in spec_files()}
    for row in expected.rows:
        if not row.abi:
            continue
        spec = specs[row.abi]
        narrow = any(v.check == "vector_width" for v in spec.expected_violations)
        for cc, outcome in row.callers.items():
            if cc not in spec.serves:
                assert outcome == "lost", (row.abi, cc)
            elif outcome == "upper-lost":
                assert narrow, (row.abi, cc)
            else:
                assert outcome == "kept", (row.abi, cc)


def test_lost_values_are_the_registers_the_spec_loses(runs, expected):
    """With the deliberate clobber, a class loses exactly the values held in
    the registers its spec neither saves nor leaves to C's callee-saved ones
    (spec/serving.py, what the contract checks read): the JIT and the static
    reading agree, register by register (upper halves aside: vector_width)."""
    from asmgen.spec.serving import lost_registers

    result = runs("clobber")
    holdings = jit_build.caller_holdings(result)
    specs = {jit_build.orcabi_class(f.spec): f.spec for f in spec_files()}
    checked = 0
    for got in result["rows"]:
        spec = specs.get(got["label"])
        if spec is None or not got.get("callers"):
            continue
        for case in got["callers"]:
            if case["case"] in expected.callee_defects:
                continue
            held = holdings[case["case"]]
            caller = spec.convention_info.caller_conventions[case["cc"]]
            lost = set(lost_registers(spec, caller))
            want = {k for k, reg in enumerate(held) if reg and reg[0] in lost}
            got_lost = {k for k, status in enumerate(case["first"]) if status in ("wrong", "low")}
            assert got_lost == want, (got["label"], case["case"])
            checked += bool(want)
    assert checked >= 2  # the lean class under coldcc and preserve_allcc


def test_the_callers_judge_fails_wrong_declarations(runs, expected):
    """Declare every class kept for every convention, and the lean class's
    losses fail; declare every class lost, and the others fail; drop the
    callee defect, and every row fails its ymm case."""
    import dataclasses

    result = runs("clobber")
    for outcome in ("kept", "lost"):
        rows = tuple(
            dataclasses.replace(r, callers=dict.fromkeys(r.callers, outcome)) for r in expected.rows
        )
        verdicts = jit_build.judge_callers(result, dataclasses.replace(expected, rows=rows))
        failing = {label for (label, _), why in verdicts.items() if why}
        if outcome == "kept":
            assert "X86_64_SysV_Lean_ORCABI" in failing
        else:
            assert len(failing) == len(expected.rows)
    verdicts = jit_build.judge_callers(result, dataclasses.replace(expected, callee_defects={}))
    if "avx" in cpu_flags():
        assert all(verdicts[(r.label, "preserve_allcc_ymm_callee")] for r in expected.rows)
