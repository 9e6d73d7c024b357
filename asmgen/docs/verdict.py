"""The verify verdict for the pages: `asmgen verify`'s checks on the built table.

The native and compiled runs are left out: their outcome depends on the host
and its toolchains, and the pages must be the same on every machine.
"""

from __future__ import annotations

from dataclasses import dataclass

from asmgen.build.table import Table
from asmgen.verify.runner import DECLARED, FAILING, OK, SKIPPED, subject_from_table, verify_subject

TALLY = (("ok", OK), ("declared", DECLARED), ("n/a", SKIPPED))


@dataclass(frozen=True)
class CheckRow:
    check: str
    outcome: str
    method: str
    note: str


@dataclass(frozen=True)
class Verdict:
    summary: str
    rows: tuple[CheckRow, ...]

    def outcome(self, check: str) -> str:
        return next(r.outcome for r in self.rows if r.check == check)


def _note(outcome) -> str:
    if outcome.outcome == DECLARED:
        return f"declared in the spec: {outcome.reason}"
    result = outcome.result
    if outcome.outcome in FAILING and result.findings:
        first = result.findings[0]
        more = f" (and {len(result.findings) - 1} more)" if len(result.findings) > 1 else ""
        return f"{first.what}: expected {first.expected}, got {first.got}{more}"
    return result.note if outcome.outcome == SKIPPED else ""


def verdict(table: Table) -> Verdict:
    report = verify_subject(subject_from_table(table), native=False)
    rows = tuple(
        CheckRow(check, o.outcome, o.result.method, " ".join(_note(o).split()))
        for check, o in report.outcomes.items()
    )
    failing = [r.check for r in rows if r.outcome in FAILING]
    declared = [r.check for r in rows if r.outcome == DECLARED]
    if failing:
        summary = "FAIL: " + ", ".join(failing)
    elif declared:
        summary = "known defects (declared): " + ", ".join(declared)
    else:
        summary = "pass"
    arch = table.spec.arch_info
    if not report.emulated and arch.no_emulator and arch.harness:
        # Not emulated here; `asmgen verify` runs it compiled (docs/verify.md).
        runs = ", ".join(t.method for t in arch.harness.targets)
        summary += f"; static checks here ({arch.no_emulator}); asmgen verify runs it: {runs}"
    elif not report.emulated:
        summary += f"; static check only, no emulator for {table.spec.arch}"
    counts = {name: sum(r.outcome == outcome for r in rows) for name, outcome in TALLY}
    tally = ", ".join(f"{name} {n}" for name, n in counts.items() if n)
    return Verdict(f"{summary} ({tally})", rows)


def verdicts(tables: list[Table]) -> dict[str, Verdict]:
    return {table.spec.abi: verdict(table) for table in tables}
