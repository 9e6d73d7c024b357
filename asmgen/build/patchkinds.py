"""Every patch kind by name: the kinds any arch may use, listed here, and the
kinds unique to one arch, from its record (asmgen/arches/patchkind.py says
what a kind is).

A kind of zero bits (``runtime_word``) carries no address: it marks an
instruction word that the JIT writes as a whole at run time (with a table
whose ``patched_words`` is ``zero``), such as a shift between the steps that
build a 64-bit address, or a move whose operands depend on the byte order.
"""

from __future__ import annotations

from asmgen.arches import ARCHES
from asmgen.arches.patchkind import PatchKind

__all__ = ["ADDRESS_PARAMS", "ENCODERS", "KINDS", "PatchKind"]

# LLVM's names for the addresses its writeResolverCode patches the resolver
# with: the only values a patch field of a resolver may take, since the C++
# writers (both headers, `asmgen patch`) receive no others.
ADDRESS_PARAMS = ("ReentryFnAddr", "ReentryCtxAddr")


GENERIC: dict[str, PatchKind] = {
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


def _all_kinds() -> dict[str, PatchKind]:
    found = dict(GENERIC)
    for arch in ARCHES.values():
        for kind in arch.patch_kinds:
            if found.setdefault(kind.name, kind) != kind:
                raise ValueError(f"patch kind {kind.name!r} is defined twice, differently")
    return found


KINDS: dict[str, PatchKind] = _all_kinds()

ENCODERS = {name: kind.encode for name, kind in KINDS.items()}
