"""Cost of each x86-64 resolver variant against LLVM's table, per round trip.

Every x86-64 spec that is not one of LLVM's own tables is a variant.  Its
reference is LLVM's table (the bytes in LLVM's source, from the reference
facts) of the spec with the same call convention.  Both run one emulated
round trip (`asmgen.roundtrip`); the figures are deterministic.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from roundtrip import RoundTrip, run, run_table

from asmgen.build.table import Table

# LLVM's tables; the seed's first Win64 attempt never was one.
REFERENCE_TABLES = ("X86_64_SysV", "X86_64_Win32")


@dataclass(frozen=True)
class Row:
    abi: str
    reference: str
    size: int
    trip: RoundTrip
    llvm: RoundTrip

    @property
    def moved_ratio(self) -> float:
        return self.trip.stack_moved / self.llvm.stack_moved

    @property
    def insn_ratio(self) -> float:
        return self.trip.instructions / self.llvm.instructions


def _llvm_trip(facts: dict, reference: Table) -> RoundTrip:
    """LLVM's bytes, reached through the reference table's stubs and trampolines
    (LLVM's own, for LLVM's tables)."""
    offsets = facts["offsets"]
    patches = {
        "ReentryFnAddr": offsets["ReentryFnAddrOffset"],
        "ReentryCtxAddr": offsets["ReentryCtxAddrOffset"],
    }
    call = reference.spec.call
    code = bytes.fromhex(facts["hex"])
    return run(code, patches, reference, call.int_args, call.callee_saved, 0x0)


def _convention(spec) -> tuple:
    """What makes two specs the same calling convention."""
    call = spec.call
    return call.int_args, call.fp_args, call.callee_saved, call.shadow_space, call.stack_align


def rows(tables: list[Table], facts_path: Path) -> list[Row]:
    facts = json.loads(facts_path.read_text())["abis"]
    by_abi = {t.spec.abi: t for t in tables}
    references = [by_abi[name] for name in REFERENCE_TABLES if name in by_abi]
    result = []
    for ref in references:
        llvm = _llvm_trip(facts[ref.spec.abi], ref)
        result.append(Row(ref.spec.abi, ref.spec.abi, len(ref.code), run_table(ref), llvm))
    for table in sorted(tables, key=lambda t: t.spec.abi):
        spec = table.spec
        if spec.arch != "x86_64" or spec.abi in facts:
            continue
        ref = next((r for r in references if _convention(r.spec) == _convention(spec)), None)
        if ref is None:
            continue
        llvm = _llvm_trip(facts[ref.spec.abi], ref)
        result.append(Row(spec.abi, ref.spec.abi, len(table.code), run_table(table), llvm))
    return result


def markdown(table_rows: list[Row]) -> str:
    head = (
        "| resolver | compared with | bytes | instructions | x LLVM | stack read | "
        "stack written | stack moved | % of LLVM |\n"
        "|---|---|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    body = "".join(
        f"| {r.abi} | {r.reference} | {r.size:#x} | {r.trip.instructions} | "
        f"{r.insn_ratio:.2f} | {r.trip.stack_read} | {r.trip.stack_written} | "
        f"{r.trip.stack_moved} | {100 * r.moved_ratio:.0f}% |\n"
        for r in table_rows
    )
    return head + body
