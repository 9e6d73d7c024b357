"""verify's chain runs the table's own stubs and trampolines at distant
addresses, and a broken trampoline or stub makes verify fail.

Expected bytes come from tests/unit_oracles.py (LLVM's formulas restated from
their facts), never from the generator under test.
"""

from __future__ import annotations

import dataclasses
import json
import platform
from pathlib import Path

import pytest
from unit_oracles import assembled_trampolines, llvm_stubs, llvm_trampolines

from asmgen.arches import ARCHES
from asmgen.cli import main
from asmgen.spec.files import spec_files
from asmgen.verify.chain import UNITS, USED
from asmgen.verify.emulate import FAR, PAGE, Emulation
from asmgen.verify.runner import subjects_from_generated, verify_subject

ROOT = Path(__file__).resolve().parent.parent
NATIVE_HOST = (platform.machine(), platform.system()) == ("x86_64", "Linux")
# The ABIs whose trampolines and stubs reproduce LLVM's, with an emulator.
LLVM_ABIS = ["X86_64_SysV", "X86_64_Win32", "I386", "AArch64", "Mips32Le", "Mips32Be"]
LLVM_ABIS += ["Mips64", "Riscv64"]
# How far a stub's instruction reaches its pointer (hardware facts): rel32,
# ldr literal (imm19 words), auipc+ld; absolute addresses reach the address space.
REACH = {"x86_64": 1 << 31, "aarch64": 1 << 20, "riscv64": 1 << 31}
REACH |= {"i386": 1 << 32, "mips32": 1 << 32, "mips64": 1 << 64}


@pytest.fixture(scope="module")
def subjects():
    found = subjects_from_generated(spec_files(), ROOT / "generated" / "orc_resolvers.py")
    return {s.spec.abi: s for s in found}


class Mutated:
    """A table's units with one block writer replaced."""

    def __init__(self, units, **writers):
        self._units, self._writers = units, writers

    def __getattr__(self, name):
        return self._writers.get(name) or getattr(self._units, name)


