"""The resolver's stack frame, computed from the spec rather than by hand.

Two shapes, chosen by the arch (`Arch.frame_style`):

push (`Arch.return_on_stack`)
    A call pushes its return address.  At the call to the re-entry function
    the stack holds, from high to low addresses: the caller's return address,
    the trampoline's return address, the saved frame pointer and registers,
    the alignment padding, the vector-state area, the outgoing stack
    arguments, and the callee's home (shadow) area.  When the stack may be
    less aligned at entry than the call needs (`call.incoming_align`),
    the resolver realigns below its frame pointer (`and $-align, sp`) after
    saving the original stack pointer; alignment is then counted from there.

store (return address in a register)
    Return addresses live in registers.  The resolver lowers sp once by
    `size` bytes and stores `resolver.saves` then `resolver.fp_saves` at
    increasing offsets from sp, above the home area it reserves and the
    convention's frame header (`call.link_area`: a back chain and the
    callee's link-register save slot, where a convention has one).  A spec
    with a frame record pushes the same registers in pairs instead, with the
    record, `resolver.frame_pointer` and the trampoline's saved link, on
    top.  `size` is the save area rounded up to
    `resolver.frame_align`, which defaults to `call.stack_align`.  Some of
    LLVM's tables round to 8 only, so their specs set `frame_align: 0x8` to
    reproduce those tables; `aligned_at_call` is then
    false, which is a defect of those tables that the spec states openly.
"""

from __future__ import annotations

from dataclasses import dataclass

from asmgen.spec.schema import REENTRY_ARGS, Spec


def align_up(value: int, align: int) -> int:
    return value + (-value % align)


@dataclass(frozen=True)
class Frame:
    style: str  # "push" or "store"
    slot: int  # bytes per pushed/stored general register
    return_addresses: int  # bytes of return addresses above the resolver's frame
    pushes: int  # push style: bytes of pushed registers, frame pointer (and saved sp) included
    realign: bool  # push style: sp is realigned below the saved registers' frame pointer
    vector_area: int  # bytes of saved vector state (fxsave area)
    arg_area: int  # bytes of outgoing stack arguments below the vector area
    padding: int  # bytes that align the call (push) or round the frame (store)
    shadow: int  # bytes of the callee's home area
    align: int  # stack alignment the call needs (call.stack_align)
    record: int  # store style: bytes of the frame record (frame pointer + saved link)
    size: int  # store style: bytes the resolver allocates for its own frame
    save_offsets: tuple[tuple[str, int], ...]  # store style: register -> offset from sp
    arg_offsets: tuple[int, ...]  # offset from sp at the call of each stack argument
    # Push style: alignment sp is rounded down to (`and`) after the vector
    # allocation, when the vector area needs more than the stack gives (XSAVE's
    # 64 bytes); 0 when the allocation is static.  sp is then restored from the
    # frame pointer.
    vector_realign: int = 0
    # Push style, q-regs: vector register -> offset from sp of its slot.
    vector_slots: tuple[tuple[str, int], ...] = ()
    # Push style: the vector area's size is read at run time (XSAVE via CPUID).
    vector_dynamic: bool = False
    # Push style: bytes of registers pushed below the frame pointer.
    saves_bytes: int = 0
    # A feature-masked vector area (`VectorArea.header`): its header's offset
    # in the area and size; (0, 0) for none.
    vector_header: tuple[int, int] = (0, 0)
    # The least size of a vector area sized at run time (vector_dynamic).
    vector_min_area: int = 0

    @property
    def vector_alloc(self) -> int:
        """Push style: one stack adjustment covers the padding, the vector area and
        the outgoing stack arguments."""
        return self.vector_area + self.arg_area + self.padding

    @property
    def vector_offset(self) -> int:
        """Offset of the vector-state area from sp after `vector_alloc`."""
        return self.arg_area

    @property
    def aligned_pushes(self) -> int:
        """Bytes pushed between the aligned reference point and the vector allocation."""
        if self.realign:
            return self.pushes - 2 * self.slot  # frame pointer and saved sp sit above
        return self.return_addresses + self.pushes

    @property
    def size_at_call(self) -> int:
        """Bytes from the aligned reference point (the caller's aligned sp, or the
        realigned sp) down to sp at the call."""
        if self.vector_realign:
            # sp was rounded down to vector_realign (a multiple of align), with
            # the outgoing arguments and the vector area above it.
            return self.shadow
        if self.style == "push":
            return self.aligned_pushes + self.vector_alloc + self.shadow
        return self.size + self.shadow

    @property
    def aligned_at_call(self) -> bool:
        return self.size_at_call % self.align == 0

    @property
    def xsave_header_clear(self) -> tuple[int, ...]:
        """Offsets from sp of the XSAVE header's quadwords.

        XSAVE writes only the XSTATE_BV bits that its feature mask requests and
        nothing else of the header, and XRSTOR faults on stale bits there
        (a component XCR0 lacks, a non-zero XCOMP_BV or reserved byte), so the
        resolver clears the whole header of the uninitialised stack first.
        """
        at, size = self.vector_header
        header = self.vector_offset + at
        return tuple(header + q for q in range(0, size, 8))

    def offset(self, reg: str) -> int:
        """Store style: offset from sp of the slot that holds `reg`."""
        for name, offset in self.save_offsets:
            if name == reg:
                return offset
        raise KeyError(f"register {reg!r} is not saved in the frame")


