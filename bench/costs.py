"""Cost of each x86-64 resolver variant against LLVM's table, per round trip.

Every x86-64 spec that is not one of LLVM's own tables is a variant.  Its
reference is LLVM's table (the bytes in LLVM's source, from the reference
facts) of the spec with the same call convention.  Both run one emulated
round trip (`asmgen.roundtrip`); the figures are deterministic.

A narrow variant (one that does not serve every caller convention of its
platform) is measured twice: as it is, and widened (`widened`): its spec with
the registers it loses for the other conventions added to its saves, built
in memory, to show what serving them all would leave of its savings.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml
from roundtrip import RoundTrip, run, run_table

from asmgen.build.pipeline import build
from asmgen.build.table import Table
from asmgen.spec import parse_spec
from asmgen.spec.files import SpecFile
from asmgen.spec.serving import not_served, overwritten_registers
from asmgen.spec.yaml_lines import read_yaml

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


WIDENED = "_Widened"


def widened(table: Table) -> Table | None:
    """`table`'s spec made to serve every caller convention of its platform:
    it also saves (after its own) every register it loses for the others.
    None when it serves them all already."""
    spec, path = table.spec, table.spec_path
    missing = not_served(spec)
    if not missing:
        return None
    lost = list(dict.fromkeys(reg for regs in missing.values() for reg in regs))
    if set(lost) & overwritten_registers(spec)[0]:
        # The units or the landing overwrite them whatever the resolver saves
        # (the shadow-stack variants' r11): no widening serves those callers.
        return None
    data, _ = read_yaml(path.read_text(), path, "spec")
    resolver = data["resolver"]
    classes = {name: spec.arch_info.register(name).cls for name in lost}
    resolver["saves"] = [*resolver["saves"], *(r for r in lost if classes[r] == "gpr")]
    resolver["fp_saves"] = [
        *resolver.get("fp_saves", []),
        *(r for r in lost if classes[r] != "gpr"),
    ]
    data["serves"] = list(spec.convention_info.caller_conventions)
    data["abi"] = spec.abi + WIDENED
    text = yaml.safe_dump(data, sort_keys=False)
    return build(SpecFile(path, parse_spec(text, path)))


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
        wide = widened(table)
        if wide is not None:
            trip = run_table(wide)
            result.append(Row(wide.spec.abi, ref.spec.abi, len(wide.code), trip, llvm))
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
