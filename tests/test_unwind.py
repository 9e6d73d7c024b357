"""Unwind information: decoded by pyelftools (.eh_frame) and by an independent
Win64 decoder (tests/win64_unwind.py), then checked against the real machine
state at every instruction of an emulated round trip: the unwind rules must
find the caller's stack pointer, the return address and the saved registers.
"""

from __future__ import annotations

import io

import pytest
from roundtrip import (
    CALLER_RETURN,
    ENTRY_SP,
    LANDING,
    RESOLVER,
    initial_state,
    linked,
    reg,
    run_table,
)
from win64_unwind import decode_runtime_function, decode_unwind_info, virtual_unwind

from asmgen.arches.x86_64_unwind import (
    DW_CFA_advance_loc2,
    eh_frame,
    trampoline_call_end,
    trampoline_eh_frame,
    win64_unwind,
)
from asmgen.build.pipeline import build
from asmgen.spec.files import select, spec_files
from asmgen.verify.chain import UNITS

SYSV = [f.spec.abi for f in spec_files() if f.spec.unwind == "eh_frame"]
WIN64 = [f.spec.abi for f in spec_files() if f.spec.unwind == "win64"]
# DWARF numbers of the x86-64 psABI (a fact, restated here independently).
DWARF = ("rax", "rdx", "rcx", "rbx", "rsi", "rdi", "rbp", "rsp", *(f"r{i}" for i in range(8, 16)))


def _table(abi):
    return build(select(spec_files(), [abi])[0])


def _entry_cfa(table) -> int:
    """The resolver's CFA: ENTRY_SP less nothing when the trampoline's call
    pushed one address; a trampoline that jumps (shadow stacks) pushed none,
    so the resolver's caller is the stub's caller, whose sp was 8 higher."""
    return ENTRY_SP + 8 if table.spec.trampoline.jumps else ENTRY_SP


def _trampoline_return(table):
    """The address the used trampoline's call pushes, as capstone decodes the
    trampoline the round trip runs (the stub's caller's return address when
    the trampoline jumps)."""
    import capstone

    if table.spec.trampoline.jumps:
        return CALLER_RETURN

    chain = linked(table)
    _, at, block = next(b for b in chain.blocks if b[0] == "trampolines")
    start = chain.trampoline - at
    code = block[start : start + table.trampoline_size]
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    call = next(i for i in md.disasm(code, chain.trampoline) if i.mnemonic == "call")
    return call.address + call.size


def _read64(uc, address):
    return int.from_bytes(uc.mem_read(address, 8), "little")


def test_every_x86_64_abi_has_unwind_info():
    assert "X86_64_SysV" in SYSV and "X86_64_Win32" in WIN64
    assert len(SYSV) >= 4 and len(WIN64) >= 3


def _placed_fde(frame, begin: int, pc_range: int | None = None):
    """The one FDE of `frame` (an EhFrame) with pc_begin (and pc_range)
    written, as pyelftools decodes it: (fde, its rows, the RA column)."""
    from elftools.dwarf.callframe import ZERO, CallFrameInfo, CFIEntry
    from elftools.dwarf.structs import DWARFStructs

    data = bytearray(frame.data)
    data[frame.pc_begin_offset : frame.pc_begin_offset + 8] = begin.to_bytes(8, "little")
    if pc_range is not None:
        data[frame.pc_range_offset : frame.pc_range_offset + 8] = pc_range.to_bytes(8, "little")
    structs = DWARFStructs(little_endian=True, dwarf_format=32, address_size=8)
    cfi = CallFrameInfo(io.BytesIO(bytes(data)), len(data), 0, structs, for_eh_frame=True)
    entries = cfi.get_entries()
    fdes = [e for e in entries if isinstance(e, CFIEntry) and "initial_location" in e.header]
    assert len(fdes) == 1 and isinstance(entries[-1], ZERO)
    return fdes[0], fdes[0].get_decoded().table, fdes[0].cie.header["return_address_register"]


def _decoded_fde(code: bytes, at: int):
    """The one FDE of eh_frame(code) with pc_begin = `at`, covering the code."""
    fde, _, _ = _placed_fde(eh_frame(code), at)
    assert fde.header["initial_location"] == at
    assert fde.header["address_range"] == len(code)
    return fde


@pytest.mark.parametrize("abi", SYSV)
def test_eh_frame_unwinds_every_instruction(abi):
    _assert_unwinds_every_instruction(_table(abi), abi)


