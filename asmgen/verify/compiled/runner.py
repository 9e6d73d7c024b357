"""Run every subject's compiled checks: one harness process per target.

Groups the tables by (arch, convention, byte order), builds and starts that
target's harness once, confirms the convention's facts (facts.py), runs every
table's chains (chains.py) and weighs their findings into check results.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from asmgen.verify.compiled import chains, facts
from asmgen.verify.compiled.build import Built, build
from asmgen.verify.compiled.session import (
    HarnessError,
    Session,
    ensure_wine_prefix,
    unavailable,
)
from asmgen.verify.model import FAIL, NA, PASS, CheckResult, Finding, Subject

# The checks the compiled runs answer (the rest are unicorn's, native's or static).
COMPILED_CHECKS = (
    "ctx_arg",
    "trampoline_arg",
    "stack_align",
    "shadow_space",
    "int_args",
    "fp_args",
    "callee_saved",
    "stack_pointer",
    "return_address",
    "fp_control",
    "landing_pc",
    "convention",
)
SEED = 0x5EED


@dataclass
class TargetRun:
    """One target's harness run: its facts and timings, or why it did not run."""

    arch: str
    convention: str
    endian: str
    method: str
    facts: list[facts.Fact] = field(default_factory=list)
    note: str = ""  # why it did not run
    seconds: dict[str, float] = field(default_factory=dict)
    tables: int = 0


@dataclass
class Compiled:
    """Per subject (in order), its compiled check results; and the target runs."""

    results: list[dict[str, CheckResult]]
    targets: list[TargetRun]


def _all(method: str, status: str, note: str, findings=()) -> dict[str, CheckResult]:
    return {c: CheckResult(c, status, method, list(findings), note) for c in COMPILED_CHECKS}


def run_compiled(subjects: list[Subject], templates: Path) -> Compiled:
    """Every subject's compiled checks; one harness per (arch, convention, byte order)."""
    groups: dict[tuple[str, str, str], list[int]] = {}
    for i, subject in enumerate(subjects):
        spec = subject.spec
        groups.setdefault((spec.arch, spec.convention, spec.endian), []).append(i)
    results: list[dict[str, CheckResult]] = [{} for _ in subjects]
    targets = []
    for key, members in groups.items():
        run = _run_target(key, [subjects[i] for i in members], templates)
        targets.append(run[0])
        for i, found in zip(members, run[1], strict=True):
            results[i] = found
    return Compiled(results, targets)


def _run_target(
    key: tuple[str, str, str], subjects: list[Subject], templates: Path
) -> tuple[TargetRun, list[dict[str, CheckResult]]]:
    arch_name, convention, endian = key
    spec = subjects[0].spec
    arch, conv = spec.arch_info, spec.convention_info
    harness = arch.harness
    target = harness.target(convention, endian) if harness else None
    if target is None:
        why = arch.no_harness or (
            f"asmgen/arches/{arch_name}.py has no harness target for {convention} ({endian}-endian)"
        )
        method = "none"
        return TargetRun(arch_name, convention, endian, method, note=why), [
            _all(method, NA, why) for _ in subjects
        ]
    run = TargetRun(arch_name, convention, endian, target.method)
    why = unavailable(target)
    if why:
        run.note = why
        return run, [_all(target.method, NA, why) for _ in subjects]
    try:
        built = build(arch, target, conv, templates)
        run.seconds["build"] = built.seconds
        if target.windows:
            run.seconds["wine prefix"] = ensure_wine_prefix()
        return run, _run_built(built, subjects, run)
    except HarnessError as exc:
        run.note = str(exc)
        failed = _all(target.method, NA, f"the harness did not run: {exc}")
        failed["convention"] = CheckResult(
            "convention", FAIL, target.method, [Finding("harness", "builds and runs", str(exc))]
        )
        return run, [dict(failed) for _ in subjects]


