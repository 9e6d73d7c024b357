"""What x86-64 and i386 share: the call's 32-bit displacement, as a patch kind
and as the scaffold's direct call."""

from __future__ import annotations

from asmgen.arches.encode import rel32
from asmgen.arches.model import Scaffold
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
