"""Where a vector-state save instruction puts each piece of state.

The FXSAVE area's layout is fixed by the instruction set (Intel SDM, FXSAVE):
control and status words first, then the x87/MMX registers, then the vector
registers, 16 bytes each.  fxsave (32-bit) covers 8 vector registers,
fxsave64 covers 16.  XSAVE's standard format starts with the same 512-byte
legacy region, then its 64-byte header and the extended components.
"""

from __future__ import annotations

from asmgen.arches import Arch

STATUS_SIZE = 0x20  # FCW FSW FTW FOP FIP FDP MXCSR MXCSR_MASK
X87_OFFSET, X87_COUNT = 0x20, 8
VECTOR_OFFSET = 0xA0
SLOT = 0x10
VECTORS = {"fxsave": 8, "fxsave64": 16, "xsave64": 16}
LEGACY, HEADER = 0x200, 0x40
# Control registers held in the image, by their FXSAVE field names.
CONTROL = {"fcw": 0x0, "mxcsr": 0x18}


def vector_slots(kind: str, arch: Arch) -> dict[str, int]:
    """Vector register -> offset of its slot inside the area (empty if unknown)."""
    if kind not in VECTORS:
        return {}
    names = [r.name for r in arch.registers if r.cls == "vec"][: VECTORS[kind]]
    return {name: VECTOR_OFFSET + SLOT * i for i, name in enumerate(names)}


def register_slots(kind: str, arch: Arch) -> dict[str, int]:
    """Every register the image holds: the vector registers and the control words."""
    if kind not in VECTORS:
        return {}
    controls = {r.name: CONTROL[r.name] for r in arch.registers if r.name in CONTROL}
    return vector_slots(kind, arch) | controls


# The control and status fields at the start of the area, (offset, size, name);
# 64-bit formats hold 64-bit instruction and data pointers.
_STATUS_FIELDS = {
    "fxsave": ((0x0, 2, "FCW"), (0x2, 2, "FSW"), (0x4, 1, "FTW"), (0x6, 2, "FOP"),
               (0x8, 4, "FIP"), (0xC, 2, "FCS"), (0x10, 4, "FDP"), (0x14, 2, "FDS"),
               (0x18, 4, "MXCSR"), (0x1C, 4, "MXCSR_MASK")),
    "fxsave64": ((0x0, 2, "FCW"), (0x2, 2, "FSW"), (0x4, 1, "FTW"), (0x6, 2, "FOP"),
                 (0x8, 8, "FIP"), (0x10, 8, "FDP"), (0x18, 4, "MXCSR"), (0x1C, 4, "MXCSR_MASK")),
}  # fmt: skip
_STATUS_FIELDS["xsave64"] = _STATUS_FIELDS["fxsave64"]


def fields(kind: str) -> tuple[tuple[int, int, str], ...]:
    """The named fields of the area's first 0x20 bytes (FCW, ..., MXCSR), by
    which a finding names what an overwrite hit."""
    return _STATUS_FIELDS.get(kind, ())


def parts(kind: str, arch: Arch, area_size: int) -> list[tuple[int, int, str]]:
    """(offset, size, label) of each piece of the area, lowest first."""
    if kind not in VECTORS:
        return []
    out = [(0, STATUS_SIZE, "FCW FSW FTW FOP FIP FDP MXCSR")]
    out += [(X87_OFFSET + SLOT * i, SLOT, f"st{i} / mm{i}") for i in range(X87_COUNT)]
    out += [(offset, SLOT, name) for name, offset in vector_slots(kind, arch).items()]
    end = max(offset + size for offset, size, _ in out)
    if kind == "xsave64" and area_size > LEGACY:
        out.append((end, LEGACY - end, "reserved"))
        out.append((LEGACY, HEADER, "XSAVE header"))
        out.append((LEGACY + HEADER, area_size - LEGACY - HEADER, "extended state (AVX, AVX-512)"))
        end = area_size
    if area_size > end:
        out.append((end, area_size - end, "reserved"))
    return out