def compute_frame(spec: Spec) -> Frame:
    arch = spec.arch_info
    slot = spec.pointer_size
    align = spec.call.stack_align
    stack_args = max(0, REENTRY_ARGS - len(spec.call.int_args))
    arg_offsets = tuple(i * slot for i in range(stack_args))
    # The home area the resolver reserves: the convention's, unless a spec
    # reproduces a table that reserves less (and declares it).
    shadow = spec.home_reserved
    common = {
        "slot": slot,
        "shadow": shadow,
        "align": align,
        "arg_offsets": arg_offsets,
    }
    if arch.frame_style == "push":
        return _push_frame(spec, stack_args, common)
    return _store_frame(spec, common)


def _push_frame(spec: Spec, stack_args: int, common: dict) -> Frame:
    slot = common["slot"]
    align = common["align"]
    realign = spec.call.entry_align < align
    vector = spec.resolver.vector_state
    vector_area = vector.area_size
    slots: list[tuple[str, int]] = []
    arg_area = stack_args * slot
    area = spec.arch_info.vector_area(vector.kind)
    masked = area is not None and area.feature_masked
    dynamic = masked and vector.sizing == "cpuid"
    if arg_area and (vector_area or dynamic):
        # The vector area sits above the arguments and must stay aligned.
        arg_area = align_up(arg_area, vector.align)
    for name in spec.resolver.fp_saves:
        slots.append((name, arg_area + vector_area))
        vector_area += spec.arch_info.register(name).bits // 8
    # The frame pointer, and with realignment the original sp, are pushed first.
    pushes = (1 + int(realign) + len(spec.resolver.saves)) * slot
    # The caller's return address, and the trampoline's unless it jumps to the resolver.
    return_addresses = (1 if spec.trampoline.jumps else 2) * slot
    below = len(spec.resolver.saves) * slot if realign else return_addresses + pushes
    used = below + vector_area + arg_area + common["shadow"]
    # The stack is `align`-aligned after realignment, entry_align-aligned otherwise.
    vector_realign = vector.align if vector.align > max(spec.call.entry_align, align) else 0
    return Frame(
        vector_realign=vector_realign,
        vector_slots=tuple(slots),
        vector_dynamic=dynamic,
        vector_header=(area.fixed, area.header) if masked else (0, 0),
        vector_min_area=area.size if dynamic else 0,
        saves_bytes=len(spec.resolver.saves) * slot,
        style="push",
        return_addresses=return_addresses,
        pushes=pushes,
        realign=realign,
        vector_area=vector_area,
        arg_area=arg_area,
        # With realignment the `and` pads; it can only round sp down.
        padding=0 if vector_realign else -used % align,
        record=0,
        size=0,
        save_offsets=(),
        **common,
    )


def _store_frame(spec: Spec, common: dict) -> Frame:
    arch = spec.arch_info
    slot = common["slot"]
    offsets = []
    # The convention's frame header (back chain, link-register save slot) sits
    # at the bottom, where the re-entry function finds it; a home area the
    # resolver reserves below its saves covers as much of it.
    at = max(0, spec.call.link_area - common["shadow"])
    record = 2 * slot if spec.resolver.frame_pointer else 0
    # A frame with a frame record is pushed from the top down: the
    # FP/vector registers, pushed last, end up lowest.
    order = spec.resolver.saves + spec.resolver.fp_saves
    if record:
        order = spec.resolver.fp_saves + spec.resolver.saves
    for name in order:
        offsets.append((name, at))
        at += arch.register(name).bits // 8
    used = record + at
    size = align_up(used, spec.resolver.frame_align or common["align"])
    return Frame(
        style="store",
        return_addresses=0,
        pushes=0,
        realign=False,
        vector_area=0,
        arg_area=0,
        padding=size - used,
        record=record,
        size=size,
        save_offsets=tuple(offsets),
        **common,
    )
