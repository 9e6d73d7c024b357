"""LLVM's newer reentry path: generated/reentry/<ABI>.S and the reentry
blocks in tables.json.

- Where asmgen's design is LLVM's (the System V trampoline `call rel32`, the
  jump stubs), the blocks are LLVM's own bytes and edges, as JITLink's
  builders hold them (llvm/lib/ExecutionEngine/JITLink/x86_64.cpp and
  aarch64.cpp: ReentryTrampolineContent, PointerJumpStubContent).
- Every source assembles with llvm-mc-19 and with the target's own GNU
  assembler (the cross gcc) to the routine bytes tables.json holds.
- The CFI decodes (pyelftools): one FDE over the routine, the frame moved at
  the resolve call and undone at the end.
- The routine and its blocks, linked with JITLink's fixups, run through
  verify's emulation with exactly the spec's declared outcomes, and on the
  target itself (natively for x86-64 System V, under qemu-user for AArch64,
  RISC-V 64, s390x and PowerPC64 LE, which unicorn does not emulate), where
  the arguments reach the landing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from asmgen.arches import ARCHES
from asmgen.build.pipeline import build
from asmgen.build.reentry import Block, Edge, Reentry
from asmgen.spec.files import select, spec_files
from asmgen.verify.reentry import reentry_subject
from asmgen.verify.runner import verify_subject

ROOT = Path(__file__).resolve().parent.parent
TABLES = json.loads((ROOT / "generated/tables.json").read_text())["abis"]
REENTRY = {abi: record["reentry"] for abi, record in TABLES.items() if "reentry" in record}
SOURCES = sorted((ROOT / "generated/reentry").glob("*.S"))


def test_every_table_of_a_reentry_arch_has_its_source():
    arches = {arch for arch, info in ARCHES.items() if info.jitlink_edges}
    assert {"x86_64", "aarch64", "riscv64", "loongarch64", "s390x", "ppc64le"} <= arches
    want = {abi for abi, record in TABLES.items() if record["arch"] in arches}
    assert set(REENTRY) == want
    assert {p.stem for p in SOURCES} == want


def _edges(block: dict) -> list[tuple]:
    return [(e["kind"], e["offset"], e["addend"], e["target"]) for e in block["edges"]]


def test_system_v_blocks_are_llvms():
    # x86_64.cpp: ReentryTrampolineContent = E8 00 00 00 00, a BranchPCRel32
    # edge at 1 to the reentry symbol; PointerJumpStubContent = FF 25 00 00 00
    # 00, a BranchPCRel32 edge at 2 to the pointer, addend 0.
    record = REENTRY["X86_64_SysV"]
    assert record["trampoline"]["hex"] == "e800000000"
    assert _edges(record["trampoline"]) == [("BranchPCRel32", 1, 0, "__orc_rt_reenter")]
    assert record["stub"]["hex"] == "ff2500000000"
    assert _edges(record["stub"]) == [("BranchPCRel32", 2, 0, "__orc_stub_ptr")]
    # sysv_reenter.x86-64.S subtracts 5 from the return address.
    assert record["trampoline_call_size"] == 5


def test_aarch64_stub_is_llvms():
    # aarch64.cpp: PointerJumpStubContent = ADRP x16; LDR x16, [x16]; BR x16
    # with Page21 at 0 and PageOffset12 at 4.
    record = REENTRY["AArch64"]
    assert record["stub"]["hex"] == "10000090100240f900021fd6"
    assert _edges(record["stub"]) == [
        ("Page21", 0, 0, "__orc_stub_ptr"),
        ("PageOffset12", 4, 0, "__orc_stub_ptr"),
    ]


def test_s390x_blocks():
    # systemz.cpp: Pointer64JumpStubContent = C4 18 00 00 00 00 (lgrl %r1) 07 F1
    # (br %r1), a Delta32dbl edge at 2 with addend 2 (systemz.h,
    # createPointerJumpStubBlock).  The trampoline is brasl %r1 (C0 15), the
    # same edge: its operand counts halfwords from the instruction, 2 bytes
    # before the field.
    for abi in ("SystemZ", "SystemZ_NoVector"):
        record = REENTRY[abi]
        assert record["stub"]["hex"] == "c4180000000007f1"
        assert _edges(record["stub"]) == [("Delta32dbl", 2, 2, "__orc_stub_ptr")]
        assert record["trampoline"]["hex"] == "c01500000000"
        assert _edges(record["trampoline"]) == [("Delta32dbl", 2, 2, "__orc_rt_reenter")]
        assert record["trampoline_call_size"] == 6


def _words(block: dict) -> list[int]:
    code = bytes.fromhex(block["hex"])
    return [int.from_bytes(code[i : i + 4], "little") for i in range(0, len(code), 4)]


def test_ppc64_blocks():
    # ppc64.cpp: PointerJumpStubNoTOCContent (little-endian) is mflr r12;
    # bcl 20,31,.+4; mflr r11; mtlr r12; addis r12,r11,HA; ld r12,LO(r12);
    # mtctr r12; bctr, with Delta16HA at 16 (addend 8) and Delta16LO at 20
    # (addend 12), both measured from the word after the bcl.
    llvm = [0x7D8802A6, 0x429F0005, 0x7D6802A6, 0x7D8803A6, 0x3D8B0000, 0xE98C0000]
    llvm += [0x7D8903A6, 0x4E800420]
    record = REENTRY["PPC64"]
    words = _words(record["stub"])
    # The bcl and the tail (ld, mtctr, bctr) are LLVM's words ...
    assert words[1] == llvm[1] and words[-3:] == [0xE98C0000, *llvm[-2:]]
    # ... lr waits in r0 (mflr r0, mtlr r0), the address is built in r12
    # (mflr r12, addis r12,r12), and addi r12,r12,LO comes before the load:
    # no assembler has a pc-relative @l for ld's DS form.
    assert words[0] == 0x7C0802A6 and words[3] == 0x7C0803A6
    assert words[2] == 0x7D8802A6 and words[4] == 0x3D8C0000 and words[5] == 0x398C0000
    assert _edges(record["stub"]) == [
        ("Delta16HA", 16, 8, "__orc_stub_ptr"),
        ("Delta16LO", 20, 12, "__orc_stub_ptr"),
    ]
    # mflr r0; bl __orc_rt_reenter (0x48000001, LK set) with CallBranchDelta at 4.
    assert _words(record["trampoline"]) == [0x7C0802A6, 0x48000001]
    assert _edges(record["trampoline"]) == [("CallBranchDelta", 4, 0, "__orc_rt_reenter")]
    assert record["trampoline_call_size"] == 8


@pytest.mark.parametrize(
    ("abi", "pad"),
    [("X86_64_SysV_CET", "f30f1efa"), ("AArch64_BTI", "5f2403d5"), ("AArch64_GCS_BTI", "5f2403d5")],
)
def test_landing_pads_open_routine_and_blocks(abi, pad):
    # endbr64 is F3 0F 1E FA; bti c is HINT #34, 0xd503245f.
    record = REENTRY[abi]
    for part in ("routine", "trampoline", "stub"):
        assert record[part]["hex"].startswith(pad), part


def test_shadow_stack_variants_jump_to_the_routine():
    # No call in the trampoline: a jmp rel32 (E9) after endbr64 and the leaq,
    # and AArch64's `b` (not `bl`).
    x86 = REENTRY["X86_64_SysV_ShadowStack"]["trampoline"]
    assert x86["hex"][22:24] == "e9"
    arm = REENTRY["AArch64_GCS_BTI"]["trampoline"]
    last = int.from_bytes(bytes.fromhex(arm["hex"])[-4:], "little")
    assert last >> 26 == 0b000101  # B imm26


def _assembler(arch: str) -> list[str] | None:
    """The target's GNU assembler, through its Linux cross gcc (the Makefile's toolchains)."""
    info = ARCHES[arch]
    targets = [t for t in (info.harness.targets if info.harness else ()) if not t.windows]
    if not targets:
        return None
    return [targets[0].compiler, "-c", "-x", "assembler-with-cpp"]


def _object(command: list[str], source: Path, out: Path) -> Path:
    result = subprocess.run([*command, str(source), "-o", str(out)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return out


def _routine(obj: Path) -> tuple[bytes, object]:
    from elftools.elf.elffile import ELFFile

    elf = ELFFile(obj.open("rb"))
    text = elf.get_section_by_name(".text")
    symbol = elf.get_section_by_name(".symtab").get_symbol_by_name("__orc_rt_reenter")[0]
    start, size = symbol["st_value"], symbol["st_size"]
    return text.data()[start : start + size], elf


LLVM_MC_TRIPLES = {"x86_64": "x86_64", "aarch64": "aarch64", "riscv64": "riscv64"}


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_sources_assemble_to_the_tables_bytes(source, tmp_path):
    record = REENTRY[source.stem]
    arch = ARCHES[TABLES[source.stem]["arch"]]
    want = bytes.fromhex(record["routine"]["hex"])
    # llvm-mc-19, reading the file itself (the C comments are its own syntax too).
    mc = [shutil.which("llvm-mc-19") or "llvm-mc", f"-triple={arch.llvm_triple}", "-filetype=obj"]
    mc += [f"-mattr={arch.llvm_mattr}"] if arch.llvm_mattr else []
    got, elf = _routine(_object(mc, source, tmp_path / "mc.o"))
    assert got == want
    _check_cfi(elf, len(want), record, ranged=True)
    gas = _assembler(arch.name)
    if gas is None:
        assert arch.name == "loongarch64"  # no LoongArch toolchain here: llvm-mc only
        return
    got, elf = _routine(_object(gas, source, tmp_path / "gas.o"))
    assert got == want, f"{gas[0]} assembles other bytes"
    # GNU as for RISC-V leaves the FDE's range to the linker (ADD32/SUB32
    # relocations): its rules are checked, the range on llvm-mc's object.
    _check_cfi(elf, len(want), record, ranged=arch.name != "riscv64")


def _check_cfi(elf, size: int, record: dict, ranged: bool) -> None:
    from elftools.dwarf.callframe import FDE

    assert elf.has_dwarf_info()
    # RISC-V objects carry label-difference relocations pyelftools cannot apply:
    # the FDE is read as assembled (its addresses are section offsets anyway).
    dwarf = elf.get_dwarf_info(relocate_dwarf_sections=False)
    fdes = [e for e in dwarf.EH_CFI_entries() if isinstance(e, FDE)]
    assert len(fdes) == 1
    fde = fdes[0]
    if ranged:
        assert fde.header["address_range"] == size
    table = fde.get_decoded().table
    entry, last = table[0]["cfa"], table[-1]["cfa"]
    # Where the routine reaches __orc_rt_resolve (a call, or the address it
    # builds to call through a register) the frame has moved (pushed, or sp lowered).
    calls = [e["offset"] for e in record["routine"]["edges"] if "resolve" in e["target"]]
    assert calls
    for call in calls:
        at_call = [row for row in table if row["pc"] - fde.header["initial_location"] <= call]
        cfa = at_call[-1]["cfa"]
        assert (cfa.reg, cfa.offset) != (entry.reg, entry.offset)
    # ... and the last rows undo it: the CFA is the entry's again.
    assert (last.reg, last.offset) == (entry.reg, entry.offset)


REENTRY_ABIS = [abi for abi in REENTRY if ARCHES[TABLES[abi]["arch"]].emulator is not None]


@pytest.fixture(scope="module")
def tables():
    return {item.spec.abi: build(item) for item in select(spec_files(), REENTRY_ABIS)}


@pytest.mark.parametrize("abi", REENTRY_ABIS)
def test_the_routine_runs_as_declared(tables, abi):
    table = tables[abi]
    report = verify_subject(reentry_subject(table.spec, table.spec_path, table.reentry), False)
    outcomes = {check: o.outcome for check, o in report.outcomes.items()}
    assert not report.failed, {c: o for c, o in outcomes.items() if o not in ("ok", "n/a")}
    # It really ran: the landing was reached, through this trampoline.
    for check in ("landing_pc", "trampoline_arg", "int_args", "return_address", "stack_pointer"):
        assert outcomes[check] == "ok", check
    assert outcomes["ctx_arg"] == "n/a"  # __orc_rt_resolve takes no context


@pytest.mark.parametrize("abi", ["X86_64_SysV", "AArch64", "Riscv64_Aligned"])
def test_a_wrong_edge_fails_the_run(tables, abi):
    # The trampoline's edge moved by 4 bytes: it no longer reaches the routine.
    table = tables[abi]
    r = table.reentry
    moved = tuple(
        Edge(e.kind, e.offset, e.addend + 4, e.target, e.reloc) for e in r.trampoline.edges
    )
    broken = Reentry(
        r.source,
        r.routine,
        Block(r.trampoline.code, moved, r.trampoline.alignment),
        r.stub,
        r.call_size,
    )
    report = verify_subject(reentry_subject(table.spec, table.spec_path, broken), False)
    assert report.failed


# -- the routine for real: natively (x86-64) and under qemu-user ------------------

HARNESS = ROOT / "tests/fixtures/reentry_harness.c"
# The harness's fixed region (routine, trampoline, stub, pointer): the first
# 16 MiB boundary from 16 MiB up that leaves the program's segments, and 1 MiB
# of heap after them, alone.
ALIGN, HEAP = 0x1000000, 0x100000


def _region(program: Path) -> int:
    from elftools.elf.elffile import ELFFile

    with program.open("rb") as handle:
        loads = [
            (s["p_vaddr"], s["p_vaddr"] + s["p_memsz"] + HEAP)
            for s in ELFFile(handle).iter_segments()
            if s["p_type"] == "PT_LOAD"
        ]
    region = ALIGN
    while any(start < region + 0x4000 and region < end for start, end in loads):
        region += ALIGN
    return region


def _runs_on_a_target(spec) -> bool:
    """A Linux harness target (native or qemu-user) runs this spec's convention."""
    harness = spec.arch_info.harness
    target = harness.target(spec.convention, spec.endian) if harness else None
    return target is not None and not target.windows


