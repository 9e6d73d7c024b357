"""Render verify's results: a table of ABI x check with details, or JSON."""

from __future__ import annotations

import json

from asmgen import __version__
from asmgen.spec.checks import CHECKS
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


def format_text(reports: list[AbiReport]) -> str:
    width = max([len("ABI"), *(len(r.abi) for r in reports)])
    columns = {name: max(len(check.short), 5) for name, check in CHECKS.items()}
    heads = [CHECKS[name].short.ljust(w) for name, w in columns.items()]
    lines = ["  ".join(["ABI".ljust(width), *heads, "time"])]
    for report in reports:
        cells = [CELL[report.outcomes[name].outcome].ljust(w) for name, w in columns.items()]
        lines.append("  ".join([report.abi.ljust(width), *cells, f"{report.seconds:.3f}s"]))
    lines.append("")
    lines.append(
        "ok = contract kept; FAIL = violation; xfail = violation declared in the spec's "
        "expected_violations; XPASS = declared but not found; - = not applicable."
    )
    lines.append(
        "frame* is a STATIC check only: the frame size computed from the spec against "
        "call.stack_align; no code runs.  All other columns run the generated code "
        "(unicorn 2 emulation; native: the real CPU)."
    )
    details = []
    for report in reports:
        if not report.emulated:
            details.append(
                f"{report.abi}: not emulated (unicorn has no {report.arch}); "
                "only the static frame check ran."
            )
        for check, outcome in report.outcomes.items():
            if outcome.outcome in (OK, SKIPPED):
                continue
            label = {
                VIOLATION: "VIOLATION",
                DECLARED: "declared violation",
                UNEXPECTED_PASS: "declared violation NOT FOUND",
            }[outcome.outcome]
            details.append(f"{report.abi} {check} ({outcome.result.method}): {label}")
            for f in outcome.result.findings:
                details.append(f"    {f.what}: expected {f.expected}, got {f.got}")
            if outcome.result.note:
                details.append(f"    note: {outcome.result.note}")
            if outcome.reason:
                details.append(f"    declared: {outcome.reason}")
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


def format_json(reports: list[AbiReport]) -> str:
    document = {
        "generated_by": f"asmgen {__version__} verify",
        "ok": not any(r.failed for r in reports),
        "abis": {
            r.abi: {
                "spec": str(r.spec_path),
                "code": r.source,
                "emulated": r.emulated,
                "seconds": round(r.seconds, 4),
                "checks": {
                    check: {
                        "outcome": o.outcome,
                        "status": o.result.status,
                        "method": o.result.method,
                        "findings": [
                            {"what": f.what, "expected": f.expected, "got": f.got}
                            for f in o.result.findings
                        ],
                        **({"note": o.result.note} if o.result.note else {}),
                        **({"declared": o.reason} if o.reason else {}),
                    }
                    for check, o in r.outcomes.items()
                },
            }
            for r in reports
        },
    }
    return json.dumps(document, indent=2) + "\n"


FORMATS = {"text": format_text, "json": format_json}
