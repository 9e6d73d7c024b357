"""The code around the resolver in the lazy-call chain: caller, stub, trampoline.

caller --call--> stub --jump through pointer--> trampoline --call through
pointer--> resolver.

NOT GENERATED YET: asmgen does not emit trampolines and indirect stubs yet, so
they are encoded here from LLVM's facts (x86-64 trampoline base word
0xf1c40000000015ff = `ff 15 <disp32>` + `c4 f1` padding, `callq *ptr(%rip)`;
stub base 0xf1c40000000025ff = `ff 25 <disp32>`, `jmpq *ptr(%rip)`).  This is
the one place to switch to the generated trampolines and stubs when they land.
The caller is test scaffolding, not a table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


def _rel32(at: int, length: int, target: int) -> bytes:
    disp = target - (at + length)
    if not -(1 << 31) <= disp < 1 << 31:
        raise ValueError(f"target {target:#x} out of rel32 range of {at:#x}")
    return disp.to_bytes(4, "little", signed=True)


@dataclass(frozen=True)
class ChainEncoders:
    # caller(at, target): a direct call of target.
    caller: Callable[[int, int], bytes]
    # stub(at, slot): jump to the address held in the pointer slot.
    stub: Callable[[int, int], bytes]
    # trampoline(at, slot): call the address held in the pointer slot, so that
    # the return address identifies the trampoline (return - call_size).
    trampoline: Callable[[int, int], bytes]


X86_64 = ChainEncoders(
    caller=lambda at, target: b"\xe8" + _rel32(at, 5, target),
    stub=lambda at, slot: b"\xff\x25" + _rel32(at, 6, slot) + b"\xc4\xf1",
    trampoline=lambda at, slot: b"\xff\x15" + _rel32(at, 6, slot) + b"\xc4\xf1",
)

ENCODERS: dict[str, ChainEncoders] = {"x86_64": X86_64}
