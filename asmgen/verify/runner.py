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
from asmgen.spec.checks import CHECKS
from asmgen.spec.files import SpecFile
from asmgen.verify.emulate import emulate
from asmgen.verify.model import FAIL, NA, PASS, CheckResult, Subject
from asmgen.verify.native import run_native
from asmgen.verify.static import frame_check
from asmgen.verify.vector import vector_width_check

# Outcomes after the declarations are applied.
OK, VIOLATION, DECLARED, UNEXPECTED_PASS, SKIPPED = "ok", "FAIL", "declared", "XPASS", "n/a"
FAILING = (VIOLATION, UNEXPECTED_PASS)


@dataclass
class Outcome:
    result: CheckResult
    outcome: str
    reason: str = ""  # the spec's reason, for declared violations


@dataclass
class AbiReport:
    abi: str
    arch: str
    spec_path: Path
    source: str
    emulated: bool  # False: no emulator for this arch, static check only
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    seconds: float = 0.0

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


def _outcome(result: CheckResult, declared: dict[str, str]) -> Outcome:
    reason = declared.get(result.check, "")
    if result.status == FAIL:
        return Outcome(result, DECLARED if reason else VIOLATION, reason)
    if result.status == NA:
        # A check that did not run here (another host, no AVX harness) neither
        # confirms nor refutes a declaration.
        return Outcome(result, SKIPPED, reason)
    if reason:
        # A declaration that no longer holds is itself a failure: the spec must stay true.
        return Outcome(result, UNEXPECTED_PASS, reason)
    return Outcome(result, OK if result.status == PASS else SKIPPED)


def verify_subject(subject: Subject, native: bool = True) -> AbiReport:
    """`native=False` skips the real-CPU run, whose outcome depends on the host
    (the docs pages must be the same on every machine)."""
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
        for check in CHECKS:
            results[check] = CheckResult(check, NA, "none", [], why)
    results["frame_align"] = frame_check(subject)
    declared = {v.check: v.reason for v in spec.expected_violations}
    report = AbiReport(spec.abi, spec.arch, subject.spec_path, subject.source, emulated)
    report.outcomes = {check: _outcome(results[check], declared) for check in CHECKS}
    report.seconds = time.perf_counter() - start
    return report


def verify(subjects: list[Subject]) -> list[AbiReport]:
    return [verify_subject(s) for s in subjects]
