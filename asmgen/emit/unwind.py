"""A table's unwind information (`Table.unwind`, spec `unwind`) in each
output: tables.json, the Python module's table objects and the C++ structs.

Every address in it is relative to the resolver's (or the trampoline
block's) first byte, so the bytes do not depend on where the JIT puts the
code; what the JIT fills in or places before registering is said next to the
bytes in each output.
"""

from __future__ import annotations

from asmgen.build.table import Table


def parts(table: Table) -> dict[str, bytes | int]:
    """The unwind bytes and offsets under the names the Python module uses;
    empty when the spec asks for none."""
    unwind = table.unwind
    if unwind is None:
        return {}
    if unwind.kind == "eh_frame":
        frame = unwind.resolver
        found: dict[str, bytes | int] = {
            "eh_frame": frame.data,
            "eh_frame_pc_begin_offset": frame.pc_begin_offset,
        }
        if unwind.trampoline is not None:
            block = unwind.trampoline
            found |= {
                "trampoline_eh_frame": block.data,
                "trampoline_eh_frame_pc_begin_offset": block.pc_begin_offset,
                "trampoline_eh_frame_pc_range_offset": block.pc_range_offset,
            }
        return found
    if unwind.kind == "win64":
        info = unwind.resolver
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
        record = {
            "eh_frame": found["eh_frame"].hex(),
            "pc_begin_offset": found["eh_frame_pc_begin_offset"],
        }
        if "trampoline_eh_frame" in found:
            record |= {
                "trampoline_eh_frame": found["trampoline_eh_frame"].hex(),
                "trampoline_pc_begin_offset": found["trampoline_eh_frame_pc_begin_offset"],
                "trampoline_pc_range_offset": found["trampoline_eh_frame_pc_range_offset"],
            }
        return record
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
    # trampoline_eh_frame: the same for a block of trampolines (one FDE, no
    # instructions: a trampoline leaves the stack as its caller's call did);
    # trampoline_eh_frame_at() writes the block's address and its length.
    trampoline_eh_frame: bytes | None = None
    trampoline_eh_frame_pc_begin_offset: int | None = None
    trampoline_eh_frame_pc_range_offset: int | None = None
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

    def trampoline_eh_frame_at(self, block_addr: int, n: int) -> bytes:
        """The .eh_frame for `n` trampolines at `block_addr`, ready to register."""
        frame = self.trampoline_eh_frame
        at = self.trampoline_eh_frame_pc_begin_offset
        if frame is None or at is None or self.trampoline_eh_frame_pc_range_offset != at + 8:
            raise ValueError(f"{self.abi}: no trampoline .eh_frame")
        span = block_addr.to_bytes(8, self.byteorder) + (n * self.trampoline_size).to_bytes(
            8, self.byteorder
        )
        return frame[:at] + span + frame[at + 16 :]
