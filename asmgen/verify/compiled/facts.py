"""The convention file's facts, confirmed by calling compiled code directly.

Before any table runs, the harness calls the compiled probes straight from
the caller scaffold, with every register and the argument area random:

- args: each landing function must receive exactly the values in the file's
  argument registers, in order, and in its stack slots;
- callee_saved, both ways: `cc_clobber_all`'s inline asm writes every
  register and names them all clobbered, so the compiler's own prologue keeps
  exactly what it considers callee-saved.  Listed bits must come back,
  unlisted bits must come back changed;
- returns: a 64-bit result in the file's result registers, low word first;
- home_area: a -O0 four-parameter function must fill [sp, sp + home_area)
  with its register parameters and leave the bytes above alone, or, where
  the area is a register save area, a -O0 variadic function must
  keep its register arguments in it, up to its top slot, and write nothing
  above (with no home area, neither may write the caller's frame at all);
- stack.align, both ways: called with sp aligned to exactly the file's
  alignment, `_Alignas` locals of larger alignments must still be aligned (the
  compiler assumes no more), and compiled calls must keep sp at a constant
  residue modulo it (the compiler guarantees no less);
- stack.red_zone: a leaf function puts a local below sp only with a red zone;
- stack.link_area: a function that calls another writes its caller's frame
  only in [sp, sp + link_area) or the home area, and with a link area it
  writes there (a callee that saves its return address in its caller's
  frame header).

FP control cannot be confirmed this way (compilers never save it): the file's
fp_control is the psABI's, and the tables are checked against it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from itertools import pairwise

from asmgen.verify.compiled.build import Built
from asmgen.verify.compiled.layout import OBS, Landing, State, random_state
from asmgen.verify.compiled.session import Session

RET64 = 0x1122_3344_5566_7788
STATUS = {
    0: "returned",
    1: "faulted",
    2: "re-entered",
    3: "timed out",
    4: "not run: an earlier run of this table hung",
}


@dataclass(frozen=True)
class Fact:
    name: str
    ok: bool
    detail: str


def plan(built: Built, session: Session, rng: random.Random) -> dict[str, State]:
    """Queue the fact runs; their input states by tag."""
    states = {}

    def run(tag: str, symbol: str) -> None:
        state = random_state(built.conv, built.layout, built.target.endian, rng)
        states[tag] = state
        session.run(tag, bytes(state.raw), session.sym[symbol])

    for landing in built.landings:
        run(f"fact.args.{landing.name}", landing.name)
    run("fact.callee_saved", "cc_clobber_all")
    run("fact.returns", "cc_ret64")
    run("fact.home_area", "spill_probe")
    run("fact.link_area", "cc_link_probe")
    run("fact.home_area.varargs", "spill_probe_varargs")
    for n in _align_probes(built):
        run(f"fact.align.{n}", f"cc_align_probe_{n}")
    run("fact.align.maintain", "cc_align_maintain")
    run("fact.red_zone", "cc_redzone_probe")
    return states


def _align_probes(built: Built) -> list[int]:
    return [n for n in (4, 8, 16, 32, 64) if n >= built.conv.stack.align]


def bit_bytes(lo: int, hi: int, order: str, width: int) -> slice:
    """The bytes of bits [lo, hi) of a `width`-bit register stored in `order`."""
    if order == "little":
        return slice(lo // 8, hi // 8)
    return slice((width - hi) // 8, (width - lo) // 8)


def stored(built: Built, name: str) -> tuple[str, int, int]:
    """A convention register as (stored register, first bit, end bit)."""
    part = built.arch.harness.parts.get(name)
    return part or (name, 0, built.layout.width(name))


def received(built: Built, landing: Landing, inp: State, obs: bytes) -> dict[str, list[str]]:
    """Arguments the landing got wrong, by check (int_args, fp_args)."""
    wrong: dict[str, list[str]] = {"int_args": [], "fp_args": []}
    for i, p in enumerate(landing.params):
        if p.kind == "stack":
            what, want = f"[sp+{p.where:#x}]", inp.stack(p.where, p.size)
        else:
            # The register's bytes as stored, and the parameter's as the landing
            # stored it: a whole pointer, or the first bytes of an FP register.
            what, want = p.where, inp.reg(p.where)[: p.size]
        got = OBS.arg(obs, i, p.size)
        if got != want:
            check = "fp_args" if p.kind == "fpr" else "int_args"
            wrong[check].append(f"{what}: sent {want.hex()}, received {got.hex()}")
    return wrong


def confirm(built: Built, results: dict[str, dict], states: dict[str, State]) -> list[Fact]:
    conv, lay, order = built.conv, built.layout, built.target.endian
    facts: list[Fact] = []

    def result(tag: str):
        res = results.get(tag)
        if res is None:
            facts.append(Fact(tag.removeprefix("fact."), False, "no result: the harness died"))
            return None
        if res["status"]:
            text = f"the probe {STATUS[res['status']]} (code {res['code']:#x} at {res['pc']:#x})"
            facts.append(Fact(tag.removeprefix("fact."), False, text))
            return None
        return res

    def out(res) -> State:
        return State(lay, order, bytearray(res["out"]))

    result_reg = conv.returns.int_regs[0]
    bad_args: list[str] = []
    for landing in built.landings:
        res = result(f"fact.args.{landing.name}")
        if res is None:
            continue
        wrong = received(built, landing, states[f"fact.args.{landing.name}"], res["obs"])
        bad_args += [f"{landing.name}: {w}" for ws in wrong.values() for w in ws]
    count = sum(len(landing.params) for landing in built.landings)
    facts.append(Fact("args", not bad_args, "; ".join(bad_args) or f"{count} arguments received"))

    res = result("fact.callee_saved")
    if res is not None:
        facts.append(_callee_saved(built, states["fact.callee_saved"], out(res)))

    res = result("fact.returns")
    if res is not None:
        regs = conv.result_regs(order, lay.ps)
        words = [out(res).word(r) for r in regs]
        got = sum(w << (8 * lay.ps * i) for i, w in enumerate(words))
        shown = ", ".join(f"{r} = {w:#x}" for r, w in zip(regs, words, strict=True))
        facts.append(Fact("returns", got == RET64, f"a 64-bit {RET64:#x} came back as {shown}"))

    res = result("fact.home_area")
    if res is not None:
        fact = _home_area(built, states["fact.home_area"], out(res))
        if not fact.ok and conv.stack.home_area:
            # A home area the callee does not fill with its named parameters.
            varargs = result("fact.home_area.varargs")
            if varargs is None:
                fact = None
            else:
                inp = states["fact.home_area.varargs"]
                fact = _home_area_varargs(built, inp, out(varargs)) or fact
        elif fact.ok and not conv.stack.home_area:
            # No home area: the variadic callee, which keeps its register
            # arguments where the convention puts them, must not write the
            # caller's frame either (one with a register save area would).  A fault is left to the
            # facts that explain it (a misaligned stack: stack.align).
            varargs = results.get("fact.home_area.varargs")
            if varargs is not None and not varargs["status"]:
                inp = states["fact.home_area.varargs"]
                fact = _no_home_area_varargs(built, inp, out(varargs)) or fact
        if fact is not None:
            facts.append(fact)

    res = result("fact.link_area")
    if res is not None:
        facts.append(_link_area(built, states["fact.link_area"], out(res)))

    bad = []
    align = conv.stack.align
    for n in _align_probes(built):
        res = result(f"fact.align.{n}")
        if res is not None and (residue := out(res).word(result_reg)):
            bad.append(
                f"an _Alignas({n}) local is {residue} bytes off with sp aligned to exactly "
                f"{align:#x}: the compiler assumes more alignment than the file says"
            )
    res = result("fact.align.maintain")
    kept = 0
    if res is not None:
        frames = [OBS.word(res["obs"], f"probe{i}", order) for i in range(20)]
        kept = max(p for p in (1, 2, 4, 8, 16, 32, 64, 128) if len({f % p for f in frames}) == 1)
        if kept < align:
            bad.append(
                f"compiled calls keep sp constant only modulo {kept}: the compiler guarantees "
                f"less than the file's {align:#x}"
            )
    detail = f"assumes exactly {align:#x}; compiled calls keep sp modulo {kept} constant"
    facts.append(Fact("stack.align", not bad, "; ".join(bad) or detail))

    res = result("fact.red_zone")
    if res is not None:
        below = int.from_bytes(out(res).reg(result_reg), order, signed=True)
        zone = conv.stack.red_zone
        ok = 0 < below <= zone if zone else below <= 0
        where = f"sp-{below:#x}" if below > 0 else f"sp+{-below:#x}"
        facts.append(Fact("stack.red_zone", ok, f"a leaf function put its local at {where}"))
    return facts


def _callee_saved(built: Built, inp: State, out: State) -> Fact:
    """Both directions: every listed bit kept, every other bit changed."""
    lay = built.layout
    kept: dict[str, list[tuple[int, int]]] = {}
    for name in built.conv.callee_saved:
        reg, lo, hi = stored(built, name)
        kept.setdefault(reg, []).append((lo, hi))
    unprobed = {name for name, _ in built.arch.harness.unprobed}
    # Every part a convention may name is judged on its own (an FP register
    # that is half of a vector one), listed or not: an unlisted part the compiler keeps
    # shows even when the rest of its register changes.
    bounds: dict[str, set[int]] = {}
    for reg, lo, hi in built.arch.harness.parts.values():
        bounds.setdefault(reg, set()).update((lo, hi))
    wrong = []
    for reg in (*lay.gprs, *lay.fprs):
        if reg in unprobed:
            continue
        width = lay.width(reg)
        listed = sorted(kept.get(reg, []))
        edges = sorted({0, width, *(b for span in listed for b in span), *bounds.get(reg, ())})
        for lo, hi in pairwise(edges):
            preserved = any(a <= lo and hi <= b for a, b in listed)
            cut = bit_bytes(lo, hi, inp.order, width)
            same = inp.reg(reg)[cut] == out.reg(reg)[cut]
            bits = "" if (lo, hi) == (0, width) else f" bits {lo}-{hi - 1}"
            if preserved and not same:
                wrong.append(f"{reg}{bits} is listed callee-saved, but compiled code clobbered it")
            if not preserved and same:
                wrong.append(f"{reg}{bits} is not listed callee-saved, but compiled code kept it")
    probed = len(lay.gprs) + len(lay.fprs) - len(unprobed)
    detail = f"{probed} registers partitioned as the file says"
    if unprobed:
        reasons = "; ".join(f"{n}: {why}" for n, why in built.arch.harness.unprobed)
        detail += f" (not probed: {reasons})"
    return Fact("callee_saved", not wrong, "; ".join(wrong) or detail)


def _link_area(built: Built, inp: State, out: State) -> Fact:
    """Where a compiled non-leaf function wrote its caller's frame."""
    stack = built.conv.stack
    link = stack.link_area
    span = min(built.layout.stack_bytes, 0x40)
    wrote = [i for i in range(span) if out.stack(i, 1) != inp.stack(i, 1)]
    allowed = max(link, stack.home_area)
    spans: list[list[int]] = []
    for i in wrote:
        if spans and spans[-1][1] == i:
            spans[-1][1] = i + 1
        else:
            spans.append([i, i + 1])
    shown = ", ".join(f"[sp+{lo:#x}, sp+{hi:#x})" for lo, hi in spans) or "nothing"
    if any(i >= allowed for i in wrote):
        return Fact(
            "stack.link_area",
            False,
            f"a compiled function that calls another wrote its caller's frame at {shown}, "
            f"beyond [sp, sp+{allowed:#x})",
        )
    if link and not any(i < link for i in wrote):
        return Fact(
            "stack.link_area",
            False,
            f"a compiled function that calls another wrote nothing in [sp, sp+{link:#x}): "
            "no frame header is needed there",
        )
    return Fact(
        "stack.link_area",
        True,
        f"a compiled function that calls another wrote {shown} of its caller's frame",
    )


