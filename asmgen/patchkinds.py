"""How a runtime address becomes the bits of a patched field.

Each kind's expression is written in the common subset of Python and C++, so
the generator, the emitted Python module and the emitted C++ all compute the
field from one source text.  Where the field sits (byte offset, shift, width)
is never stated here: layout discovers it by assembling.

A kind of zero bits (``runtime_word``) carries no address: it marks an
instruction word that the JIT writes as a whole at run time (with a table
whose ``patched_words`` is ``zero``), such as the `dsll` between the MIPS64
%higher/%hi/%lo steps or MIPS32's endian-dependent `move $t9, <result>`.
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

    @property
    def carries_address(self) -> bool:
        return self.bits > 0

    @property
    def mask(self) -> int:
        return (1 << self.bits) - 1

    def encode(self, value: int) -> int:
        if not 0 <= value < 1 << self.value_bits:
            raise ValueError(
                f"{self.name}: address {value:#x} does not fit in {self.value_bits} bits"
            )
        return eval(self._code, {}, {"value": value}) & self.mask

    @property
    def _code(self):
        return _COMPILED.setdefault(self.expr, compile(self.expr, self.name, "eval"))


_COMPILED: dict = {}

KINDS: dict[str, PatchKind] = {
    kind.name: kind
    for kind in (
        PatchKind("abs64", 64, "value", "64-bit absolute address (imm64 or data slot)"),
        PatchKind("abs32", 32, "value", "32-bit absolute address", value_bits=32),
        PatchKind("hi16", 16, "((value + 0x8000) >> 16) & 0xFFFF", "%hi: bits 31..16, rounded"),
        PatchKind("lo16", 16, "value & 0xFFFF", "%lo: bits 15..0"),
        PatchKind(
            "higher16",
            16,
            "((value + 0x80008000) >> 32) & 0xFFFF",
            "%higher: bits 47..32, rounded",
        ),
        PatchKind(
            "highest16",
            16,
            "((value + 0x800080008000) >> 48) & 0xFFFF",
            "%highest: bits 63..48, rounded",
        ),
        PatchKind(
            "runtime_word",
            0,
            "0",
            "no address bits: the whole instruction word is written at run time",
        ),
    )
}

ENCODERS = {name: kind.encode for name, kind in KINDS.items()}
