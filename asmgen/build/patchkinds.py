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

# LLVM's names for the addresses its writeResolverCode patches the resolver
# with: the only values a patch field of a resolver may take, since the C++
# writers (both headers, `asmgen patch`) receive no others.
ADDRESS_PARAMS = ("ReentryFnAddr", "ReentryCtxAddr")


@dataclass(frozen=True)
class PatchKind:
    name: str
    bits: int  # width of the encoded field
    expr: str  # field value from `value`, valid Python and C++
    description: str
    value_bits: int = 64  # addresses wider than this do not fit the field
    # PC-relative kinds take a displacement, not an address.  `anchor` says where
    # the hardware measures it from: "self", the statement the patch's label
    # marks (AArch64 ldr, auipc, pcaddu12i), or "next", the end of the statement
    # holding the field (x86).  The offset itself comes from the assembled code.
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
        # PC-relative fields of trampolines and stubs.
        PatchKind(
            "pcrel32",
            32,
            "value",
            "x86 disp32/rel32, measured from the end of the instruction",
            pcrel=True,
            anchor="next",
            operand="displacement",
            limit="x86 disp32: +-2 GiB",
        ),
        PatchKind(
            "ldr19",
            19,
            "value >> 2",
            "AArch64 literal load (ldr): word offset from the ldr",
            pcrel=True,
            operand="displacement",
            shift=2,
            exact=True,
            limit="AArch64 literal-load range: +-1 MiB",
        ),
        PatchKind(
            "pcrel32dbl",
            32,
            "value >> 1",
            "relative-long offset in halfwords from the instruction (z/Architecture "
            "larl, lgrl, brasl)",
            pcrel=True,
            operand="displacement",
            shift=1,
            exact=True,
            limit="relative-long range: +-4 GiB",
        ),
        PatchKind(
            "pcrel_hi20",
            20,
            "(value + 0x800) >> 12",
            "upper 20 bits of a PC-relative offset (auipc, pcaddu12i), rounded",
            pcrel=True,
            shift=12,
            round=0x800,
            limit="hi20/lo12 pair: +-2 GiB",
        ),
        PatchKind(
            "pcrel_lo12",
            12,
            "value",
            "low 12 bits of a PC-relative offset, the partner of pcrel_hi20",
            pcrel=True,
            partner=True,
        ),
    )
}

ENCODERS = {name: kind.encode for name, kind in KINDS.items()}