def _assert_unwinds_every_instruction(table, abi):
    returns = {_trampoline_return(table), LANDING}
    # The JIT's one write before registering: pc_begin = the resolver's address.
    fde = _decoded_fde(table.code, RESOLVER)
    rows = fde.get_decoded().table
    ra_column = fde.cie.header["return_address_register"]
    initial = initial_state()
    checked = []

    def on_step(uc, offset):
        pc = RESOLVER + offset
        row = [r for r in rows if r["pc"] <= pc][-1]
        cfa = reg(uc, DWARF[row["cfa"].reg]) + row["cfa"].offset
        # The caller's sp is ENTRY_SP: the trampoline's call pushed one address.
        assert cfa == _entry_cfa(table), (abi, hex(offset))
        for column, rule in row.items():
            if column in ("pc", "cfa") or rule.type != "OFFSET":
                continue
            saved = _read64(uc, cfa + rule.arg)
            if column == ra_column:
                assert saved in returns, (abi, hex(offset))
            else:
                assert saved == initial[DWARF[column]], (abi, hex(offset), DWARF[column])
        checked.append(offset)

    trip = run_table(table, on_step)
    assert trip.landed
    assert len(checked) == trip.instructions


def _unwind_step(rows, ra_column, pc: int, regs: dict[str, int], read) -> tuple[int, int]:
    """The caller's sp (the CFA) and return address, by the row for `pc`."""
    row = [r for r in rows if r["pc"] <= pc][-1]
    cfa = regs[DWARF[row["cfa"].reg]] + row["cfa"].offset
    return cfa, read(cfa + row[ra_column].arg)


@pytest.mark.parametrize("abi", SYSV)
def test_trampoline_eh_frame_unwinds_into_the_stubs_caller(abi):
    """The trampoline block's FDE, placed over the linked block: at every
    trampoline instruction, and from every resolver instruction one step
    after the resolver's FDE, it finds the stub's caller: its sp before its
    call and its return address."""
    table = _table(abi)
    chain = linked(table)
    _, block, _ = next(b for b in chain.blocks if b[0] == "trampolines")
    span = UNITS * table.trampoline_size
    tramp, tramp_rows, tramp_ra = _placed_fde(
        trampoline_eh_frame(table.units.trampoline.code), block, span
    )
    assert (tramp.header["initial_location"], tramp.header["address_range"]) == (block, span)
    _, resolver_rows, resolver_ra = _placed_fde(eh_frame(table.code), RESOLVER)
    caller = (ENTRY_SP + 8, CALLER_RETURN)
    in_trampoline, in_resolver = [], []

    def registers(uc):
        return {name: reg(uc, name) for name in ("rsp", "rbp")}

    def on_chain_step(uc, address):
        if block <= address < block + span:
            read = lambda at: _read64(uc, at)  # noqa: E731
            assert _unwind_step(tramp_rows, tramp_ra, address, registers(uc), read) == caller
            in_trampoline.append(address)

    def on_step(uc, offset):
        read = lambda at: _read64(uc, at)  # noqa: E731
        cfa, ra = _unwind_step(resolver_rows, resolver_ra, RESOLVER + offset, registers(uc), read)
        if ra == LANDING:  # the resolver has replaced its return address
            return
        if table.spec.trampoline.jumps:
            # No trampoline frame: the resolver's FDE leads to the stub's caller.
            assert (cfa, ra) == caller, (abi, hex(offset))
            in_resolver.append(offset)
            return
        # libgcc looks up a return address less one: inside the trampoline's call.
        assert block <= ra - 1 < block + span, (abi, hex(offset))
        assert _unwind_step(tramp_rows, tramp_ra, ra - 1, {"rsp": cfa}, read) == caller
        in_resolver.append(offset)

    trip = run_table(table, on_step, on_chain_step)
    assert trip.landed
    # Every trampoline instruction up to its call ran, each checked.
    call_end = trampoline_call_end(table.units.trampoline.code)
    assert sorted(in_trampoline)[-1] - chain.trampoline < call_end
    import capstone

    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    ran = list(md.disasm(table.units.trampoline.code[:call_end], 0))
    assert len(in_trampoline) == len(ran)
    assert in_resolver and in_resolver[0] == 0