def _run_built(
    built: Built, subjects: list[Subject], run: TargetRun
) -> list[dict[str, CheckResult]]:
    method = built.target.method
    session = Session(built.target, built.exe)
    run.seconds["start"] = session.hello_seconds
    rng = random.Random(SEED)
    fact_states = facts.plan(built, session, rng)
    planned: list[list[chains.Run] | str] = []
    slot = 0
    for subject in subjects:
        if subject.units is None:
            planned.append("the table has no trampolines and stubs to run")
            continue
        try:
            planned.append(chains.plan(built, session, subject, slot, rng))
        except (KeyError, ValueError, TypeError) as exc:
            # The table's own writers refused (unicorn reports the failure).
            planned.append(f"linking the chain failed: {type(exc).__name__}: {exc}")
        slot += 2
    results = session.finish()
    run.seconds["runs"] = session.seconds - session.hello_seconds
    run.tables = slot // 2
    run.facts = facts.confirm(built, results, fact_states)
    convention = _convention_result(built, run.facts)
    where = chains.Where(session)
    out = []
    for runs in planned:
        if isinstance(runs, str):
            found = _all(method, NA, runs)
        else:
            evaluated = [
                (r, chains.evaluate(built, session, r, results.get(r.tag), where)) for r in runs
            ]
            found = _combine(built, evaluated)
        found["convention"] = convention
        out.append(found)
    return out


def _convention_result(built: Built, found: list[facts.Fact]) -> CheckResult:
    method = built.target.method
    bad = [Finding(f.name, "as the convention file says", f.detail) for f in found if not f.ok]
    names = ", ".join(f.name for f in found if f.ok)
    note = f"{built.conv.convention} confirmed by {built.target.compiler}: {names}"
    if bad:
        note = f"{built.conv.path} disagrees with what {built.target.compiler} compiles"
    return CheckResult("convention", FAIL if bad else PASS, method, bad, note)


def _combine(
    built: Built, evaluated: list[tuple[chains.Run, chains.Findings]]
) -> dict[str, CheckResult]:
    """The checks of one table over all its runs."""
    method = built.target.method
    real = [(r, f) for r, f in evaluated if r.placed.variant == "real"]
    worst = [(r, f) for r, f in evaluated if r.placed.variant == "worst"]
    out = {}
    for check in COMPILED_CHECKS:
        if check in ("shadow_space", "convention"):
            continue
        findings, causes = _collect(real, check)
        status = FAIL if findings else PASS
        note = "; ".join(causes) if findings else ""
        if not findings and check == "fp_args" and not built.conv.args.fp_regs:
            status, note = NA, "the convention has none"
        out[check] = CheckResult(check, status, method, findings, note)
    if not built.conv.stack.home_area:
        out["shadow_space"] = CheckResult(
            "shadow_space", NA, method, [], "the convention has no home area"
        )
        return out
    seen = {(c, f.what) for _, found in real for c, fs in found.by_check.items() for f in fs}
    extra, causes = [], []
    for run, found in worst:
        for check, fs in found.by_check.items():
            for f in fs:
                if (check, f.what) not in seen:
                    extra.append(
                        Finding(f"{check}: {f.what} ({run.landing.name})", f.expected, f.got)
                    )
                    seen.add((check, f.what))
        causes += [c for c in found.causes if c not in causes]
    note = "; ".join(causes) if extra else "a -O0 re-entry function that spills into all of it"
    out["shadow_space"] = CheckResult("shadow_space", FAIL if extra else PASS, method, extra, note)
    return out


def _collect(
    evaluated: list[tuple[chains.Run, chains.Findings]], check: str
) -> tuple[list[Finding], list[str]]:
    """One check's findings over the runs, each finding once (named by the
    landing that saw it first), and the causes of the runs that found them."""
    findings: list[Finding] = []
    causes: list[str] = []
    seen = set()
    for run, found in evaluated:
        for f in found.by_check.get(check, []):
            if f.what not in seen:
                seen.add(f.what)
                where = run.landing.name + (", x87" if run.x87 else "")
                findings.append(Finding(f"{f.what} ({where})", f.expected, f.got))
                causes += [c for c in found.causes if c not in causes]
    return findings, causes