@pytest.mark.parametrize("abi", LLVM_ABIS)
def test_chain_links_the_tables_own_stubs_and_trampolines_far_apart(subjects, abi):
    subject = subjects[abi]
    emu = Emulation(subject, ARCHES[subject.spec.arch].emulator)
    results = emu.run()
    assert results["landing_pc"].status == "pass"
    blocks = {what: (at, data) for what, at, data in emu.linked.blocks}
    (stubs, stub_code), (ptrs, _), (tramps, tramp_code) = (
        blocks[w] for w in ("stubs", "pointers", "trampolines")
    )
    order = subject.spec.endian
    assert stub_code == llvm_stubs(abi, stubs, ptrs, UNITS, order)
    resolver = emu.addr(0x1000)
    if abi == "I386":
        # The resolver lies below the block, where LLVM's i386 formula spills
        # the sign of its rel32 into the padding: ask the assembler instead.
        assert tramp_code == assembled_trampolines(abi, tramps, resolver, UNITS)
    else:
        assert tramp_code == llvm_trampolines(abi, tramps, resolver, UNITS, order)
    # The pointers sit within the last two pages of the stubs' reach (capped at FAR).
    reach = min(REACH[subject.spec.arch], FAR)
    assert reach - 2 * PAGE <= ptrs - stubs < reach
    pages = {a // PAGE for a in (stubs, ptrs, tramps, resolver)}
    assert len(pages) == 4
    # The caller called stub USED, which reached trampoline USED.
    assert emu.linked.stub == stubs + USED * len(stub_code) // UNITS
    assert results["trampoline_arg"].status == "pass"


def _checks(report) -> dict[str, str]:
    return {check: o.outcome for check, o in report.outcomes.items()}


@pytest.mark.parametrize("abi", LLVM_ABIS)
def test_mutation_stub_reads_the_wrong_pointer_slot(subjects, abi):
    subject = subjects[abi]
    units, size = subject.units, subject.spec.pointer_size

    def write_stubs(stubs_addr, ptrs_addr, n):
        # Stub I jumps through pointer I + 1.
        return units.write_stubs(stubs_addr, ptrs_addr + size, n)

    report = verify_subject(
        dataclasses.replace(subject, units=Mutated(units, write_stubs=write_stubs))
    )
    assert report.failed
    result = report.outcomes["trampoline_arg"].result
    assert result.status == "fail"
    (finding,) = result.findings
    # The resolver passed on the neighbouring trampoline: the JIT would compile the wrong body.
    assert int(finding.got, 16) - int(finding.expected, 16) == units.trampoline_size
    if abi == "X86_64_SysV" and NATIVE_HOST:
        assert report.outcomes["native"].result.findings[0].what == "re-entry(ctx, trampoline)"


def test_mutation_trampoline_displacement_off_by_8(subjects):
    # LLVM's x86-64 trampoline is `ff 15 <disp32>` + `c4 f1` (0xf1c40000000015ff):
    # move every trampoline's disp32 on by 8 in the written block.
    subject = subjects["X86_64_SysV"]
    units = subject.units

    def write_trampolines(block_addr, resolver_addr, n):
        code = bytearray(units.write_trampolines(block_addr, resolver_addr, n))
        for i in range(n):
            at = 8 * i
            assert code[at : at + 2] == b"\xff\x15" and code[at + 6 : at + 8] == b"\xc4\xf1"
            disp = int.from_bytes(code[at + 2 : at + 6], "little", signed=True)
            code[at + 2 : at + 6] = (disp + 8).to_bytes(4, "little", signed=True)
        return bytes(code)

    mutated = Mutated(units, write_trampolines=write_trampolines)
    report = verify_subject(dataclasses.replace(subject, units=mutated))
    assert report.failed
    checks = _checks(report)
    # The call reads the word after the pointer slot (zero): the resolver never runs.
    assert checks["trampoline_arg"] == checks["landing_pc"] == "FAIL"
    if NATIVE_HOST:
        assert checks["native"] == "FAIL"


def _anchors_moved(unit, by: int):
    fields = tuple(
        f if f.anchor is None else dataclasses.replace(f, anchor=f.anchor - by) for f in unit.fields
    )
    return dataclasses.replace(unit, fields=fields)


@pytest.mark.parametrize("abi", ["X86_64_SysV", "I386", "AArch64", "Riscv64"])
def test_mutation_pc_relative_trampoline_field_off_by_8(subjects, abi):
    # Every PC-relative trampoline field measured 8 bytes off, in the generated
    # module's own table object, whatever the arch's instructions.
    subject = subjects[abi]
    table = subject.units
    assert any(f.anchor is not None for f in table.trampoline.fields)
    broken = dataclasses.replace(table, trampoline=_anchors_moved(table.trampoline, 8))
    report = verify_subject(dataclasses.replace(subject, units=broken), native=False)
    assert report.failed
    assert "FAIL" in (_checks(report)["trampoline_arg"], _checks(report)["landing_pc"])


def test_mutation_trampoline_returns_where_the_resolver_does_not_look(capsys, tree):
    # A trampoline template that pads before its return label: call_size
    # agrees with the label, so the build accepts it, but the call returns
    # one byte before the label and the resolver passes the wrong trampoline.
    template = tree / "templates/x86_64/trampoline.s.j2"
    text = template.read_text()
    # The label after LLVM's call (the other branches: shadow stacks, reentry).
    anchor = "}})(%rip)\nTrampolineReturn:\n"
    assert text.count(anchor) == 1
    template.write_text(text.replace(anchor, "}})(%rip)\n    nop\nTrampolineReturn:\n"))
    spec = tree / "abi_specs/x86_64_sysv.yaml"
    assert spec.read_text().count("call_size: 0x6") == 1
    spec.write_text(spec.read_text().replace("call_size: 0x6", "call_size: 0x7"))
    capsys.readouterr()
    args = ["--build", "--specs", str(tree / "abi_specs"), "--templates", str(tree / "templates")]
    code = main(["verify", "--format", "json", *args, "X86_64_SysV"])
    assert code == 1
    checks = json.loads(capsys.readouterr().out)["abis"]["X86_64_SysV"]["checks"]
    tramp = checks["trampoline_arg"]
    assert tramp["outcome"] == "FAIL"
    (finding,) = tramp["findings"]
    assert int(finding["expected"], 16) - int(finding["got"], 16) == 1
    if NATIVE_HOST:
        assert checks["native"]["outcome"] == "FAIL"


def test_win64_lean_vector_run_is_not_a_crash(subjects):
    # The vector harness keeps `out` in memory: the lean Win64 resolver keeps no
    # rsi/rdi (callee-saved there), and the landing still reports what it saw.
    # It serves no convention that passes or keeps wide registers (Windows C
    # passes __m256 by reference), so only the low halves of xmm0-3 count.
    report = verify_subject(subjects["X86_64_Win32_Lean"])
    result = report.outcomes["vector_width"].result
    if not NATIVE_HOST:
        assert result.status == "n/a"
        return
    assert report.outcomes["vector_width"].outcome == "ok"
    assert result.status == "pass" and not result.findings
