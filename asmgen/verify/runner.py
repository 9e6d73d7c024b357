"""Run every check on every subject, and weigh the results against the spec's
declared expected violations."""

from __future__ import annotations

import importlib.util
import time
from dataclasses import dataclass, field
from pathlib import Path

from asmgen.build.frame import compute_frame
from asmgen.build.table import Table
from asmgen.errors import AsmgenError
from asmgen.resources import TEMPLATES_DIR
from asmgen.spec.checks import CHECKS
from asmgen.spec.files import SpecFile
from asmgen.verify.compiled import TargetRun, run_compiled
from asmgen.verify.emulate import emulate
from asmgen.verify.model import FAIL, NA, PASS, CheckResult, Subject
from asmgen.verify.native import run_native
from asmgen.verify.shadowstack import native_shadow_stack
from asmgen.verify.static import callers_check, frame_check
from asmgen.verify.vector import vector_width_check

# Outcomes after the declarations are applied.
OK, VIOLATION, DECLARED, UNEXPECTED_PASS, SKIPPED = "ok", "FAIL", "declared", "XPASS", "n/a"
FAILING = (VIOLATION, UNEXPECTED_PASS)


@dataclass
class Outcome:
    result: CheckResult  # the run that decides: the first failing one, else the first that ran
    outcome: str
    reason: str = ""  # the spec's reason, for declared violations
    runs: list[CheckResult] = field(default_factory=list)  # every method's result

    @property
    def methods(self) -> list[str]:
        """The methods that ran this check (n/a runs left out)."""
        return [r.method for r in self.runs if r.status != NA]


@dataclass
class AbiReport:
    abi: str
    arch: str
    spec_path: Path
    source: str
    emulated: bool  # False: no emulator for this arch, static check only
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    seconds: float = 0.0
    # The spec's declared deviations from its convention: (field, reason).
    deviations: list[tuple[str, str]] = field(default_factory=list)
    # The compiled harness run of this table's target (None: not run).
    target: TargetRun | None = None

    @property
    def failed(self) -> bool:
        return any(o.outcome in FAILING for o in self.outcomes.values())


def subject_from_table(table: Table, source: str = "built in memory") -> Subject:
    def instantiate(fn_addr: int, ctx_addr: int) -> bytes:
        return table.instantiate({"ReentryFnAddr": fn_addr, "ReentryCtxAddr": ctx_addr})

    units = table if table.units is not None else None
    return Subject(table.spec, table.spec_path, table.frame, instantiate, source, units)


