"""The unwind information in the generated Python module and C++ header: the
same bytes as tables.json's `unwind` key, decodable (pyelftools for .eh_frame,
tests/win64_unwind.py for Win64), and, in C++, registrable as documented:
libgcc finds the FDE for a pc inside the resolver once the pc_begin is set.
"""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import gxx_cache
import pytest
from win64_unwind import decode_runtime_function, decode_unwind_info

from asmgen.spec.files import spec_files

ROOT = Path(__file__).resolve().parent.parent
SYSV = [f.spec.abi for f in spec_files() if f.spec.unwind == "eh_frame"]
WIN64 = [f.spec.abi for f in spec_files() if f.spec.unwind == "win64"]
RESOLVER_ADDR = 0x7F12_3456_7000


@pytest.fixture(scope="module")
def document():
    return json.loads((ROOT / "generated" / "tables.json").read_text())["abis"]


def test_every_table_carries_its_specs_unwind_kind(generated_module, document):
    assert SYSV and WIN64
    for abi, table in generated_module.TABLES.items():
        kind = next(iter(document[abi].get("unwind", {"none": 0})))
        assert (table.eh_frame is not None) == (kind == "eh_frame"), abi
        assert (table.unwind_info is not None) == (kind == "win64"), abi
        assert (table.runtime_function is not None) == (kind == "win64"), abi


def _fdes(data: bytes) -> list:
    """The FDEs of an .eh_frame body, as pyelftools decodes it; it must end in
    the zero terminator."""
    from elftools.dwarf.callframe import ZERO, CallFrameInfo, CFIEntry
    from elftools.dwarf.structs import DWARFStructs

    structs = DWARFStructs(little_endian=True, dwarf_format=32, address_size=8)
    entries = CallFrameInfo(
        io.BytesIO(data), len(data), 0, structs, for_eh_frame=True
    ).get_entries()
    assert isinstance(entries[-1], ZERO)
    return [e for e in entries if isinstance(e, CFIEntry) and "initial_location" in e.header]


@pytest.mark.parametrize("abi", SYSV)
def test_python_eh_frame_is_tables_json_and_decodes(abi, generated_module, document):
    table = generated_module.TABLES[abi]
    record = document[abi]["unwind"]
    assert table.eh_frame == bytes.fromhex(record["eh_frame"])
    assert table.eh_frame_pc_begin_offset == record["pc_begin_offset"]
    data = table.eh_frame_at(RESOLVER_ADDR)
    assert len(data) == len(table.eh_frame)
    fdes = _fdes(data)
    assert len(fdes) == 1
    assert fdes[0].header["initial_location"] == RESOLVER_ADDR
    assert fdes[0].header["address_range"] == table.size
    # Unrelocated, the FDE covers [0, size): the range is relative to the resolver.
    assert [e.header["initial_location"] for e in _fdes(table.eh_frame)] == [0]


@pytest.mark.parametrize("abi", SYSV)
def test_python_trampoline_eh_frame_is_tables_json_and_decodes(abi, generated_module, document):
    table = generated_module.TABLES[abi]
    record = document[abi]["unwind"]
    assert table.trampoline_eh_frame == bytes.fromhex(record["trampoline_eh_frame"])
    assert table.trampoline_eh_frame_pc_begin_offset == record["trampoline_pc_begin_offset"]
    assert table.trampoline_eh_frame_pc_range_offset == record["trampoline_pc_range_offset"]
    data = table.trampoline_eh_frame_at(RESOLVER_ADDR, 511)
    fdes = _fdes(data)
    assert len(fdes) == 1
    assert fdes[0].header["initial_location"] == RESOLVER_ADDR
    assert fdes[0].header["address_range"] == 511 * table.trampoline_size
    # No instructions of its own: the CIE's entry rules (CFA = rsp+8, RA at CFA-8).
    (row,) = fdes[0].get_decoded().table
    assert (row["cfa"].reg, row["cfa"].offset) == (7, 8)
    assert row[16].arg == -8
    # The same CIE as the resolver's.
    cie_length = 4 + int.from_bytes(table.eh_frame[:4], "little")
    assert data[:cie_length] == table.eh_frame[:cie_length]


@pytest.mark.parametrize("abi", WIN64)
def test_python_win64_unwind_is_tables_json_and_decodes(abi, generated_module, document):
    table = generated_module.TABLES[abi]
    record = document[abi]["unwind"]
    assert table.unwind_info + table.runtime_function == bytes.fromhex(record["win64"])
    assert table.unwind_info_offset == record["unwind_info_offset"]
    assert record["runtime_function_offset"] == table.unwind_info_offset + len(table.unwind_info)
    begin, end, info_at = decode_runtime_function(table.runtime_function)
    assert (begin, end, info_at) == (0, table.size, table.unwind_info_offset)
    assert info_at >= table.size and info_at % 4 == 0  # DWORD-aligned, past the code
    info = decode_unwind_info(table.unwind_info)
    assert info.version == 1 and info.flags == 0 and info.frame_register == "rbp"