# Every reentry table whose convention a Linux target runs, emulated or not
# (unicorn has no PowerPC little-endian: qemu-user is all that runs it).
NATIVE_ABIS = [
    item.spec.abi for item in select(spec_files(), list(REENTRY)) if _runs_on_a_target(item.spec)
]


@pytest.fixture(scope="module")
def harness_programs(tmp_path_factory):
    folder, built = tmp_path_factory.mktemp("reentry-harness"), {}

    def program(target) -> Path:
        key = (target.compiler, *target.cflags)
        if key not in built:
            out = folder / "-".join(key).replace("=", "_")
            command = [target.compiler, *target.cflags, "-O1", "-static", "-no-pie"]
            done = subprocess.run(
                [*command, str(HARNESS), "-o", str(out)], capture_output=True, text=True
            )
            assert done.returncode == 0, done.stderr
            built[key] = out
        return built[key]

    return program


@pytest.fixture(scope="module")
def native_tables():
    return {item.spec.abi: build(item) for item in select(spec_files(), NATIVE_ABIS)}


def _run_on_target(table, reentry, program: Path, folder: Path) -> subprocess.CompletedProcess:
    """Link `reentry`'s blocks for the harness's region and run the harness."""
    from elftools.elf.elffile import ELFFile

    from asmgen.build.reentry import POINTER, RESOLVE, ROUTINE
    from asmgen.verify.reentry import link_block

    spec = table.spec
    target = spec.arch_info.harness.target(spec.convention, spec.endian)
    with program.open("rb") as handle:
        symtab = ELFFile(handle).get_section_by_name(".symtab")
        resolve = symtab.get_symbol_by_name("resolve")[0]["st_value"]
    region = _region(program)
    tramp, stub, pointer = region + 0x1000, region + 0x2000, region + 0x3000
    blob = bytearray(0x4000)
    for at, code in (
        (region, link_block(spec, reentry.routine, region, {RESOLVE: resolve})),
        (tramp, link_block(spec, reentry.trampoline, tramp, {ROUTINE: region})),
        (stub, link_block(spec, reentry.stub, stub, {POINTER: pointer})),
        (pointer, tramp.to_bytes(8, spec.endian)),
    ):
        blob[at - region : at - region + len(code)] = code
    (folder / "blob").write_bytes(blob)
    return subprocess.run(
        [*target.runner, str(program), str(folder / "blob"), hex(stub), hex(tramp), hex(region)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def _target_of(spec):
    return spec.arch_info.harness.target(spec.convention, spec.endian)


@pytest.mark.parametrize("abi", NATIVE_ABIS)
def test_the_routine_runs_on_the_target(native_tables, harness_programs, abi, tmp_path):
    """The tables.json blocks, linked by JITLink's fixups, on the real CPU
    (x86-64) or under qemu-user: the arguments arrive at the landing, the
    routine passes the trampoline's address, and the landing's result comes
    back to the caller.  A table that declares lost FP arguments (LLVM's
    Riscv64) loses the doubles here too."""
    table = native_tables[abi]
    spec = table.spec
    run = _run_on_target(table, table.reentry, harness_programs(_target_of(spec)), tmp_path)
    declared = {v.check for v in spec.expected_violations}
    want = "FAIL" if "fp_args" in declared else "ok"
    assert run.stdout.split()[:1] == [want], (run.stdout, run.stderr)
    # Either way the chain ran: the landing's result and the trampoline arrived.
    tramp = _region(harness_programs(_target_of(spec))) + 0x1000
    assert f"result=600dcafef00d1234 tramp={tramp:x}" in run.stdout


# Tables no emulator runs: the target is their only run, so it must be able to fail.
UNEMULATED_ABIS = [abi for abi in NATIVE_ABIS if ARCHES[TABLES[abi]["arch"]].emulator is None]


@pytest.mark.parametrize("abi", UNEMULATED_ABIS)
def test_a_wrong_stub_edge_fails_on_the_target(native_tables, harness_programs, abi, tmp_path):
    # The stub's edges moved 8 bytes on: it jumps through the empty word after
    # its pointer, and the harness never prints its verdict.
    table = native_tables[abi]
    r = table.reentry
    moved = tuple(Edge(e.kind, e.offset, e.addend + 8, e.target, e.reloc) for e in r.stub.edges)
    broken = Reentry(
        r.source, r.routine, r.trampoline, Block(r.stub.code, moved, r.stub.alignment), r.call_size
    )
    run = _run_on_target(table, broken, harness_programs(_target_of(table.spec)), tmp_path)
    assert run.returncode != 0
    assert "result=" not in run.stdout


# -- the GNU property note: what the linker and the loader are told --------------


@dataclass(frozen=True)
class PropertyFacts:
    pad: bytes  # the landing pad's encoding the routine must open with
    pad_name: str  # the feature bits' names as binutils' readelf prints them
    stack_names: tuple[str, ...]
    compile_flag: str  # gcc's flag for C code fit for both features
    # GNU ld's -z option that refuses the link when an input lacks a bit, if
    # it has one for these features.
    link_check: str | None


# endbr64 and `bti c`.  binutils 2.40 predates GCS's name: it prints the bit
# (1 << 2 in the AArch64 ELF ABI) as unknown.
PROPERTY_FACTS = {
    "x86_64": PropertyFacts(
        bytes.fromhex("f30f1efa"),
        "IBT",
        ("SHSTK",),
        "-fcf-protection=full",
        "cet-report=error",
    ),
    "aarch64": PropertyFacts(
        bytes.fromhex("5f2403d5"),
        "BTI",
        ("GCS", "<unknown: 4>"),
        "-mbranch-protection=bti",
        None,
    ),
}
PROPERTY_ABIS = [abi for abi in NATIVE_ABIS if TABLES[abi]["arch"] in PROPERTY_FACTS]


def _features(path: Path) -> str:
    notes = subprocess.run(["readelf", "-n", str(path)], capture_output=True, text=True)
    lines = [line for line in notes.stdout.splitlines() if "feature:" in line]
    return lines[0].split("feature:", 1)[1] if lines else ""


@pytest.mark.parametrize("abi", PROPERTY_ABIS)
def test_the_property_note_claims_what_the_code_earns(tables, abi, tmp_path):
    """The note's landing-pad bit is there exactly when the routine opens with
    the landing pad, and its shadow-stack bit exactly when the emulated shadow
    stack finds every return popping its own call.  GNU ld, linking it with a
    C function compiled for both features, keeps a bit only when every input
    has it, and for x86-64 refuses the link (`-z cet-report=error`) when one
    is missing."""
    table = tables[abi]
    facts = PROPERTY_FACTS[table.spec.arch]
    report = verify_subject(reentry_subject(table.spec, table.spec_path, table.reentry), False)
    want_pad = table.reentry.routine.code.startswith(facts.pad)
    want_stack = report.outcomes["shadow_stack"].outcome == "ok"
    compiler = _assembler(table.spec.arch)[0]
    obj = _object([compiler, "-c"], ROOT / f"generated/reentry/{abi}.S", tmp_path / "r.o")
    features = _features(obj)
    assert (facts.pad_name in features) == want_pad, features
    assert any(name in features for name in facts.stack_names) == want_stack, features

    (tmp_path / "resolve.c").write_text("void __orc_rt_resolve(void) {}\n")
    helper = _object([compiler, facts.compile_flag, "-c"], tmp_path / "resolve.c", tmp_path / "c.o")
    linked = tmp_path / "linked"
    check = [f"-Wl,-z,{facts.link_check}"] if facts.link_check else []
    link = subprocess.run(
        [
            compiler,
            "-nostdlib",
            "-static",
            "-Wl,-e,__orc_rt_reenter",
            *check,
            str(obj),
            str(helper),
            "-o",
            str(linked),
        ],
        capture_output=True,
        text=True,
    )
    if facts.link_check and not (want_pad and want_stack):
        assert link.returncode != 0 and "missing" in link.stderr, link.stderr
        return
    assert link.returncode == 0, link.stderr
    # The program keeps the landing-pad bit only when every object has it.
    assert (facts.pad_name in _features(linked)) == want_pad


def test_a_reentry_source_has_a_table_sources_limits(tree, monkeypatch):
    """The reentry routine renders the resolver template too: a directive past
    a table's limits (source.py) is refused before llvm-mc sees it, as the
    table's own build refuses it, rather than assembled into 256 MiB."""
    from asmgen.build import mc_object
    from asmgen.build.reentry import build_reentry
    from asmgen.errors import AsmgenError

    huge = Path(__file__).parent / "bad_inputs/templates/x86_64/huge_space.j2"
    shutil.copy(huge, tree / "templates/x86_64/resolver.s.j2")
    assembled = []
    real = mc_object._assemble_all
    monkeypatch.setattr(mc_object, "_assemble_all", lambda s: assembled.extend(s) or real(s))
    monkeypatch.setenv("ASMGEN_CACHE", "0")
    spec = select(spec_files(tree / "abi_specs"), ["X86_64_SysV"])[0].spec
    with pytest.raises(AsmgenError, match="out of range for a resolver table"):
        build_reentry(spec, tree / "templates")
    assert assembled and not any("0x10000000" in source.text for source in assembled)
