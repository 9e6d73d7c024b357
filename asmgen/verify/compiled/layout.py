"""What the compiled harness exchanges with Python, laid out once.

`Layout` is `struct cc_state`: every register the caller scaffold fills and
stores, the FP control state, sp, flags, the call target and the caller's
stack-argument area.  The scaffold (.S), the generated header and `State`
all read its offsets, so none is typed twice.  `OBS` is `struct cc_obs`, what
the compiled functions record.  `landings` derives the compiled landing
functions' signatures from the convention's argument rules.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from asmgen.arches.model import Arch
from asmgen.spec.convention import Convention

# Stack arguments each landing takes beyond the register arguments.
STACK_ARGS = 2
# Landing arguments when everything goes on the stack (a stack-only convention).
ALL_STACK_ARGS = 6


def _align(n: int, a: int) -> int:
    return -(-n // a) * a


@dataclass(frozen=True)
class Obs:
    """`struct cc_obs`: 64-bit words, then 16-byte argument slots."""

    words: tuple[str, ...]
    max_args: int

    @property
    def size(self) -> int:
        return 8 * len(self.words) + 16 * self.max_args

    def word(self, raw: bytes, name: str, order: str) -> int:
        i = self.words.index(name)
        return int.from_bytes(raw[8 * i : 8 * i + 8], order)

    def arg(self, raw: bytes, index: int, size: int) -> bytes:
        at = 8 * len(self.words) + 16 * index
        return raw[at : at + size]


OBS = Obs(
    words=(
        "n_reentry",
        "n_landing",
        "n_clobber",
        "land_align",
        "x87_done",
        "worst_sink",
        *(f"re_ctx{i}" for i in range(4)),
        *(f"re_tramp{i}" for i in range(4)),
        *(f"re_align{i}" for i in range(4)),
        # Addresses of the first re-entry call's parameters (-O0 spill slots).
        *(f"spill{i}" for i in range(4)),
        *(f"probe{i}" for i in range(20)),
    ),
    max_args=24,
)


@dataclass(frozen=True)
class Param:
    ctype: str  # C type in the landing's prototype
    kind: str  # "gpr", "fpr" or "stack"
    where: str | int  # register, or offset from sp at the call
    size: int  # bytes compared


@dataclass(frozen=True)
class Landing:
    name: str
    params: tuple[Param, ...]


def landings(conv: Convention, arch: Arch) -> tuple[Landing, ...]:
    """The landing functions whose parameters cover every argument register
    and two stack arguments, as the convention assigns them."""
    args, slot = conv.args, conv.args.stack_slot
    ctype = "cc_v2u64" if args.fp_type == "vec128" else "double"
    fp_size = 16 if args.fp_type == "vec128" else 8
    parts = arch.harness.parts if arch.harness else {}

    def stack(count: int, first: int = 0) -> tuple[Param, ...]:
        at = args.stack_offset
        return tuple(Param("cc_uptr", "stack", at + (first + i) * slot, slot) for i in range(count))

    ints = tuple(Param("cc_uptr", "gpr", r, arch.pointer_size) for r in args.int_regs)
    fps = tuple(Param(ctype, "fpr", parts.get(r, (r,))[0], fp_size) for r in args.fp_regs)
    vecs = tuple(Param("cc_v2u64", "fpr", parts.get(r, (r,))[0], 16) for r in args.vec_regs)
    if not ints and not fps:
        return (Landing("landing_stack", stack(ALL_STACK_ARGS)),)
    if args.assignment == "independent":
        return (Landing("landing_mixed", ints + fps + vecs + stack(STACK_ARGS)),)
    # positional, o32, save_area: one landing per register class, so each argument takes
    # the register of its class at its position.
    found = [Landing("landing_int", ints + stack(STACK_ARGS))]
    if fps:
        found.append(Landing("landing_fp", fps))
    if vecs:
        found.append(Landing("landing_vec", vecs))
    return tuple(found)


@dataclass(frozen=True)
class Layout:
    ps: int
    gprs: tuple[str, ...]
    fprs: tuple[str, ...]
    fpr_bytes: int
    ctls: tuple[str, ...]
    stack_bytes: int  # the caller's argument area at [sp, sp + stack_bytes)
    gpr_off: dict[str, int]
    fpr_off: dict[str, int]
    ctl_off: dict[str, int]
    sp_off: int
    flags_off: int
    target_off: int
    stack_off: int
    size: int

    @classmethod
    def of(cls, conv: Convention, arch: Arch) -> Layout:
        harness = arch.harness
        assert harness is not None, f"{arch.name} has no compiled harness"
        gprs = tuple(
            r.name for r in arch.registers if r.cls == "gpr" and r.name not in harness.reserved
        )
        fpr_bytes = harness.fpr_bits // 8
        ctls = tuple(c.reg for c in conv.fp_control)
        stack_end = conv.args.stack_offset + ALL_STACK_ARGS * conv.args.stack_slot
        stack_bytes = _align(max(64, stack_end, conv.stack.home_area + 32), 16)
        gpr_off = {name: i * arch.pointer_size for i, name in enumerate(gprs)}
        fpr_at = _align(len(gprs) * arch.pointer_size, 16)
        fpr_off = {name: fpr_at + i * fpr_bytes for i, name in enumerate(harness.fprs)}
        ctl_at = _align(fpr_at + len(harness.fprs) * fpr_bytes, 8)
        ctl_off = {name: ctl_at + 8 * i for i, name in enumerate(ctls)}
        at = ctl_at + 8 * len(ctls)  # sp, flags and the call target follow
        stack_off = _align(at + 24, 16)
        return cls(
            ps=arch.pointer_size,
            gprs=gprs,
            fprs=harness.fprs,
            fpr_bytes=fpr_bytes,
            ctls=ctls,
            stack_bytes=stack_bytes,
            gpr_off=gpr_off,
            fpr_off=fpr_off,
            ctl_off=ctl_off,
            sp_off=at,
            flags_off=at + 8,
            target_off=at + 16,
            stack_off=stack_off,
            size=_align(stack_off + stack_bytes, 16),
        )

    def width(self, reg: str) -> int:
        """Bits of a stored register."""
        return 8 * (self.ps if reg in self.gpr_off else self.fpr_bytes)


@dataclass
class State:
    """A `struct cc_state` as bytes, read through the layout."""

    lay: Layout
    order: str
    raw: bytearray

    def reg(self, name: str) -> bytes:
        if name in self.lay.gpr_off:
            at, size = self.lay.gpr_off[name], self.lay.ps
        else:
            at, size = self.lay.fpr_off[name], self.lay.fpr_bytes
        return bytes(self.raw[at : at + size])

    def word(self, name: str) -> int:
        return int.from_bytes(self.reg(name), self.order)

    def ctl(self, name: str) -> int:
        # A pointer-size slot; a narrower control register is stored at its start.
        at = self.lay.ctl_off[name]
        return int.from_bytes(self.raw[at : at + self.lay.ps], self.order)

    def _int(self, at: int, size: int) -> int:
        return int.from_bytes(self.raw[at : at + size], self.order)

    @property
    def sp(self) -> int:
        return self._int(self.lay.sp_off, self.lay.ps)

    @property
    def flags(self) -> int:
        return self._int(self.lay.flags_off, self.lay.ps)

    def stack(self, offset: int, size: int) -> bytes:
        at = self.lay.stack_off + offset
        return bytes(self.raw[at : at + size])


def random_state(conv: Convention, lay: Layout, order: str, rng: random.Random) -> State:
    """Every register and the argument area random, the FP control state at
    the convention's test values (round toward zero)."""
    raw = bytearray(lay.size)
    for at in lay.gpr_off.values():
        raw[at : at + lay.ps] = rng.randbytes(lay.ps)
    for at in lay.fpr_off.values():
        raw[at : at + lay.fpr_bytes] = rng.randbytes(lay.fpr_bytes)
    for control in conv.fp_control:
        at = lay.ctl_off[control.reg]
        raw[at : at + lay.ps] = control.test_value.to_bytes(lay.ps, order)
    at = lay.stack_off
    raw[at : at + lay.stack_bytes] = rng.randbytes(lay.stack_bytes)
    return State(lay, order, raw)
