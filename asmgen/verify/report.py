"""Render verify's results: a table of ABI x check with details, or JSON."""

from __future__ import annotations

import json

from asmgen import __version__
from asmgen.arches import ARCHES
from asmgen.spec.checks import CHECKS
from asmgen.verify.model import NA, CheckResult
from asmgen.verify.runner import DECLARED, OK, SKIPPED, UNEXPECTED_PASS, VIOLATION, AbiReport

CELL = {OK: "ok", VIOLATION: "FAIL", DECLARED: "xfail", UNEXPECTED_PASS: "XPASS", SKIPPED: "-"}


def exit_status(reports: list[AbiReport]) -> int:
    return 1 if any(r.failed for r in reports) else 0


def _counts(reports: list[AbiReport]) -> dict[str, int]:
    counts = dict.fromkeys(CELL, 0)
    for report in reports:
        for outcome in report.outcomes.values():
            counts[outcome.outcome] += 1
    return counts


def _compiled_method(report: AbiReport) -> str:
    """The compiled run's method, or "-" when it did not run."""
    target = report.target
    return target.method if target is not None and not target.note else "-"


def format_text(reports: list[AbiReport]) -> str:
    width = max([len("ABI"), *(len(r.abi) for r in reports)])
    columns = {name: max(len(check.short), 5) for name, check in CHECKS.items()}
    heads = [CHECKS[name].short.ljust(w) for name, w in columns.items()]
    runs = max([len("compiled"), *(len(_compiled_method(r)) for r in reports)])
    lines = ["  ".join(["ABI".ljust(width), *heads, "compiled".ljust(runs), "time"])]
    for report in reports:
        cells = [CELL[report.outcomes[name].outcome].ljust(w) for name, w in columns.items()]
        method = _compiled_method(report).ljust(runs)
        lines.append("  ".join([report.abi.ljust(width), *cells, method, f"{report.seconds:.3f}s"]))
    lines.append("")
    lines.append(
        "ok = contract kept; FAIL = violation; xfail = violation declared in the spec's "
        "expected_violations; XPASS = declared but not found; - = not applicable."
    )
    lines.append(
        "frame* is a STATIC check only: the frame size computed from the spec against "
        "call.stack_align; no code runs.  All other columns run the generated code: "
        "unicorn 2 emulation, and compiled code for the target (the `compiled` column: "
        "native, wine or qemu-<arch>; docs/verify.md); a check fails if any method finds "
        "the violation."
    )
    details = []
    for report in reports:
        if not report.emulated:
            why = ARCHES[report.arch].no_emulator or f"unicorn has no {report.arch}"
            ran = report.target is not None and not report.target.note
            details.append(
                f"{report.abi}: not emulated ({why}); "
                + (
                    f"the static checks ran, and the compiled runs ({report.target.method})."
                    if ran and report.target is not None
                    else "only the static frame check ran."
                )
            )
        if report.target is not None and report.target.note:
            details.append(f"{report.abi}: no compiled run: {report.target.note}")
        for field, reason in report.deviations:
            details.append(f"{report.abi}: deviates from its convention: {field}: {reason}")
        for check, outcome in report.outcomes.items():
            if outcome.outcome in (OK, SKIPPED):
                continue
            label = {
                VIOLATION: "VIOLATION",
                DECLARED: "declared violation",
                UNEXPECTED_PASS: "declared violation NOT FOUND",
            }[outcome.outcome]
            details.append(f"{report.abi} {check}: {label}")
            for run in outcome.runs or [outcome.result]:
                if run.status == NA:
                    continue
                details.append(f"  {run.method}: {run.status}")
                for f in run.findings:
                    details.append(f"    {f.what}: expected {f.expected}, got {f.got}")
                if run.note:
                    details.append(f"    note: {run.note}")
            if outcome.reason:
                details.append(f"    declared: {outcome.reason}")
    notes: dict[str, list[str]] = {}
    for report in reports:
        for run in report.outcomes["shadow_stack"].runs:
            if run.method == "native" and run.status == NA and run.note:
                notes.setdefault(run.note, []).append(report.abi)
    for note, abis in notes.items():
        details.append(f"shadow_stack, emulated only ({', '.join(abis)}): {note}")
    if details:
        lines += ["", *details]
    counts = _counts(reports)
    total = sum(r.seconds for r in reports)
    lines += [
        "",
        f"{len(reports)} ABIs: {counts[OK]} checks passed, {counts[DECLARED]} declared "
        f"violations found, {counts[VIOLATION]} violations, {counts[UNEXPECTED_PASS]} "
        f"declared violations not found ({total:.3f}s)",
    ]
    if any(r.failed for r in reports):
        lines.append("verify: FAILED")
    return "\n".join(lines) + "\n"


def _run(result: CheckResult) -> dict:
    return {
        "method": result.method,
        "status": result.status,
        "findings": [
            {"what": f.what, "expected": f.expected, "got": f.got} for f in result.findings
        ],
        **({"note": result.note} if result.note else {}),
    }


def _targets(reports: list[AbiReport]) -> list[dict]:
    """Each compiled harness run once: its target, timings and the convention's facts."""
    seen, out = set(), []
    for report in reports:
        target = report.target
        if target is None or id(target) in seen:
            continue
        seen.add(id(target))
        out.append(
            {
                "arch": target.arch,
                "convention": target.convention,
                "endian": target.endian,
                "method": target.method,
                "ran": not target.note,
                **({"why_not": target.note} if target.note else {}),
                "tables": target.tables,
                "seconds": {k: round(v, 4) for k, v in target.seconds.items()},
                "facts": [{"fact": f.name, "ok": f.ok, "detail": f.detail} for f in target.facts],
            }
        )
    return out


def format_json(reports: list[AbiReport]) -> str:
    document = {
        "generated_by": f"asmgen {__version__} verify",
        "ok": not any(r.failed for r in reports),
        "abis": {
            r.abi: {
                "spec": str(r.spec_path),
                "code": r.source,
                "emulated": r.emulated,
                "compiled": _compiled_method(r),
                "seconds": round(r.seconds, 4),
                "deviations": [{"field": f, "reason": why} for f, why in r.deviations],
                "checks": {
                    check: {
                        "outcome": o.outcome,
                        **_run(o.result),
                        # Every method that ran the check, joined (unicorn+wine).
                        "method": "+".join(o.methods) or o.result.method,
                        "runs": [_run(run) for run in o.runs],
                        **({"declared": o.reason} if o.reason else {}),
                    }
                    for check, o in r.outcomes.items()
                },
            }
            for r in reports
        },
        "compiled_targets": _targets(reports),
    }
    return json.dumps(document, indent=2) + "\n"


FORMATS = {"text": format_text, "json": format_json}
