"""A patch kind: how a runtime address becomes the bits of a patched field.

The kinds every arch may use (absolute words, %hi/%lo pairs, PC-relative
hi20/lo12 pairs) are listed in asmgen/build/patchkinds.py; a kind only one
arch's instructions have is part of that arch's record (`Arch.patch_kinds`).

Each kind's expression is written in the common subset of Python and C++, so
the generator, the emitted Python module and the emitted C++ all compute the
field from one source text.  Where the field sits (byte offset, shift, width)
is never stated here: layout discovers it by assembling.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PatchKind:
    name: str
    bits: int  # width of the encoded field
    expr: str  # field value from `value`, valid Python and C++
    description: str
    value_bits: int = 64  # addresses wider than this do not fit the field
    # PC-relative kinds take a displacement, not an address.  `anchor` says where
    # the hardware measures it from: "self", the statement the patch's label
    # marks (a literal load, auipc, pcaddu12i), or "next", the end of the
    # statement holding the field (a call or jump whose displacement counts
    # from the next instruction).  The offset itself comes from the assembled code.
    pcrel: bool = False
    anchor: str = "self"
    # What `patch()` renders for the template: "field", the field's bits; or
    # "displacement", the signed displacement from the patch's label, which the
    # template writes as `Label + D` so the assembler encodes it (and so shows
    # the anchor it uses).
    operand: str = "field"
    # The value range of a PC-relative field, from its width: `signed` field of
    # `value >> shift` after adding `round`; `exact` values have their low
    # `shift` bits clear.  A `partner` field (a %lo) is limited by its %hi.
    shift: int = 0
    round: int = 0
    exact: bool = False
    partner: bool = False
    limit: str = ""  # the range in words, for errors

    @property
    def carries_address(self) -> bool:
        return self.bits > 0

    @property
    def mask(self) -> int:
        return (1 << self.bits) - 1

    def value_range(self, bits: int | None = None) -> tuple[int, int]:
        """The values a field of `bits` bits (the kind's own width by default) holds."""
        bits = self.bits if bits is None else bits
        if not self.pcrel:
            return 0, (1 << self.value_bits) - 1
        if self.partner:
            return -(1 << 63), (1 << 63) - 1
        step = 1 << self.shift
        low = -(1 << (bits - 1)) * step - self.round
        high = ((1 << (bits - 1)) - 1) * step + (0 if self.exact else step - 1) - self.round
        return low, high

    @property
    def align(self) -> int:
        return 1 << self.shift if self.exact else 1

    def check(self, value: int) -> None:
        """Raise ValueError naming the limit when `value` does not fit."""
        low, high = self.value_range()
        what = "displacement" if self.pcrel else "address"
        if not low <= value <= high:
            raise ValueError(
                f"{self.name}: {what} {value:#x} is out of range [{low:#x}, {high:#x}]"
                + (f" ({self.limit})" if self.limit else "")
            )
        if value % self.align:
            raise ValueError(f"{self.name}: {what} {value:#x} is not a multiple of {self.align}")

    def encode(self, value: int) -> int:
        if self.pcrel:
            self.check(value)
            return eval(self._code, {}, {"value": value}) & self.mask
        if not 0 <= value < 1 << self.value_bits:
            raise ValueError(
                f"{self.name}: address {value:#x} does not fit in {self.value_bits} bits"
            )
        return eval(self._code, {}, {"value": value}) & self.mask

    @property
    def _code(self):
        return _COMPILED.setdefault(self.expr, compile(self.expr, self.name, "eval"))


_COMPILED: dict = {}
