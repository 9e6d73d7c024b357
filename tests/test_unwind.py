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
from asmgen.build.unwind import eh_frame, win64_unwind
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


@pytest.mark.parametrize("abi", SYSV)
def test_eh_frame_unwinds_every_instruction(abi):
    from elftools.dwarf.callframe import ZERO, CallFrameInfo, CFIEntry
    from elftools.dwarf.structs import DWARFStructs

    table = _table(abi)
    returns = {_trampoline_return(table), LANDING}
    frame = eh_frame(table.code)
    data = bytearray(frame.data)
    # The JIT's one write before registering: pc_begin = the resolver's address.
    data[frame.pc_begin_offset : frame.pc_begin_offset + 8] = RESOLVER.to_bytes(8, "little")
    structs = DWARFStructs(little_endian=True, dwarf_format=32, address_size=8)
    cfi = CallFrameInfo(io.BytesIO(bytes(data)), len(data), 0, structs, for_eh_frame=True)
    entries = cfi.get_entries()
    fdes = [e for e in entries if isinstance(e, CFIEntry) and "initial_location" in e.header]
    assert len(fdes) == 1 and isinstance(entries[-1], ZERO)
    (fde,) = fdes
    assert fde.header["initial_location"] == RESOLVER
    assert fde.header["address_range"] == len(table.code)
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
