"""Unwind information for x86-64 resolvers (the arch record's `unwind`), so
debuggers and profilers can walk through a resolver frame.

The frame is read from the assembled code itself (capstone decodes it): the
`push %rbp; mov %rsp, %rbp` frame record, the register pushes that follow, and
the `pop %rbp` that ends it.  Nothing is counted by hand.

`eh_frame` (System V, spec `unwind: eh_frame`) is a `.eh_frame` section body:
one CIE and one FDE, then a zero terminator.  pc_begin is an absolute 8-byte
address (DW_EH_PE_absptr) that the JIT writes at `pc_begin_offset` before it
calls `__register_frame`.  Rules: CFA = rsp+8 at entry; after `push %rbp`,
CFA = rsp+16 and rbp at CFA-16; after `mov %rsp, %rbp`, CFA = rbp+16; each
later push saves its register at the next lower slot; after `pop %rbp`, CFA =
rsp+8 again.

`trampoline_eh_frame` covers a block of trampolines with the same CIE and one
FDE without instructions.  A stub jumps to a trampoline, so at its first byte
sp points at the JIT'd caller's return address: the CIE's initial rules (CFA
= rsp+8, return address at CFA-8).  The trampoline's call pushes the only
other return address; the unwinder, coming back from the resolver, looks up
that address - 1, inside the call, where sp has not moved yet.  (A
shadow-stack-safe trampoline jumps to the resolver instead: it is never on
the stack, and the same rules hold up to its jump.)  Both facts
are read from the assembled trampoline: no instruction before the call's end
writes rsp, and the call is the last instruction that runs.  pc_begin (the
block's address) and pc_range (trampolines x size) are filled in by the JIT.

`win64` (spec `unwind: win64`) is an UNWIND_INFO (version 1) followed by one
RUNTIME_FUNCTION whose addresses are relative to the resolver's first byte
(the base the JIT passes to RtlAddFunctionTable).  The prolog is `push %rbp;
mov %rsp, %rbp`: UWOP_SET_FPREG (rbp, offset 0) and UWOP_PUSH_NONVOL (rbp).
The registers pushed after that are not described: on Win64 the resolver
changes no non-volatile register, and everything below the frame pointer,
pushes and the realigned vector area alike, is undone by `rsp = rbp`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from asmgen.arches.model import UnwindError, UnwindFormat

# DWARF register numbers of the x86-64 psABI; 16 is the return address.
DWARF_REGS = {
    "rax": 0,
    "rdx": 1,
    "rcx": 2,
    "rbx": 3,
    "rsi": 4,
    "rdi": 5,
    "rbp": 6,
    "rsp": 7,
    **{f"r{i}": i for i in range(8, 16)},
}
DWARF_RA = 16
# Win64 register numbers in unwind codes.
WIN64_REGS = {"rax": 0, "rcx": 1, "rdx": 2, "rbx": 3, "rsp": 4, "rbp": 5, "rsi": 6, "rdi": 7}
WIN64_REGS.update({f"r{i}": i for i in range(8, 16)})

# DWARF call-frame instructions used here.
DW_CFA_advance_loc = 0x40
DW_CFA_offset = 0x80
DW_CFA_def_cfa = 0x0C
DW_CFA_def_cfa_register = 0x0D
DW_CFA_def_cfa_offset = 0x0E
DW_CFA_advance_loc1 = 0x02
DW_CFA_advance_loc2 = 0x03
DW_CFA_advance_loc4 = 0x04
# Win64 unwind operations.
UWOP_PUSH_NONVOL = 0
UWOP_SET_FPREG = 3


@dataclass(frozen=True)
class FrameEvents:
    """Offsets just after each frame-changing instruction."""

    push_rbp: int
    set_fp: int
    # Each 8-byte push after the frame record: its register (None for an
    # immediate or memory operand, which no rule describes) and end offset.
    pushes: tuple[tuple[str | None, int], ...]
    pop_rbp: int
    size: int


def frame_events(code: bytes) -> FrameEvents:
    import capstone

    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    push_rbp = set_fp = pop_rbp = None
    pushes = []
    for insn in md.disasm(code, 0):
        end = insn.address + insn.size
        op = insn.op_str.replace(" ", "")
        if insn.mnemonic == "push" and op == "rbp" and push_rbp is None:
            push_rbp = end
        elif insn.mnemonic == "mov" and op == "rbp,rsp" and push_rbp is not None:
            set_fp = end
        elif insn.mnemonic == "push" and set_fp is not None and pop_rbp is None:
            pushes.append((op if op in DWARF_REGS else None, end))
        elif insn.mnemonic == "pop" and op == "rbp":
            pop_rbp = end
    if push_rbp is None or set_fp is None or pop_rbp is None:
        raise UnwindError(
            "the resolver has no `push %rbp; mov %rsp, %rbp` ... `pop %rbp` frame to describe"
        )
    return FrameEvents(push_rbp, set_fp, tuple(pushes), pop_rbp, len(code))


def _uleb(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _sleb(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        done = (value == 0 and not byte & 0x40) or (value == -1 and byte & 0x40)
        out.append(byte | (0 if done else 0x80))
        if done:
            return bytes(out)


def _advance(delta: int) -> bytes:
    """The shortest advance of `delta` bytes (the CIE's code alignment is 1)."""
    if delta < 0x40:
        return bytes([DW_CFA_advance_loc | delta])
    for op, width in ((DW_CFA_advance_loc1, 1), (DW_CFA_advance_loc2, 2), (DW_CFA_advance_loc4, 4)):
        if delta >> (8 * width) == 0:
            return bytes([op]) + delta.to_bytes(width, "little")
    raise UnwindError(f"an advance of {delta:#x} bytes does not fit DWARF's 4-byte advance")


def _pad(body: bytes) -> bytes:
    """Entries are padded with DW_CFA_nop (0) to a multiple of 8 bytes, length included."""
    return body + bytes(-(len(body) + 4) % 8)


@dataclass(frozen=True)
class EhFrame:
    data: bytes
    pc_begin_offset: int  # the FDE's 8-byte absolute pc_begin

    @property
    def pc_range_offset(self) -> int:
        """The FDE's 8-byte pc_range, right after pc_begin."""
        return self.pc_begin_offset + 8


def _cie() -> bytes:
    """CIE: id 0, version 1, "zR", code align 1, data align -8, RA column 16,
    FDE pointers DW_EH_PE_absptr (0); at entry CFA = rsp+8, RA at CFA-8."""
    body = (
        struct.pack("<IB", 0, 1)
        + b"zR\0"
        + _uleb(1)
        + _sleb(-8)
        + _uleb(DWARF_RA)
        + _uleb(1)
        + bytes([0x00])
        + bytes([DW_CFA_def_cfa])
        + _uleb(DWARF_REGS["rsp"])
        + _uleb(8)
        + bytes([DW_CFA_offset | DWARF_RA])
        + _uleb(1)
    )
    cie = _pad(body)
    return struct.pack("<I", len(cie)) + cie


def _eh_frame(pc_range: int, ops: bytes) -> EhFrame:
    """The CIE, one FDE covering [0, pc_range) with `ops`, the terminator."""
    cie = _cie()
    fde_offset = len(cie)
    # CIE pointer: distance from this field back to the CIE.
    fde_body = struct.pack("<IQQ", fde_offset + 4, 0, pc_range) + _uleb(0) + ops
    fde = _pad(fde_body)
    fde = struct.pack("<I", len(fde)) + fde
    return EhFrame(cie + fde + bytes(4), pc_begin_offset=fde_offset + 8)


def eh_frame(code: bytes) -> EhFrame:
    events = frame_events(code)
    ops = bytearray()
    at = 0
    ops += _advance(events.push_rbp - at) + bytes([DW_CFA_def_cfa_offset]) + _uleb(0x10)
    ops += bytes([DW_CFA_offset | DWARF_REGS["rbp"]]) + _uleb(2)
    at = events.push_rbp
    ops += _advance(events.set_fp - at) + bytes([DW_CFA_def_cfa_register])
    ops += _uleb(DWARF_REGS["rbp"])
    at = events.set_fp
    for slot, (reg, end) in enumerate(events.pushes, start=3):
        if reg is not None:
            ops += _advance(end - at) + bytes([DW_CFA_offset | DWARF_REGS[reg]]) + _uleb(slot)
            at = end
    ops += _advance(events.pop_rbp - at) + bytes([DW_CFA_def_cfa]) + _uleb(DWARF_REGS["rsp"])
    ops += _uleb(8)
    return _eh_frame(events.size, bytes(ops))


def trampoline_call_end(code: bytes) -> int:
    """Offset just past the trampoline's call (or, in a shadow-stack-safe
    trampoline, its tail jump to the resolver), after checking that nothing
    before it moves rsp (so the CIE's entry rules hold up to the call)."""
    import capstone

    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    md.detail = True
    for insn in md.disasm(code, 0):
        indirect = insn.op_str.startswith("qword ptr")
        if insn.mnemonic == "call" or (insn.mnemonic == "jmp" and indirect):
            return insn.address + insn.size
        written = {insn.reg_name(r) for r in insn.regs_access()[1]}
        if "rsp" in written or insn.group(capstone.CS_GRP_JUMP):
            what = f"{insn.mnemonic} {insn.op_str}".strip()
            raise ValueError(f"the trampoline's {what} at {insn.address:#x} comes before its call")
    raise ValueError("the trampoline has no call")


def trampoline_eh_frame(code: bytes) -> EhFrame:
    """.eh_frame for one trampoline at 0 (pc_range: its size); for a block,
    the JIT writes the block's address and trampolines x size."""
    trampoline_call_end(code)
    return _eh_frame(len(code), b"")


@dataclass(frozen=True)
class Win64Unwind:
    data: bytes  # UNWIND_INFO at `unwind_info_offset`, RUNTIME_FUNCTION after it
    unwind_info_offset: int  # relative to the resolver's first byte
    runtime_function_offset: int


def win64_unwind(code: bytes) -> Win64Unwind:
    events = frame_events(code)
    if events.set_fp > 0xFF:
        # UNWIND_INFO's SizeOfProlog and each code's offset are one byte.
        raise UnwindError(f"the Win64 prolog is {events.set_fp:#x} bytes; UNWIND_INFO allows 0xff")
    codes = [
        (events.set_fp, UWOP_SET_FPREG, 0),
        (events.push_rbp, UWOP_PUSH_NONVOL, WIN64_REGS["rbp"]),
    ]
    frame_register, frame_offset = WIN64_REGS["rbp"], 0
    info = struct.pack(
        "<BBBB",
        1,  # version 1, no flags
        events.set_fp,
        len(codes),
        frame_register | frame_offset << 4,
    )
    info += b"".join(struct.pack("<BB", offset, op | opinfo << 4) for offset, op, opinfo in codes)
    info += bytes(len(info) % 4)  # the code array has an even number of slots
    unwind_at = events.size + (-events.size % 4)
    function = struct.pack("<III", 0, events.size, unwind_at)
    return Win64Unwind(info + function, unwind_at, unwind_at + len(info))


# Spec `unwind` kinds this arch's resolver template supports, and their builders.
FORMATS = (
    ("eh_frame", UnwindFormat(eh_frame, trampoline_eh_frame)),
    ("win64", UnwindFormat(win64_unwind)),
)
