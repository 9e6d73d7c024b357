"""Unwind information: decoded by pyelftools (.eh_frame) and by an independent
Win64 decoder (tests/win64_unwind.py), then checked against the real machine
state at every instruction of an emulated round trip: the unwind rules must
find the caller's stack pointer, the return address and the saved registers.
"""

from __future__ import annotations

import io

import pytest
from roundtrip import ENTRY_SP, LANDING, RESOLVER, initial_state, linked, reg, run_table
from win64_unwind import decode_runtime_function, decode_unwind_info, virtual_unwind

from asmgen.build.pipeline import build
from asmgen.build.unwind import DW_CFA_advance_loc2, eh_frame, win64_unwind
from asmgen.spec.files import select, spec_files

SYSV = [f.spec.abi for f in spec_files() if f.spec.unwind == "eh_frame"]
WIN64 = [f.spec.abi for f in spec_files() if f.spec.unwind == "win64"]
# DWARF numbers of the x86-64 psABI (a fact, restated here independently).
DWARF = ("rax", "rdx", "rcx", "rbx", "rsi", "rdi", "rbp", "rsp", *(f"r{i}" for i in range(8, 16)))


def _table(abi):
    return build(select(spec_files(), [abi])[0])


def _trampoline_return(table):
    """The address the used trampoline's call pushes, as capstone decodes the
    trampoline the round trip runs."""
    import capstone

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


def _decoded_fde(code: bytes, at: int):
    """The one FDE of eh_frame(code), decoded by pyelftools, with pc_begin = `at`."""
    from elftools.dwarf.callframe import ZERO, CallFrameInfo, CFIEntry
    from elftools.dwarf.structs import DWARFStructs

    frame = eh_frame(code)
    data = bytearray(frame.data)
    # The JIT's one write before registering: pc_begin = the resolver's address.
    data[frame.pc_begin_offset : frame.pc_begin_offset + 8] = at.to_bytes(8, "little")
    structs = DWARFStructs(little_endian=True, dwarf_format=32, address_size=8)
    cfi = CallFrameInfo(io.BytesIO(bytes(data)), len(data), 0, structs, for_eh_frame=True)
    entries = cfi.get_entries()
    fdes = [e for e in entries if isinstance(e, CFIEntry) and "initial_location" in e.header]
    assert len(fdes) == 1 and isinstance(entries[-1], ZERO)
    (fde,) = fdes
    assert fde.header["initial_location"] == at
    assert fde.header["address_range"] == len(code)
    return fde


@pytest.mark.parametrize("abi", SYSV)
def test_eh_frame_unwinds_every_instruction(abi):
    _assert_unwinds_every_instruction(_table(abi), abi)


def _assert_unwinds_every_instruction(table, abi):
    returns = {_trampoline_return(table), LANDING}
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
        assert cfa == ENTRY_SP, (abi, hex(offset))
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
        assert caller["rsp"] == ENTRY_SP, (abi, hex(offset))
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
