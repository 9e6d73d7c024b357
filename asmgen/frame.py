"""The resolver's stack frame, computed from the spec rather than by hand.

At the call to the re-entry function the stack holds, from high to low
addresses: the caller's return address, the trampoline's return address, the
saved frame pointer and registers, the vector-state area (with the padding
that aligns the call), and the callee's home (shadow) area.
"""

from __future__ import annotations

from dataclasses import dataclass

from .spec import Spec


@dataclass(frozen=True)
class Frame:
    slot: int  # bytes per pushed register
    return_addresses: int  # bytes of return addresses above the resolver's frame
    pushes: int  # bytes of pushed registers, frame pointer included
    vector_area: int  # bytes of saved vector state
    padding: int  # bytes that align the call to stack_align
    shadow: int  # bytes of the callee's home area
    align: int

    @property
    def vector_alloc(self) -> int:
        """One stack adjustment covers the vector area and the alignment padding."""
        return self.vector_area + self.padding

    @property
    def size_at_call(self) -> int:
        """Bytes from the aligned point before the caller's call down to sp at the call."""
        return self.return_addresses + self.pushes + self.vector_alloc + self.shadow


def compute_frame(spec: Spec) -> Frame:
    slot = spec.pointer_size
    # The caller's call and the trampoline's call each push a return address.
    return_addresses = 2 * slot
    pushes = (1 + len(spec.resolver.saves)) * slot
    vector_area = spec.resolver.vector_state.area_size
    align = spec.call.stack_align
    used = return_addresses + pushes + vector_area + spec.call.shadow_space
    padding = -used % align
    return Frame(
        slot=slot,
        return_addresses=return_addresses,
        pushes=pushes,
        vector_area=vector_area,
        padding=padding,
        shadow=spec.call.shadow_space,
        align=align,
    )