def test_trampoline_that_moves_sp_before_its_call(tree, capsys):
    """A trampoline whose first instruction moves sp cannot use the CIE's
    entry rules: one clean error at the spec's `unwind` line."""
    from scratch_tree import generate_args

    from asmgen.cli import main

    path = tree / "templates/x86_64/trampoline.s.j2"
    text = path.read_text()
    path.write_text(text.replace("ResolverPtr:\n", "    pushq   %rax\nResolverPtr:\n", 1))
    spec = tree / "abi_specs/x86_64_sysv.yaml"
    # The push is one byte: the resolver finds the trampoline 7 bytes back.
    spec.write_text(spec.read_text().replace("call_size: 0x6", "call_size: 0x7"))
    code = main(generate_args(tree, "X86_64_SysV"))
    err = capsys.readouterr().err.strip().splitlines()
    line = next(
        i for i, t in enumerate(spec.read_text().splitlines(), 1) if t.startswith("unwind:")
    )
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith(f"{spec}:{line}: error:"), err
    assert "push rax at 0x0 comes before its call" in err[0], err
    assert not list((tree / "generated").iterdir())


@pytest.mark.parametrize("abi", WIN64)
def test_win64_unwind_info_unwinds_every_instruction(abi):
    table = _table(abi)
    returns = {_trampoline_return(table), LANDING}
    unwind = win64_unwind(table.code)
    # Lay it out as the JIT would: code, UNWIND_INFO, RUNTIME_FUNCTION.
    image = bytearray(unwind.runtime_function_offset + 12)
    image[: len(table.code)] = table.code
    image[unwind.unwind_info_offset :] = unwind.data
    begin, end, info_at = decode_runtime_function(image[unwind.runtime_function_offset :])
    assert (begin, end) == (0, len(table.code))
    info = decode_unwind_info(image[info_at:])
    assert info.version == 1 and info.flags == 0
    assert info.frame_register == "rbp"
    initial = initial_state()
    checked = []

    def on_step(uc, offset):
        names = ("rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi")
        regs = {name: reg(uc, name) for name in names + tuple(f"r{i}" for i in range(8, 16))}
        caller = virtual_unwind(
            info, table.code, offset, regs, lambda address: _read64(uc, address)
        )
        assert caller["rsp"] == _entry_cfa(table), (abi, hex(offset))
        assert caller["rip"] in returns, (abi, hex(offset))
        # Win64 non-volatile registers come back as the caller had them.
        for name in ("rbx", "rbp", "rsi", "rdi", "r12", "r13", "r14", "r15"):
            assert caller[name] == initial[name], (abi, hex(offset), name)
        checked.append(offset)

    trip = run_table(table, on_step)
    assert trip.landed
    assert len(checked) == trip.instructions


def _long_table(tree):
    """The lean System V resolver saving all sixteen XMM registers: more than
    0xff bytes lie between two CFI points."""
    spec = tree / "abi_specs" / "x86_64_sysv_lean.yaml"
    xmm = ", ".join(f"xmm{i}" for i in range(16))
    eight = "fp_saves: [xmm0, xmm1, xmm2, xmm3, xmm4, xmm5, xmm6, xmm7]"
    spec.write_text(spec.read_text().replace(eight, f"fp_saves: [{xmm}]"))
    (item,) = select(spec_files(tree / "abi_specs"), ["X86_64_SysV_Lean"])
    return build(item, tree / "templates")


def test_eh_frame_of_a_long_resolver_uses_wider_advances(tree):
    """Saving all sixteen XMM registers puts more than 0xff bytes between two
    CFI points: DW_CFA_advance_loc2 carries the distance, and the rules still
    hold at every instruction."""
    table = _long_table(tree)
    ops = eh_frame(table.code).data
    assert DW_CFA_advance_loc2 in ops  # (a weak check; the decode below is the proof)
    instructions = _decoded_fde(table.code, RESOLVER).instructions
    advances = [i.args[0] for i in instructions if i.opcode == DW_CFA_advance_loc2]
    assert advances and all(0xFF < a <= 0xFFFF for a in advances)
    _assert_unwinds_every_instruction(table, "16 xmm")


def test_advance_loc4_covers_a_distance_beyond_64_kib():
    """pyelftools decodes each advance width to the offsets the code has."""
    push_rbp, set_fp, nop, pop_rbp, ret = b"\x55", b"\x48\x89\xe5", b"\x90", b"\x5d", b"\xc3"
    for gap in (0x3F, 0x40, 0xFF, 0x100, 0xFFFF, 0x10000, 0x12345):
        code = push_rbp + set_fp + nop * gap + pop_rbp + ret
        rows = _decoded_fde(code, 0x1000).get_decoded().table
        assert [row["pc"] - 0x1000 for row in rows] == [0, 1, 4, 4 + gap + 1], hex(gap)
        assert rows[-1]["cfa"].reg == 7 and rows[-1]["cfa"].offset == 8


