"""A table's unwind information (asmgen/unwind.py, spec `unwind`) in each
output: tables.json, the Python module's table objects and the C++ structs.

Every address in it is relative to the resolver's first byte, so the bytes do
not depend on where the JIT puts the resolver; what the JIT fills in or
places before registering is said next to the bytes in each output.
"""

from __future__ import annotations

from asmgen.build.table import Table
from asmgen.build.unwind import eh_frame, win64_unwind


def parts(table: Table) -> dict[str, bytes | int]:
    """The unwind bytes and offsets under the names the Python module uses;
    empty when the spec asks for none."""
    if table.spec.unwind == "eh_frame":
        frame = eh_frame(table.code)
        return {"eh_frame": frame.data, "eh_frame_pc_begin_offset": frame.pc_begin_offset}
    if table.spec.unwind == "win64":
        info = win64_unwind(table.code)
        split = info.runtime_function_offset - info.unwind_info_offset
        return {
            "unwind_info": info.data[:split],
            "unwind_info_offset": info.unwind_info_offset,
            "runtime_function": info.data[split:],
        }
    return {}


def json_record(table: Table) -> dict | None:
    """tables.json's `unwind` key: the bytes as hex, with the offsets the JIT needs."""
    found = parts(table)
    if "eh_frame" in found:
        return {
            "eh_frame": found["eh_frame"].hex(),
            "pc_begin_offset": found["eh_frame_pc_begin_offset"],
        }
    if "unwind_info" in found:
        at = found["unwind_info_offset"]
        return {
            "win64": (found["unwind_info"] + found["runtime_function"]).hex(),
            "unwind_info_offset": at,
            "runtime_function_offset": at + len(found["unwind_info"]),
        }
    return None


# -- the Python module ---------------------------------------------------------

PYTHON_CLASS_FIELDS = """\
    # Unwind information (spec `unwind`); addresses are relative to the resolver.
    # eh_frame: a .eh_frame body (CIE, FDE, zero terminator) whose FDE pc_begin,
    # 8 bytes at eh_frame_pc_begin_offset, is 0: eh_frame_at() adds the resolver's
    # address, and the result goes to __register_frame (libgcc takes its start;
    # a libunwind that takes one FDE takes eh_frame_pc_begin_offset - 8).
    eh_frame: bytes | None = None
    eh_frame_pc_begin_offset: int | None = None
    # Win64: unwind_info (UNWIND_INFO) belongs at resolver + unwind_info_offset;
    # runtime_function (RUNTIME_FUNCTION: begin, end, unwind info RVAs) covers the
    # resolver, the BaseAddress to pass to RtlAddFunctionTable.
    unwind_info: bytes | None = None
    unwind_info_offset: int | None = None
    runtime_function: bytes | None = None
"""

PYTHON_METHODS = '''
    def eh_frame_at(self, resolver_addr: int) -> bytes:
        """The .eh_frame for a resolver at `resolver_addr`, ready to register."""
        if self.eh_frame is None or self.eh_frame_pc_begin_offset is None:
            raise ValueError(f"{self.abi}: no .eh_frame")
        at = self.eh_frame_pc_begin_offset
        begin = resolver_addr.to_bytes(8, self.byteorder)
        return self.eh_frame[:at] + begin + self.eh_frame[at + 8 :]
'''


# -- the C++ header ------------------------------------------------------------

_CPP_NAMES = {
    "eh_frame": "EHFrame",
    "eh_frame_pc_begin_offset": "EHFramePCBeginOffset",
    "unwind_info": "UnwindInfo",
    "unwind_info_offset": "UnwindInfoOffset",
    "runtime_function": "RuntimeFunction",
}

_CPP_COMMENTS = {
    "eh_frame": (
        ".eh_frame body (CIE, FDE, zero terminator). The FDE's pc_begin, 8 bytes at\n"
        "EHFramePCBeginOffset, is relative to the resolver (0): in a copy, add the\n"
        "resolver's address there and pass the copy to __register_frame (libgcc\n"
        "takes its start; a libunwind taking one FDE, EHFramePCBeginOffset - 8)."
    ),
    "unwind_info": (
        "Win64 unwind information. UnwindInfo (UNWIND_INFO) belongs at the\n"
        "resolver's address + UnwindInfoOffset; RuntimeFunction (RUNTIME_FUNCTION:\n"
        "begin, end and unwind info RVAs) covers the resolver: copy it into a\n"
        "RUNTIME_FUNCTION F and call RtlAddFunctionTable(&F, 1, ResolverAddress)."
    ),
}


def cpp_members(table: Table) -> str:
    """Static constexpr members of the table's struct (C++17: implicitly inline)."""
    out = []
    for name, value in parts(table).items():
        if name in _CPP_COMMENTS:
            out.append("".join(f"  /// {line}\n" for line in _CPP_COMMENTS[name].splitlines()))
        cpp = _CPP_NAMES[name]
        if isinstance(value, bytes):
            values = ", ".join(f"0x{byte:02x}" for byte in value)
            out.append(f"  static constexpr uint8_t {cpp}[] = {{{values}}};\n")
        else:
            out.append(f"  static constexpr unsigned {cpp} = {value:#x};\n")
    return "".join(out)
