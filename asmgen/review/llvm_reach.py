"""Does a stub reach its pointer as far away as its class says it may?

`StubToPointerMaxDisplacement` is the distance LLVM's stub managers trust a
stub to reach its pointer from.  One stub is written by the side's own writer
with its pointer as far away as verify places it (the constant, rounded down
to a page, as asmgen.verify.emulate does), and run in unicorn: the stub must
load its target from its pointer and jump there.  A stub whose load cannot
span that distance (a literal load with a shorter range) loads from
somewhere else, and the report says where.
"""

from __future__ import annotations

import contextlib

import unicorn

from asmgen.verify.emulate import LANDING, PAGE, placement

STEPS = 16  # instructions a stub may take


def _map(uc, mapped: set[int], address: int, data: bytes) -> None:
    for page in range(address // PAGE, -(-(address + len(data)) // PAGE)):
        if page not in mapped:
            uc.mem_map(page * PAGE, PAGE)
            mapped.add(page)
    uc.mem_write(address, data)


def stub_reach(units, spec) -> str:
    """ "" when stub 0 jumps through its pointer at the farthest placement;
    otherwise what it did instead."""
    facts = spec.arch_info.emulator
    if facts is None:
        return ""
    at = placement(facts.base, units)
    stub = units.write_stubs(at.stubs, at.pointers, 1)
    size, order = spec.pointer_size, spec.endian
    marker = facts.base + LANDING  # the target the pointer holds
    mode = getattr(unicorn, facts.uc_mode) | (unicorn.UC_MODE_BIG_ENDIAN if order == "big" else 0)
    uc = unicorn.Uc(getattr(unicorn, facts.uc_arch), mode)
    for name, value in facts.init:  # as the emulator's runs start
        facts.write(uc, name, facts.read(uc, name) | value)
    mapped: set[int] = set()
    _map(uc, mapped, at.stubs, stub)
    _map(uc, mapped, at.pointers, marker.to_bytes(size, order))
    _map(uc, mapped, marker, b"\0" * 4)
    reads: list[int] = []

    def on_read(uc, access, address, size, value, data):
        reads.append(address)
        return False

    uc.hook_add(unicorn.UC_HOOK_MEM_READ, on_read)
    uc.hook_add(unicorn.UC_HOOK_MEM_READ_UNMAPPED, on_read)
    with contextlib.suppress(unicorn.UcError):  # where it stopped is the finding
        uc.emu_start(at.stubs, marker, count=STEPS)
    pc = uc.reg_read(facts.reg_id(facts.pc))
    if pc == marker and at.pointers in reads:
        return ""
    distance = at.pointers - at.stubs
    loaded = f"loads from {reads[0]:#x}" if reads else "loads nothing"
    return (
        f"StubToPointerMaxDisplacement is {units.stub_to_pointer_max_displacement:#x}, but a "
        f"stub {distance:#x} bytes from its pointer ({at.pointers:#x}) {loaded} and goes to "
        f"{pc:#x}: its load does not reach that far"
    )