def _home_area(built: Built, inp: State, out: State) -> Fact:
    """The -O0 four-parameter callee spills them into [sp, sp + home_area)
    (Microsoft x64, o32)."""
    conv, ps = built.conv, built.layout.ps
    home = conv.stack.home_area
    if not home:
        same = out.stack(0, 32) == inp.stack(0, 32)
        text = "the -O0 callee wrote nothing at [sp, sp+0x20)"
        if not same:
            text = "the -O0 callee wrote the caller's frame at [sp, sp+0x20): there is a home area"
        return Fact("stack.home_area", same, text)
    regs = conv.args.int_regs[: home // ps]
    want = b"".join(inp.reg(r) for r in regs)
    got = out.stack(0, home)
    above = out.stack(home, 16) == inp.stack(home, 16)
    if got == want and above:
        return Fact(
            "stack.home_area",
            True,
            f"the -O0 callee spilled {', '.join(regs)} into [sp, sp+{home:#x})",
        )
    text = f"[sp, sp+{home:#x}) holds {got.hex()} after the call, not the spilled {want.hex()}"
    if not above:
        text += f"; the callee also wrote above sp+{home:#x}"
    return Fact("stack.home_area", False, text)


def _no_home_area_varargs(built: Built, inp: State, out: State) -> Fact | None:
    """With no home area: a failed fact if the -O0 variadic callee wrote the
    caller's frame (the file misses a register save area), else None."""
    lay = built.layout
    span = range(0, lay.stack_bytes, lay.ps)
    written = [at for at in span if out.stack(at, lay.ps) != inp.stack(at, lay.ps)]
    if not written:
        return None
    return Fact(
        "stack.home_area",
        False,
        f"the -O0 variadic callee wrote the caller's frame at [sp+{min(written):#x}, "
        f"sp+{max(written) + lay.ps:#x}): there is a home area",
    )


def _home_area_varargs(built: Built, inp: State, out: State) -> Fact | None:
    """Where the home area is a register save area the callee fills as it
    needs: the -O0 variadic callee keeps its register arguments in
    it, up to its top slot, and writes nothing above it.  None otherwise."""
    home, ps = built.conv.stack.home_area, built.layout.ps
    written = [at for at in range(0, home + 16, ps) if out.stack(at, ps) != inp.stack(at, ps)]
    if not written or max(written) != home - ps:
        return None
    return Fact(
        "stack.home_area",
        True,
        f"the -O0 variadic callee kept its register arguments in [sp+{min(written):#x}, "
        f"sp+{home:#x}), up to the top slot, and wrote nothing above",
    )
