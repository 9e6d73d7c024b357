"""The lazy-call chain through a table, run against compiled code.

caller scaffold -> stub 2 -> pointer 2 -> trampoline 2 -> resolver -> compiled
re-entry function -> resolver -> compiled landing -> caller.  The stubs,
trampolines and resolver are the table's own (its `write_stubs`,
`write_trampolines` and `instantiate`), at the harness's real addresses.  The
caller fills every register and the argument area with random values and the
FP control state with the convention's test values; the re-entry function
(-O0, so it spills its parameters) clobbers everything the compiler lets a
callee clobber; the landing records every argument; back in the caller every
callee-saved register, the FP control state and sp are compared.

Each table runs with LLVM's re-entry signature (`real`) for every landing,
once more with an x87 operation in the landing where the arch has one, and,
where the convention gives the callee a home area, with a four-parameter
re-entry function that spills into all of it (`worst`).  What the worst runs
find and the real ones do not is the home area's fault (`shadow_space`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from asmgen.verify.causes import decode, home_area_contents, late_delay_slot_writes
from asmgen.verify.chain import UNITS, USED
from asmgen.verify.compiled.build import Built
from asmgen.verify.compiled.facts import STATUS, bit_bytes, received, stored
from asmgen.verify.compiled.layout import OBS, Landing, State, random_state
from asmgen.verify.compiled.session import HarnessError, Session
from asmgen.verify.model import Finding, Subject, hexw

SLOT = 0x10_0000  # each (table, variant) gets its own 1 MiB of the arena
TRAMPOLINES, STUBS, POINTERS = 0x1_0000, 0x2_0000, 0x3_0000

WIN_CODES = {
    0xC0000005: "EXCEPTION_ACCESS_VIOLATION",
    0xC000001D: "EXCEPTION_ILLEGAL_INSTRUCTION",
    0xC0000096: "EXCEPTION_PRIV_INSTRUCTION",
    0xC000008E: "EXCEPTION_FLT_DIVIDE_BY_ZERO",
    0xC000008F: "EXCEPTION_FLT_INEXACT_RESULT",
    0xC0000090: "EXCEPTION_FLT_INVALID_OPERATION",
    0xC0000091: "EXCEPTION_FLT_OVERFLOW",
    0xC0000093: "EXCEPTION_FLT_UNDERFLOW",
    0xC00002B4: "STATUS_FLOAT_MULTIPLE_FAULTS",
    0xC00002B5: "STATUS_FLOAT_MULTIPLE_TRAPS",
    0x80000003: "EXCEPTION_BREAKPOINT",
}
SIGNALS = {
    4: "SIGILL",
    5: "SIGTRAP",
    7: "SIGBUS",
    8: "SIGFPE",
    10: "SIGBUS",  # where Linux numbers it 10 (else SIGUSR1)
    11: "SIGSEGV",
    14: "SIGALRM",
}


@dataclass
class Placed:
    """One table linked into the arena for one re-entry variant."""

    subject: Subject
    variant: str
    resolver: int
    code: bytes
    trampoline: int  # where stub USED must arrive
    stub: int  # the stub the caller calls
    regions: list[tuple[int, int, str, bytes]]  # (start, end, name, bytes)


@dataclass
class Run:
    tag: str
    placed: Placed
    landing: Landing
    x87: bool
    state: State


@dataclass
class Findings:
    """What one run found, by check, with causes."""

    by_check: dict[str, list[Finding]] = field(default_factory=dict)
    causes: list[str] = field(default_factory=list)

    def add(self, check: str, finding: Finding) -> None:
        self.by_check.setdefault(check, []).append(finding)


def place(session: Session, subject: Subject, slot: int, variant: str) -> Placed:
    base = session.arena + slot * SLOT
    if (slot + 1) * SLOT > session.arena_size:
        raise HarnessError(f"more than {session.arena_size // SLOT} tables for one harness")
    units = subject.units
    resolver, tramps, stubs, ptrs = base, base + TRAMPOLINES, base + STUBS, base + POINTERS
    code = subject.instantiate(session.sym[f"reentry_{variant}"], session.ctx)
    order, size = subject.spec.endian, subject.spec.pointer_size
    pointers = b"".join(
        (tramps + i * units.trampoline_size).to_bytes(size, order) for i in range(UNITS)
    )
    blocks = [
        (resolver, code, "resolver"),
        (tramps, units.write_trampolines(tramps, resolver, UNITS), "trampolines"),
        (stubs, units.write_stubs(stubs, ptrs, UNITS), "stubs"),
        (ptrs, pointers, "pointers"),
    ]
    for at, data, _ in blocks:
        session.write(at, data)
    return Placed(
        subject,
        variant,
        resolver,
        code,
        tramps + USED * units.trampoline_size,
        stubs + USED * units.stub_size,
        [(at, at + len(data), name, data) for at, data, name in blocks],
    )


def plan(
    built: Built, session: Session, subject: Subject, slot: int, rng: random.Random
) -> list[Run]:
    """Queue every run of one table; uses arena slots `slot` and `slot + 1`."""
    variants = ["real", "worst"] if built.conv.stack.home_area else ["real"]
    runs = []
    for k, variant in enumerate(variants):
        placed = place(session, subject, slot + k, variant)
        cases = [(landing, False) for landing in built.landings]
        if built.arch.harness.x87 and variant == "real":
            cases.append((built.landings[0], True))
        for landing, x87 in cases:
            state = random_state(built.conv, built.layout, built.target.endian, rng)
            tag = f"t{slot + k}.{variant}.{landing.name}{'.x87' if x87 else ''}"
            session.run(tag, bytes(state.raw), placed.stub, session.sym[landing.name], int(x87))
            runs.append(Run(tag, placed, landing, x87, state))
    return runs


class Where:
    """Code addresses as `region+offset: instruction` (the table's own code) or
    `symbol+offset` (the harness's compiled functions)."""

    def __init__(self, session: Session):
        self.symbols = sorted((addr, name) for name, addr in session.sym.items())

    def __call__(self, pc: int, placed: Placed | None = None) -> str:
        if placed is not None:
            for start, end, name, data in placed.regions:
                if start <= pc < end:
                    offset = pc - start
                    if name != "resolver":
                        return f"{name}+{offset:#x}"
                    text = next(
                        (i.text for i in decode(placed.subject.spec, data) if i.offset == offset),
                        "",
                    )
                    return f"resolver+{offset:#x}" + (f": {text}" if text else "")
        best = max(((a, n) for a, n in self.symbols if a <= pc), default=None)
        if best and pc - best[0] < 0x1000:
            return f"{best[1]}+{pc - best[0]:#x}"
        return f"{pc:#x}"


def fault_text(res: dict, where: str) -> str:
    code = res["code"]
    name = WIN_CODES.get(code) or SIGNALS.get(code) or f"{code:#x}"
    if res["status"] == 3:
        name = "stopped by the run's watchdog"
    text = f"{STATUS[res['status']]}: {name} at {where}"
    if res["addr"] and res["status"] == 1:
        text += f", address {res['addr']:#x}"
    if res["fpu"]:
        fpu = res["fpu"]
        text += f" (FCW {fpu & 0xFFFF:#06x}, FSW {fpu >> 16 & 0xFFFF:#06x}, MXCSR {fpu >> 32:#x})"
    return text


def evaluate(built: Built, session: Session, run: Run, res: dict | None, where: Where) -> Findings:
    """What one run found, check by check."""
    found = Findings()
    if res is None:
        found.add("landing_pc", Finding("harness", "a result", "none: the harness died"))
        return found
    conv, lay, order = built.conv, built.layout, built.target.endian
    placed, obs = run.placed, res["obs"]
    bits = 8 * lay.ps

    def word(name: str) -> int:
        return OBS.word(obs, name, order)

    calls, landed = word("n_reentry"), word("n_landing")
    if calls == 0:
        for check in ("ctx_arg", "trampoline_arg", "stack_align"):
            found.add(check, Finding("re-entry call", "reached", "not reached"))
    else:
        if word("re_ctx0") != session.ctx:
            found.add(
                "ctx_arg", Finding("ctx", hexw(session.ctx, bits), hexw(word("re_ctx0"), bits))
            )
        if word("re_tramp0") != placed.trampoline:
            got = word("re_tramp0")
            found.add(
                "trampoline_arg",
                Finding(
                    "trampoline", hexw(placed.trampoline, bits), f"{got:#x} ({where(got, placed)})"
                ),
            )
        if word("re_align0"):
            found.add(
                "stack_align",
                Finding(
                    "sp at the re-entry call",
                    f"0 mod {conv.stack.align:#x}",
                    f"{word('re_align0'):#x} mod {conv.stack.align:#x}",
                ),
            )
    if calls > 1:
        again = [word(f"re_tramp{i}") for i in range(1, min(calls, 4))]
        shown = ", ".join(f"{t:#x} ({where(t, placed)})" for t in again)
        found.add(
            "landing_pc",
            Finding("re-entry function calls", "1", f"{calls}; then trampoline {shown}"),
        )
        causes = late_delay_slot_writes(placed.subject.spec, placed.code)
        found.causes.append(
            "the resolver re-entered itself: "
            + ("; ".join(causes) or "no late delay-slot write found in the resolver")
        )
    status = res["status"]
    fault = fault_text(res, where(res["pc"], placed)) if status else ""
    if status == 2:
        fault = "the re-entry function was called 4 times; the chain was abandoned"
    if status == 4:
        fault = STATUS[4]
    if landed != 1 and not (status and landed == 0):
        found.add("landing_pc", Finding("landing calls", "1", str(landed)))
    if status and landed == 0:
        found.add("landing_pc", Finding("landing", "reached", fault))
    elif status and run.x87 and not word("x87_done"):
        found.add("fp_control", Finding("the first x87 operation after the landing", "runs", fault))
    elif status:
        found.add("return_address", Finding("return to the caller", "returns", fault))
    if landed:
        for check, wrong in received(built, run.landing, run.state, obs).items():
            for text in wrong:
                what, got = text.split(": ", 1)
                found.add(check, Finding(what, "the caller's value", got))
    if status == 0:
        _after(built, run, State(lay, order, bytearray(res["out"])), session, found)
    _spill_cause(built, run, obs, found)
    return found


def _after(built: Built, run: Run, out: State, session: Session, found: Findings) -> None:
    """Back in the caller: callee-saved registers, FP control, sp, the result."""
    inp, lay, conv = run.state, built.layout, built.conv
    for name in conv.callee_saved:
        reg, lo, hi = stored(built, name)
        cut = bit_bytes(lo, hi, inp.order, lay.width(reg))
        if inp.reg(reg)[cut] != out.reg(reg)[cut]:
            found.add(
                "callee_saved", Finding(name, inp.reg(reg)[cut].hex(), out.reg(reg)[cut].hex())
            )
    for control in conv.fp_control:
        want, got = inp.ctl(control.reg), out.ctl(control.reg)
        if (want ^ got) & control.preserved:
            found.add("fp_control", Finding(control.reg, f"{want:#x}", f"{got:#x}"))
    if out.sp != session.call_sp:
        found.add("stack_pointer", Finding("sp", f"{session.call_sp:#x}", f"{out.sp:#x}"))
    result = out.word(conv.returns.int_regs[0])  # a pointer-sized result
    if result != built.landing_ret:
        found.add(
            "return_address",
            Finding(
                "the landing's result in the caller", f"{built.landing_ret:#x}", f"{result:#x}"
            ),
        )


def _spill_cause(built: Built, run: Run, obs: bytes, found: Findings) -> None:
    """Where the -O0 re-entry function spilled its parameters, when that is
    resolver data (the convention's home area overlaps the resolver's frame)."""
    if not found.by_check or not built.conv.stack.home_area:
        return
    order, ps = built.target.endian, built.layout.ps
    slots = [OBS.word(obs, f"spill{i}", order) for i in range(4)]
    slots = [s for s in slots if s]
    if not slots:
        return
    subject = run.placed.subject
    spec, frame = subject.spec, subject.frame
    regs = built.conv.args.int_regs
    hits = []
    for i, at in enumerate(slots):
        offset = at - slots[0]
        if subject.stack is not None:
            inside = subject.stack(offset, offset + ps)
        else:
            inside = home_area_contents(spec, frame, offset, offset + ps)
        if inside and 0 <= offset < built.conv.stack.home_area:
            reg = regs[i] if i < len(regs) else f"parameter {i + 1}"
            hits.append(f"{reg} at sp+{offset:#x} over {'; '.join(inside)}")
    if not hits:
        return
    if subject.stack is not None:
        saver = ", ".join(subject.stack.writers(0, built.conv.stack.home_area))
    else:
        saver = _vector_save(spec, run.placed.code)
    found.causes.append(
        f"the -O0 re-entry function ({run.placed.variant}) spilled its parameters into the "
        f"{built.conv.stack.home_area:#x}-byte home area {spec.convention} gives it, where the "
        f"resolver keeps its own data: "
        + ", ".join(hits)
        + (f", saved by {saver}" if saver else "")
    )


def _vector_save(spec, code: bytes) -> str:
    """The instruction that saves the resolver's vector-state area."""
    kind = spec.resolver.vector_state.kind
    for insn in decode(spec, code):
        if insn.mnemonic == kind:
            return f"`{insn.text}` at resolver+{insn.offset:#x}"
    return ""