def load_generated(path: Path):
    spec = importlib.util.spec_from_file_location("asmgen_verify_generated", path)
    if spec is None or not path.is_file():
        raise AsmgenError("generated module not found; run `asmgen generate`", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise AsmgenError(f"generated module: {exc.msg}", path, exc.lineno) from None
    except Exception as exc:
        raise AsmgenError(f"generated module fails to load: {exc}", path) from None
    if not isinstance(getattr(module, "TABLES", None), dict):
        raise AsmgenError("generated module has no TABLES; run `asmgen generate`", path)
    return module


def subjects_from_generated(items: list[SpecFile], module_path: Path) -> list[Subject]:
    """Code from the generated Python module (its own instantiate, write_trampolines
    and write_stubs), contracts from the specs."""
    tables = load_generated(module_path).TABLES
    subjects = []
    for item in items:
        table = tables.get(item.spec.abi)
        if table is None:
            raise AsmgenError(
                f"ABI {item.spec.abi!r} is not in the generated module; run `asmgen generate`",
                module_path,
            )
        frame = compute_frame(item.spec)
        units = table if getattr(table, "trampoline", None) is not None else None
        source = str(module_path)
        subjects.append(Subject(item.spec, item.path, frame, table.instantiate, source, units))
    return subjects


def _outcome(runs: list[CheckResult], declared: dict[str, str]) -> Outcome:
    """A check's outcome over every method that ran it: it fails if any method
    finds the violation, and a declared violation that no method finds is stale."""
    by_status = {status: [r for r in runs if r.status == status] for status in (FAIL, PASS, NA)}
    result = (by_status[FAIL] or by_status[PASS] or runs)[0]
    reason = declared.get(result.check, "")
    if result.status == FAIL:
        return Outcome(result, DECLARED if reason else VIOLATION, reason, runs)
    if result.status == NA:
        # A check that did not run here (another host, no AVX harness) neither
        # confirms nor refutes a declaration.
        return Outcome(result, SKIPPED, reason, runs)
    if reason:
        # A declaration that no longer holds is itself a failure: the spec must stay true.
        return Outcome(result, UNEXPECTED_PASS, reason, runs)
    return Outcome(result, OK, runs=runs)


def verify_subject(
    subject: Subject,
    native: bool = True,
    compiled: dict[str, CheckResult] | None = None,
    target: TargetRun | None = None,
) -> AbiReport:
    """`native=False` skips the real-CPU run, whose outcome depends on the host
    (the docs pages must be the same on every machine).  `compiled` adds the
    compiled harness's results (asmgen.verify.compiled) of `target`."""
    start = time.perf_counter()
    spec = subject.spec
    facts = spec.arch_info.emulator
    results: dict[str, CheckResult] = {}
    emulated = facts is not None and spec.arch_info.scaffold is not None
    if emulated:
        results.update(emulate(subject, facts))
        here = "not run here (host-dependent)"
        results["native"] = (
            run_native(subject, facts) if native else CheckResult("native", NA, "none", [], here)
        )
        results["vector_width"] = (
            vector_width_check(subject, facts)
            if native
            else CheckResult("vector_width", NA, "none", [], here)
        )
    else:
        why = f"no emulator for {spec.arch}: static frame check only"
        if spec.arch_info.no_emulator:
            harness = spec.arch_info.harness
            runs = ", ".join(t.method for t in harness.targets) if harness else "none"
            why = f"not emulated ({spec.arch_info.no_emulator}); compiled runs: {runs}"
        # Everything unicorn and the native runs would check; frame_align is
        # static and `convention` belongs to the compiled runs.
        for check in CHECKS:
            if check not in ("frame_align", "convention"):
                results[check] = CheckResult(check, NA, "none", [], why)
    results["frame_align"] = frame_check(subject)
    runs = {check: [results[check]] if check in results else [] for check in CHECKS}
    runs["caller_conventions"].append(callers_check(subject))
    if native and spec.arch_info.shadow_stack is not None:
        runs["shadow_stack"].append(native_shadow_stack(subject))
    for check, result in (compiled or {}).items():
        runs[check].append(result)
    if not runs["convention"]:
        why = "not run here (host-dependent)" if not native else "compiled runs not requested"
        runs["convention"] = [CheckResult("convention", NA, "none", [], why)]
    declared = {v.check: v.reason for v in spec.expected_violations}
    report = AbiReport(spec.abi, spec.arch, subject.spec_path, subject.source, emulated)
    report.outcomes = {check: _outcome(runs[check], declared) for check in CHECKS}
    report.deviations = [(d.field, " ".join(d.reason.split())) for d in spec.deviations]
    report.target = target
    report.seconds = time.perf_counter() - start
    return report


def verify(
    subjects: list[Subject],
    compiled: bool = True,
    templates: Path = TEMPLATES_DIR,
    native: bool = True,
) -> list[AbiReport]:
    """Every check of every subject; `compiled` also runs each target's compiled
    harness (one process per target for all of its tables); `native=False`
    (with `compiled=False`) leaves the emulator and the static checks only."""
    if not compiled:
        return [verify_subject(s, native=native) for s in subjects]
    start = time.perf_counter()
    found = run_compiled(subjects, templates)
    share = (time.perf_counter() - start) / max(1, len(subjects))
    reports = []
    for subject, results in zip(subjects, found.results, strict=True):
        spec = subject.spec
        target = next(
            t
            for t in found.targets
            if (t.arch, t.convention, t.endian) == (spec.arch, spec.convention, spec.endian)
        )
        report = verify_subject(subject, compiled=results, target=target)
        report.seconds += share
        reports.append(report)
    return reports