def _cpp_program(tables: dict) -> str:
    body = ""
    for name, table in sorted(tables.items()):
        s = f"asmgen::{name}"
        arrays = (
            ("EHFrame", "TrampolineEHFrame")
            if table.eh_frame is not None
            else ("UnwindInfo", "RuntimeFunction")
        )
        for array in arrays:
            body += f'  dump("{name}.{array}", {s}::{array}, sizeof({s}::{array}));\n'
        if table.eh_frame is None:
            body += f'  printf("{name}.UnwindInfoOffset %x\\n", {s}::UnwindInfoOffset);\n'
            continue
        body += f'  printf("{name}.EHFramePCBeginOffset %x\\n", {s}::EHFramePCBeginOffset);\n'
        # Register as the header says, then ask libgcc for the FDE of a pc
        # inside the resolver (and of one past it).
        body += (
            f"  {{ static char Code[{s}::ResolverCodeSize];\n"
            f"    static unsigned char Frame[sizeof({s}::EHFrame)];\n"
            f"    memcpy(Frame, {s}::EHFrame, sizeof(Frame));\n"
            f"    dwarf_eh_bases Bases;\n"
            # Unrelocated, the FDE covers [0, size), not the resolver.
            f"    __register_frame(Frame);\n"
            f"    const void *Raw = _Unwind_Find_FDE(Code, &Bases);\n"
            f"    __deregister_frame(Frame);\n"
            f"    uint64_t Begin = reinterpret_cast<uintptr_t>(Code);\n"
            f"    memcpy(Frame + {s}::EHFramePCBeginOffset, &Begin, 8);\n"
            f"    __register_frame(Frame);\n"
            f"    const void *In = _Unwind_Find_FDE(Code + sizeof(Code) - 1, &Bases);\n"
            f"    const void *Past = _Unwind_Find_FDE(Code + sizeof(Code), &Bases);\n"
            f'    printf("{name}.found %d %d %d\\n", Raw == nullptr,\n'
            f"           In == Frame + {s}::EHFramePCBeginOffset - 8, Past == nullptr);\n"
            f"    __deregister_frame(Frame); }}\n"
        )
        # The trampoline block's: pc_begin and pc_range written, as documented.
        body += (
            f"  {{ static char Block[4096];\n"
            f"    const unsigned N = (sizeof(Block) - {s}::PointerSize) / {s}::TrampolineSize;\n"
            f"    static unsigned char Frame[sizeof({s}::TrampolineEHFrame)];\n"
            f"    memcpy(Frame, {s}::TrampolineEHFrame, sizeof(Frame));\n"
            f"    uint64_t Begin = reinterpret_cast<uintptr_t>(Block);\n"
            f"    uint64_t Range = N * {s}::TrampolineSize;\n"
            f"    memcpy(Frame + {s}::TrampolineEHFramePCBeginOffset, &Begin, 8);\n"
            f"    memcpy(Frame + {s}::TrampolineEHFramePCRangeOffset, &Range, 8);\n"
            f"    dwarf_eh_bases Bases;\n"
            f"    __register_frame(Frame);\n"
            f"    const void *Last = _Unwind_Find_FDE(Block + Range - 1, &Bases);\n"
            f"    bool Starts = Bases.func == Block;\n"
            f"    const void *Past = _Unwind_Find_FDE(Block + Range, &Bases);\n"
            f'    printf("{name}.trampolines %d %d %d\\n", Last != nullptr, Starts,\n'
            f"           Past == nullptr);\n"
            f"    __deregister_frame(Frame); }}\n"
        )
    return (
        f'#include "{ROOT / "generated" / "orc_resolvers.h"}"\n'
        "#include <cstdio>\n"
        "#include <cstring>\n"
        'extern "C" void __register_frame(void *);\n'
        'extern "C" void __deregister_frame(void *);\n'
        "struct dwarf_eh_bases { void *tbase; void *dbase; void *func; };\n"
        'extern "C" const void *_Unwind_Find_FDE(void *, dwarf_eh_bases *);\n'
        "static void dump(const char *Name, const uint8_t *Data, unsigned Size) {\n"
        '  printf("%s ", Name);\n'
        '  for (unsigned I = 0; I < Size; ++I) printf("%02x", Data[I]);\n'
        '  printf("\\n");\n'
        "}\n"
        f"int main() {{\n{body}}}\n"
    )


def test_cpp_unwind_arrays_compile_equal_python_and_register(tmp_path, generated_module):
    tables = {
        t.llvm_class: t
        for t in generated_module.TABLES.values()
        if t.eh_frame is not None or t.unwind_info is not None
    }
    source = tmp_path / "unwind.cpp"
    source.write_text(_cpp_program(tables))
    binary, errors = gxx_cache.executable(
        "unwind", ["-std=c++17", "-Wall", "-Werror"], [source], scratch=[tmp_path], out=tmp_path
    )
    assert errors == "", errors
    out = subprocess.run([binary], capture_output=True, text=True, check=True).stdout
    printed = {}
    for line in out.splitlines():
        key, *values = line.split(maxsplit=1)
        printed[key] = values[0] if values else ""
    expected = {}
    for name, table in tables.items():
        if table.eh_frame is not None:
            expected[f"{name}.EHFrame"] = table.eh_frame.hex()
            expected[f"{name}.EHFramePCBeginOffset"] = f"{table.eh_frame_pc_begin_offset:x}"
            expected[f"{name}.found"] = "1 1 1"
            expected[f"{name}.TrampolineEHFrame"] = table.trampoline_eh_frame.hex()
            expected[f"{name}.trampolines"] = "1 1 1"
        else:
            expected[f"{name}.UnwindInfo"] = table.unwind_info.hex()
            expected[f"{name}.RuntimeFunction"] = table.runtime_function.hex()
            expected[f"{name}.UnwindInfoOffset"] = f"{table.unwind_info_offset:x}"
    assert printed == expected
    assert len(expected) == 5 * len(SYSV) + 3 * len(WIN64)
