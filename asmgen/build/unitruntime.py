"""Writing blocks of trampolines and indirect stubs at run time.

Like runtime.py (whose `Field` and `apply_field` it uses), this file is copied
verbatim into the generated Python module after runtime.py.  A unit is one
trampoline or one stub: its code with every field clear (LLVM's base words)
and the fields that the target address sets in each copy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .runtime import Field, apply_field

# Patch names a unit template may use: what the unit's field points at.
RESOLVER_PTR = "ResolverPtr"  # the pointer slot after the trampolines
RESOLVER_ADDR = "ResolverAddr"  # the resolver itself
STUB_PTR = "StubPtr"  # the stub's own pointer in the pointers block


@dataclass(frozen=True)
class UnitField:
    """A field of one unit.  A PC-relative field holds `target - (unit address +
    anchor)`; an absolute one (`anchor` None) holds the target address.  Values
    outside [low, high], or not a multiple of `align`, do not fit."""

    field: Field
    anchor: int | None
    low: int
    high: int
    align: int
    limit: str


@dataclass(frozen=True)
class Unit:
    code: bytes
    target: str
    fields: tuple[UnitField, ...]

    @property
    def size(self) -> int:
        return len(self.code)


def _check_address(name: str, value: int, pointer_size: int) -> None:
    if not 0 <= value < 1 << (8 * pointer_size):
        raise ValueError(f"{name} {value:#x} does not fit a {pointer_size}-byte pointer")


def field_value(unit_field: UnitField, site: int, target: int, pointer_size: int) -> int:
    """What the field must hold for a unit at `site` that reaches `target`."""
    if unit_field.anchor is None:
        value = target
    else:
        # Displacements wrap around the address space, as the hardware's do.
        bits = 8 * pointer_size
        value = (target - site - unit_field.anchor) % (1 << bits)
        if value >> (bits - 1):
            value -= 1 << bits
    what = "address" if unit_field.anchor is None else "displacement"
    if not unit_field.low <= value <= unit_field.high:
        raise ValueError(
            f"{unit_field.field.kind}: {what} {value:#x} from {site:#x} to {target:#x} is out "
            f"of range [{unit_field.low:#x}, {unit_field.high:#x}]"
            + (f" ({unit_field.limit})" if unit_field.limit else "")
        )
    if value % unit_field.align:
        raise ValueError(
            f"{unit_field.field.kind}: {what} {value:#x} from {site:#x} to {target:#x} is not "
            f"a multiple of {unit_field.align}"
        )
    return value


def write_units(
    unit: Unit,
    count: int,
    block_addr: int,
    target_of: Callable[[int], int],
    pointer_size: int,
    byteorder: str,
    encoders: Mapping[str, Callable[[int], int]],
) -> bytearray:
    """`count` copies of `unit` as linked at `block_addr`; copy I reaches `target_of(I)`."""
    if count < 0:
        raise ValueError(f"count {count} is negative")
    out = bytearray()
    for index in range(count):
        site = block_addr + index * unit.size
        code = bytearray(unit.code)
        for unit_field in unit.fields:
            value = field_value(unit_field, site, target_of(index), pointer_size)
            apply_field(code, unit_field.field, value, byteorder, encoders[unit_field.field.kind])
        out += code
    return out


def pointer_slot_offset(count: int, unit_size: int, pointer_size: int) -> int:
    """Where a trampoline block keeps the resolver's address: after the
    trampolines, aligned to the pointer size."""
    return -(-count * unit_size // pointer_size) * pointer_size


def write_trampolines(
    unit: Unit,
    pointer_size: int,
    byteorder: str,
    encoders: Mapping[str, Callable[[int], int]],
    block_addr: int,
    resolver_addr: int,
    count: int,
) -> bytes:
    _check_address("block address", block_addr, pointer_size)
    _check_address("resolver address", resolver_addr, pointer_size)
    if unit.target == RESOLVER_PTR:
        slot = pointer_slot_offset(count, unit.size, pointer_size)
        out = write_units(
            unit, count, block_addr, lambda _: block_addr + slot, pointer_size, byteorder, encoders
        )
        out += bytes(slot - len(out)) + resolver_addr.to_bytes(pointer_size, byteorder)
        return bytes(out)
    return bytes(
        write_units(
            unit, count, block_addr, lambda _: resolver_addr, pointer_size, byteorder, encoders
        )
    )


def write_stubs(
    unit: Unit,
    pointer_size: int,
    byteorder: str,
    encoders: Mapping[str, Callable[[int], int]],
    stubs_addr: int,
    ptrs_addr: int,
    count: int,
) -> bytes:
    _check_address("stubs address", stubs_addr, pointer_size)
    _check_address("pointers address", ptrs_addr, pointer_size)
    return bytes(
        write_units(
            unit,
            count,
            stubs_addr,
            lambda index: ptrs_addr + index * pointer_size,
            pointer_size,
            byteorder,
            encoders,
        )
    )