'''


# -- the C++ header ------------------------------------------------------------

_CPP_NAMES = {
    "eh_frame": "EHFrame",
    "eh_frame_pc_begin_offset": "EHFramePCBeginOffset",
    "trampoline_eh_frame": "TrampolineEHFrame",
    "trampoline_eh_frame_pc_begin_offset": "TrampolineEHFramePCBeginOffset",
    "trampoline_eh_frame_pc_range_offset": "TrampolineEHFramePCRangeOffset",
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
    "trampoline_eh_frame": (
        ".eh_frame body for a block of trampolines: the same CIE, one FDE with no\n"
        "instructions (a trampoline leaves the stack as its caller's call did).\n"
        "In a copy, write the block's address as the 8-byte pc_begin at\n"
        "TrampolineEHFramePCBeginOffset and NumTrampolines * TrampolineSize as the\n"
        "8-byte pc_range at TrampolineEHFramePCRangeOffset, then register it."
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


# -- the ORC-ready header: registration with libgcc ------------------------------

# Generic over the ABI class: it reads the class's EHFrame/TrampolineEHFrame
# members above, so every eh_frame ABI shares one definition.
CPP_ORC_REGISTRATION = """
/// .eh_frame copies registered with the unwinder, by the code they cover.
///
/// libgcc's __register_frame takes the start of a CIE/FDE sequence ending in
/// a zero length and keeps the pointer: the bytes must stay alive and
/// unchanged until __deregister_frame gets the same pointer (it aborts on a
/// pointer it never got). LLVM frees a resolver or trampoline block without
/// telling anyone, so a registration lives here until code at an overlapping
/// address is registered (the old code is gone by then), or until remove() or
/// clear(). Call clear() (or remove() for a JIT's ranges) once the JITs whose
/// code was registered are destroyed; a stale entry only matters if other
/// code without its own unwind information is mapped at the same address.
class EHFrameRegistry {
public:
  /// The process-wide registry. Never destroyed: frames stay registered while
  /// other static destructors run.
  static EHFrameRegistry &get() {
    static EHFrameRegistry *Registry = new EHFrameRegistry;
    return *Registry;
  }

  /// Registers Frame (pc_begin and pc_range filled in) for the code in
  /// [Begin, End), after dropping every registration that overlaps it.
  void add(uint64_t Begin, uint64_t End, std::unique_ptr<uint8_t[]> Frame) {
    std::lock_guard<std::mutex> Lock(Mutex);
    dropOverlapping(Begin, End);
    Frames.push_back({Begin, End, std::move(Frame)});
    __register_frame(Frames.back().Frame.get());
  }

  /// Deregisters every registration that overlaps [Begin, End).
  void remove(uint64_t Begin, uint64_t End) {
    std::lock_guard<std::mutex> Lock(Mutex);
    dropOverlapping(Begin, End);
  }

  /// Deregisters everything.
  void clear() { remove(0, UINT64_MAX); }

  /// How many ranges are registered.
  size_t size() {
    std::lock_guard<std::mutex> Lock(Mutex);
    return Frames.size();
  }

private:
  struct Entry {
    uint64_t Begin, End;
    std::unique_ptr<uint8_t[]> Frame;
  };

  void dropOverlapping(uint64_t Begin, uint64_t End) {
    for (size_t I = 0; I < Frames.size();) {
      if (Frames[I].Begin < End && Begin < Frames[I].End) {
        __deregister_frame(Frames[I].Frame.get());
        Frames.erase(Frames.begin() + I);
      } else {
        ++I;
      }
    }
  }

  std::mutex Mutex;
  std::vector<Entry> Frames;
};

namespace orcabi_detail {
/// A copy of Frame with the FDE's 8-byte pc_begin (and, if RangeOffset is
/// not 0, pc_range) written.
inline std::unique_ptr<uint8_t[]> placeFrame(const uint8_t *Frame, size_t Size,
                                             unsigned BeginOffset, uint64_t Begin,
                                             unsigned RangeOffset, uint64_t Range) {
  std::unique_ptr<uint8_t[]> Copy(new uint8_t[Size]);
  memcpy(Copy.get(), Frame, Size);
  memcpy(Copy.get() + BeginOffset, &Begin, sizeof(Begin));
  if (RangeOffset)
    memcpy(Copy.get() + RangeOffset, &Range, sizeof(Range));
  return Copy;
}
} // namespace orcabi_detail

/// Registers the .eh_frame of Frames' resolver, written at
/// ResolverTargetAddress (an address in this process).
template <typename Frames>
void registerResolverEHFrame(llvm::orc::ExecutorAddr ResolverTargetAddress) {
  uint64_t Begin = ResolverTargetAddress.getValue();
  EHFrameRegistry::get().add(
      Begin, Begin + Frames::ResolverCodeSize,
      orcabi_detail::placeFrame(Frames::EHFrame, sizeof(Frames::EHFrame),
                                Frames::EHFramePCBeginOffset, Begin, 0, 0));
}

/// Registers one .eh_frame for NumTrampolines of Frames' trampolines written
/// at TrampolineBlockTargetAddress (an address in this process).
template <typename Frames>
void registerTrampolineEHFrame(llvm::orc::ExecutorAddr TrampolineBlockTargetAddress,
                               unsigned NumTrampolines) {
  uint64_t Begin = TrampolineBlockTargetAddress.getValue();
  uint64_t Range = uint64_t(NumTrampolines) * Frames::TrampolineSize;
  EHFrameRegistry::get().add(
      Begin, Begin + Range,
      orcabi_detail::placeFrame(Frames::TrampolineEHFrame, sizeof(Frames::TrampolineEHFrame),
                                Frames::TrampolineEHFramePCBeginOffset, Begin,
                                Frames::TrampolineEHFramePCRangeOffset, Range));
}

/// ABI, an ORCABI class, whose resolver and trampoline blocks get their
/// .eh_frame registered (EHFrameRegistry) as LLVM writes them, so unwinders
/// walk from the JIT's re-entry code through the resolver and the trampoline
/// into the JIT'd caller. The frames come from Frames: ABI itself, or an
/// asmgen class with the same code (LLVM's own class: WithEHFrames<
/// llvm::orc::OrcX86_64_SysV, X86_64_SysV_ORCABI>). For in-process JITs
/// (LocalLazyCallThroughManager, LocalJITCompileCallbackManager,
/// LocalTrampolinePool): the target addresses LLVM passes must be this
/// process's. Stubs need no frames: they only jump.
template <typename ABI, typename Frames = ABI> struct WithEHFrames : ABI {
  static_assert(Frames::ResolverCodeSize == ABI::ResolverCodeSize &&
                    Frames::TrampolineSize == ABI::TrampolineSize,
                "Frames must describe ABI's resolver and trampolines");

  static void writeResolverCode(char *ResolverWorkingMem,
                                llvm::orc::ExecutorAddr ResolverTargetAddress,
                                llvm::orc::ExecutorAddr ReentryFnAddr,
                                llvm::orc::ExecutorAddr ReentryCtxAddr) {
    ABI::writeResolverCode(ResolverWorkingMem, ResolverTargetAddress, ReentryFnAddr,
                           ReentryCtxAddr);
    registerResolverEHFrame<Frames>(ResolverTargetAddress);
  }

  static void writeTrampolines(char *TrampolineBlockWorkingMem,
                               llvm::orc::ExecutorAddr TrampolineBlockTargetAddress,
                               llvm::orc::ExecutorAddr ResolverAddr,
                               unsigned NumTrampolines) {
    ABI::writeTrampolines(TrampolineBlockWorkingMem, TrampolineBlockTargetAddress,
                          ResolverAddr, NumTrampolines);
    registerTrampolineEHFrame<Frames>(TrampolineBlockTargetAddress, NumTrampolines);
  }
};
"""

# Declared once at global scope, before the namespace (libgcc's entry points).
CPP_ORC_DECLARATIONS = """
// libgcc's dynamic frame registration: a whole .eh_frame section (LLVM's
// libunwind takes one FDE instead; EHFrameRegistry is for libgcc).
extern "C" void __register_frame(void *);
extern "C" void __deregister_frame(void *);
"""
