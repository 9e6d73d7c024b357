"""Encoders for the scaffold instructions (direct calls, returns) of verify's chain."""

from __future__ import annotations


def rel32(at: int, length: int, target: int) -> bytes:
    disp = target - (at + length)
    if not -(1 << 31) <= disp < 1 << 31:
        raise ValueError(f"target {target:#x} out of rel32 range of {at:#x}")
    return disp.to_bytes(4, "little", signed=True)


def words(order: str, *values: int) -> bytes:
    return b"".join(v.to_bytes(4, order) for v in values)


def field(value: int, bits: int, shift: int = 0) -> int:
    return (value & ((1 << bits) - 1)) << shift


def reach(at: int, target: int, bits: int) -> int:
    off = target - at
    if not -(1 << (bits - 1)) <= off < 1 << (bits - 1):
        raise ValueError(f"a call from {at:#x} cannot reach {target:#x}")
    return off