def test_eh_frame_is_in_tables_json():
    import json

    from asmgen.resources import REPO_ROOT

    document = json.loads((REPO_ROOT / "generated" / "tables.json").read_text())["abis"]
    sysv = document["X86_64_SysV"]["unwind"]
    assert (
        bytes.fromhex(sysv["eh_frame"])
        == eh_frame(bytes.fromhex(document["X86_64_SysV"]["hex"])).data
    )
    assert "win64" in document["X86_64_Win32"]["unwind"]


_BACKTRACE_PROGRAM = r"""
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unwind.h>

extern void __register_frame(void *);
extern void __deregister_frame(void *);

static const unsigned char Code[] = {@CODE@};
static unsigned char Frame[] = {@FRAME@};
static uintptr_t Seen[64];
static int Count;

static _Unwind_Reason_Code record(struct _Unwind_Context *Context, void *Unused) {
  (void)Unused;
  if (Count < 64)
    Seen[Count++] = _Unwind_GetIP(Context);
  return _URC_NO_REASON;
}

static void landing(void) {}

/* The re-entry function: walks the stack with libgcc's unwinder, which must
   step through the resolver's frame by its .eh_frame alone. */
static uint64_t reentry(uint64_t Ctx, uint64_t Trampoline) {
  (void)Ctx;
  (void)Trampoline;
  Count = 0;
  _Unwind_Backtrace(record, 0);
  return (uint64_t)(uintptr_t)&landing;
}

int main(void) {
  unsigned char *Block = mmap(0, 0x10000, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  unsigned char *Resolver = Block + 0x100;
  uint64_t Fn = (uint64_t)(uintptr_t)&reentry, Begin = (uint64_t)(uintptr_t)Resolver;
  memcpy(Resolver, Code, sizeof(Code));
  memcpy(Resolver + FN_OFFSET, &Fn, 8);
  memset(Resolver + CTX_OFFSET, 0, 8);
  /* The trampoline: call rel32 to the resolver, at the block's start. */
  int32_t Rel = (int32_t)(Resolver - (Block + 5));
  Block[0] = 0xe8;
  memcpy(Block + 1, &Rel, 4);
  mprotect(Block, 0x10000, PROT_READ | PROT_EXEC);
  memcpy(Frame + PC_BEGIN_OFFSET, &Begin, 8);
  __register_frame(Frame);
  ((void (*)(void))Block)();
  __deregister_frame(Frame);
  for (int I = 0; I < Count; ++I)
    printf("%lx\n", (unsigned long)Seen[I]);
  printf("resolver %lx trampoline %lx\n", (unsigned long)Begin, (unsigned long)Block);
  return 0;
}
"""


def test_libgcc_unwinds_through_a_long_resolver(tree, tmp_path):
    """libgcc's unwinder, called from the re-entry function, steps through the
    resolver by its .eh_frame (a DW_CFA_advance_loc2 crosses the call) and
    finds the trampoline's return address next."""
    import subprocess

    import capstone

    table = _long_table(tree)
    frame = eh_frame(table.code)
    assert DW_CFA_advance_loc2 in frame.data
    offsets = {p.name: p.fields[0].offset for p in table.patches}
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    call = next(i for i in md.disasm(table.code, 0) if i.mnemonic == "call")
    source = (
        _BACKTRACE_PROGRAM.replace("@CODE@", ", ".join(map(str, table.code)))
        .replace("@FRAME@", ", ".join(map(str, frame.data)))
        .replace("FN_OFFSET", hex(offsets["ReentryFnAddr"]))
        .replace("CTX_OFFSET", hex(offsets["ReentryCtxAddr"]))
        .replace("PC_BEGIN_OFFSET", hex(frame.pc_begin_offset))
    )
    (tmp_path / "walk.c").write_text(source)
    binary = tmp_path / "walk"
    subprocess.run(["gcc", "-O1", "-o", binary, tmp_path / "walk.c"], check=True)
    out = subprocess.run([binary], capture_output=True, text=True, check=True).stdout.split("\n")
    *walked, last = [line for line in out if line]
    resolver, trampoline = (int(word, 16) for word in last.split()[1::2])
    walked = [int(ip, 16) for ip in walked]
    after_call = resolver + call.address + call.size
    assert after_call in walked, [hex(ip) for ip in walked]
    # The frame after the resolver's is the trampoline's: its call returns to byte 5.
    assert walked[walked.index(after_call) + 1] == trampoline + 5
