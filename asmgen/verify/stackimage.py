"""What a resolver keeps on the stack at its call, read from its code by running it.

The compiled harness finds where a -O0 re-entry function spilled its
parameters.  To say what those spills overwrote, asmgen's own tables use the
frame computed from their spec (causes.home_area_contents).  Code that no
spec describes (LLVM's, under `asmgen review`) is run in unicorn instead:
every stack store the resolver makes before its call is kept, relative to sp
at the call, with the instruction that made it, and a vector-state save
(fxsave64, ...) names the fields that lie there.
"""

from __future__ import annotations

from dataclasses import dataclass

from asmgen.build.vector_layout import fields
from asmgen.verify.causes import decode, vector_area
from asmgen.verify.emulate import RESOLVER, Emulation
from asmgen.verify.model import Subject


@dataclass(frozen=True)
class _Store:
    lo: int  # from sp at the call
    hi: int
    offset: int  # of the storing instruction in the resolver
    text: str  # that instruction
    area: int  # lowest byte the instruction stored (where a vector area starts)


class ResolverStack:
    """stack(lo, hi) for Subject.stack: what the resolver stored at [sp+lo, sp+hi)."""

    def __init__(self, subject: Subject):
        self.subject = subject
        self._stores: list[_Store] | None = None
        self._loads: list[_Store] = []

    def __call__(self, lo: int, hi: int) -> list[str]:
        arch = self.subject.spec.arch_info
        out = []
        for store in self.stores():
            start, end = max(lo, store.lo), min(hi, store.hi)
            if start >= end:
                continue
            kind = store.text.split()[0]
            if arch.vector_area(kind) is not None:
                out.append(vector_area(kind, arch, start - store.area, end - store.area))
            else:
                out.append(f"sp+{start:#x}-{end - 1:#x} (`{store.text}`)")
        return out

    def writers(self, lo: int, hi: int) -> list[str]:
        """The instructions that stored into [sp+lo, sp+hi) before the call."""
        return [
            f"`{store.text}` at resolver+{store.offset:#x}"
            for store in self.stores()
            if store.lo < hi and lo < store.hi
        ]

    def stores(self) -> list[_Store]:
        if self._stores is None:
            self._stores, self._loads = self._run("write"), self._run("read", "after")
        return self._stores

    def loads(self, lo: int, hi: int) -> list[str]:
        """The instructions that read [sp+lo, sp+hi) back after the call."""
        self.stores()
        return [
            f"`{load.text}` at resolver+{load.offset:#x}"
            for load in self._loads
            if load.lo < hi and lo < load.hi
        ]

    def controls(self, lo: int, hi: int, names: set[str]) -> list[str]:
        """The FP control registers (`names`) whose saved copies lie in [sp+lo, sp+hi)."""
        arch = self.subject.spec.arch_info
        out = []
        for store in self.stores():
            kind = store.text.split()[0]
            if arch.vector_area(kind) is None or store.hi <= lo or hi <= store.lo:
                continue
            for offset, size, name in fields(kind, arch):
                at = store.area + offset
                if name.lower() in names and at < hi and lo < at + size and name not in out:
                    out.append(name)
        return out

    def _run(self, access: str = "write", when: str = "before") -> list[_Store]:
        facts = self.subject.spec.arch_info.emulator
        if facts is None or self.subject.spec.arch_info.scaffold is None:
            return []
        emulation = Emulation(self.subject, facts)
        emulation.run()
        trace = emulation.trace
        if trace.reentry is None:
            return []
        sp = trace.reentry["sp_at_call"]
        resolver = emulation.addr(RESOLVER)
        texts = {i.offset: i.text for i in decode(self.subject.spec, emulation.resolver)}
        spans: dict[int, list[int]] = {}
        for phase, kind, address, size, pc in trace.accesses:
            if phase == when and kind == access:
                span = spans.setdefault(pc - resolver, [address - sp, address + size - sp])
                span[0], span[1] = min(span[0], address - sp), max(span[1], address + size - sp)
        stores = []
        for offset, (lo, hi) in sorted(spans.items()):
            text = texts.get(offset, "?")
            stores.append(_Store(lo, hi, offset, text, lo))
        return stores


def home_area_cause(stack: ResolverStack) -> str:
    """Why the callee's home area is not the callee's: what the resolver keeps
    there at the call, what reads it back, and what a callee's spills destroy."""
    conv = stack.subject.spec.convention_info
    home = conv.stack.home_area
    kept = stack(0, home) if home else []
    if not kept:
        return ""
    slot = stack.subject.spec.pointer_size
    spilled = ", ".join(conv.args.int_regs[: home // slot])
    text = (
        f"no home area: at the call, the {home:#x} bytes above sp that {conv.convention} gives "
        f"the callee hold the resolver's own data: {'; '.join(kept)}, saved by "
        f"{', '.join(stack.writers(0, home))}"
    )
    loads = stack.loads(0, home)
    if loads:
        text += f" and read back after the call by {', '.join(loads)}"
    return text + (
        f". A callee that spills its register arguments ({spilled}) there overwrites "
        f"{lost_controls(stack) or 'that data'}"
    )


def lost_controls(stack: ResolverStack) -> str:
    """`the saved FCW and MXCSR`: FP control state the resolver keeps in the callee's
    home area, which a callee's spills overwrite ("" when there is none)."""
    conv = stack.subject.spec.convention_info
    home = conv.stack.home_area
    controls = stack.controls(0, home, {c.reg for c in conv.fp_control}) if home else []
    return f"the saved {' and '.join(controls)}" if controls else ""
