"""Applying patch fields to a resolver table at run time.

This file is copied verbatim into the generated Python module, so the module
needs no asmgen install; the generator uses the same code, so what it tests
is what users run.  Keep it free of imports beyond the standard library.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Field:
    """Bits of one container (read in the target's byte order) set from an address.

    A field of zero bits carries no address: its container is written whole.
    With `whole_word` the table holds zero in the container and patching writes
    `base | field` (`base` is the container with the field's bits clear).
    """

    offset: int
    size: int
    shift: int
    bits: int
    kind: str
    base: int = 0
    whole_word: bool = False

    @property
    def mask(self) -> int:
        return ((1 << self.bits) - 1) << self.shift


@dataclass(frozen=True)
class PatchPoint:
    name: str
    offset: int
    size: int
    kind: str
    fields: tuple[Field, ...]


def apply_field(
    code: bytearray, field: Field, value: int, byteorder: str, encode: Callable[[int], int]
) -> None:
    span = slice(field.offset, field.offset + field.size)
    word = field.base if field.whole_word else int.from_bytes(code[span], byteorder)
    word = (word & ~field.mask) | ((encode(value) << field.shift) & field.mask)
    code[span] = word.to_bytes(field.size, byteorder)


def apply_patches(
    code: bytes,
    patches: tuple[PatchPoint, ...],
    values: Mapping[str, int],
    byteorder: str,
    encoders: Mapping[str, Callable[[int], int]],
) -> bytes:
    # Patches made only of zero-bit fields take no value.
    missing = [p.name for p in patches if p.name not in values and any(f.bits for f in p.fields)]
    if missing:
        raise KeyError(f"no value for patch point(s): {', '.join(missing)}")
    out = bytearray(code)
    for patch in patches:
        for field in patch.fields:
            value = values.get(patch.name, 0)
            apply_field(out, field, value, byteorder, encoders[field.kind])
    return bytes(out)
