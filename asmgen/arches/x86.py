"""What x86-64 and i386 share: the call's 32-bit displacement (a patch kind
and the scaffold's direct call), and the FXSAVE/XSAVE areas."""

from __future__ import annotations

from asmgen.arches.encode import rel32
from asmgen.arches.model import Scaffold, VectorArea
from asmgen.arches.patchkind import PatchKind

# disp32 of `jmp *disp(%rip)` / rel32 of `call`: counted from the next instruction.
PCREL32 = PatchKind(
    "pcrel32",
    32,
    "value",
    "x86 disp32/rel32, measured from the end of the instruction",
    pcrel=True,
    anchor="next",
    operand="displacement",
    limit="x86 disp32: +-2 GiB",
)

SCAFFOLD = Scaffold(
    caller=lambda at, target, order: b"\xe8" + rel32(at, 5, target),  # call rel32
    ret=lambda order: b"\xc3",
)


# The FXSAVE area (Intel SDM, FXSAVE): control and status words, the x87/MMX
# registers, then the XMM registers, 16 bytes each; 512 bytes, 16-aligned.
# 64-bit formats hold 64-bit instruction and data pointers.
_FXSAVE_STATUS = (
    (0x0, 2, "FCW"), (0x2, 2, "FSW"), (0x4, 1, "FTW"), (0x6, 2, "FOP"),
    (0x8, 4, "FIP"), (0xC, 2, "FCS"), (0x10, 4, "FDP"), (0x14, 2, "FDS"),
    (0x18, 4, "MXCSR"), (0x1C, 4, "MXCSR_MASK"),
)  # fmt: skip
_FXSAVE64_STATUS = (
    (0x0, 2, "FCW"), (0x2, 2, "FSW"), (0x4, 1, "FTW"), (0x6, 2, "FOP"),
    (0x8, 8, "FIP"), (0x10, 8, "FDP"), (0x18, 4, "MXCSR"), (0x1C, 4, "MXCSR_MASK"),
)  # fmt: skip
_LAYOUT = {
    "size": 0x200,
    "vector_offset": 0xA0,
    "slot": 0x10,
    "status_size": 0x20,
    "status_label": "FCW FSW FTW FOP FIP FDP MXCSR",
    "stack_regs": (0x20, 8, "st{i} / mm{i}"),
    "control": (("fcw", 0x0), ("mxcsr", 0x18)),
    "fixed": 0x200,
}

FXSAVE = VectorArea("fxsave", align=0x10, vectors=8, status=_FXSAVE_STATUS, **_LAYOUT)
FXSAVE64 = VectorArea("fxsave64", align=0x10, vectors=16, status=_FXSAVE64_STATUS, **_LAYOUT)

# XSAVE's standard format: the same 512-byte legacy region, the 64-byte
# header, then the extended components; the area must be 64-byte aligned.
# End of each user state component in the standard (non-compacted) format:
# x87 and SSE in the legacy region, AVX, MPX BNDREGS and BNDCSR, AVX-512
# opmask, ZMM_Hi256, Hi16_ZMM, and PKRU.  CPUID leaf 0xD reports the offsets
# per CPU; these are Intel's, the largest known (AMD Zen 4 leaves out MPX's
# space and ends Hi16_ZMM at 0x980).
_COMPONENTS = (
    (0, 0x240), (1, 0x240), (2, 0x340), (3, 0x400), (4, 0x440),
    (5, 0x480), (6, 0x680), (7, 0xA80), (9, 0xA88),
)  # fmt: skip
XSAVE64 = VectorArea(
    "xsave64",
    align=0x40,
    vectors=16,
    status=_FXSAVE64_STATUS,
    **(_LAYOUT | {"size": 0x240}),
    header=0x40,
    header_label="XSAVE header",
    components=_COMPONENTS,
    extended_label="extended state (AVX, AVX-512)",
)
