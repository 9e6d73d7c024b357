"""Run the lazy-call chain in unicorn and check the resolver's contract.

caller -> stub -> pointer -> trampoline -> resolver -> re-entry (a hook
playing the JIT) -> resolver -> landing.  The resolver, the stubs and the
trampolines are the table under test, linked at real addresses as far apart
as the arch's code reaches (chain.py); the re-entry function is one return
instruction, and a
code hook on it checks the arguments, the alignment and the home area, then
behaves like the worst conforming callee: it spills its argument registers
into its home area and clobbers every caller-saved register, the flags and the
FP control state, before returning the landing address.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import unicorn

from asmgen.arches.model import EmuFacts
from asmgen.build.disasm import capstone_for
from asmgen.spec.serving import beyond_contract
from asmgen.verify.causes import late_delay_slot_writes
from asmgen.verify.chain import UNITS, Linked, Placement, link
from asmgen.verify.model import FAIL, NA, PASS, CheckResult, Finding, Subject, broke, hexw

# Layout of the emulated address space, as offsets from EmuFacts.base: the
# resolver, the re-entry function and the landing share the first pages with
# the stack; the trampoline block and the stub block are linked megabytes
# away, the caller in the page before the stubs (its direct call reaches them),
# and the pointers as far past the stubs as every stub reaches (the table's
# stub_to_pointer_max_displacement), up to FAR.
RESOLVER, REENTRY, LANDING = 0x1000, 0x3000, 0x4000
TRAMPOLINES, STUBS = 0x80_0000, 0x100_0000
FAR = 1 << 30
PAGE = 0x1000
CALLER = STUBS - PAGE
# The context is never dereferenced: a value with every byte distinct and the
# top bits set shows a truncated or misplaced ctx field.
CTX = {4: 0x7EC7_5678, 8: 0x7EC7_3C2D_1E0F_5678}
STACK_LO, STACK_HI = 0x10000, 0x20000
MAP_SIZE = 0x20000
# A runaway resolver stops here rather than hanging verify.
MAX_INSNS = 100_000

SENTINEL_SEED, CLOBBER_SEED = 0x51, 0xC7


def pattern(seed: int, index: int, bits: int) -> int:
    """A value unique to (seed, register), with every byte non-zero and distinct."""
    out = 0
    for k in range(bits // 8):
        out |= ((seed + 0x1D * index + 0x07 * k) % 0xFF + 1) << (8 * k)
    return out


@dataclass
class _Reg:
    name: str
    bits: int
    # Bits a conforming callee must keep (callee-saved, or the callee-saved low part).
    keep: int = 0


@dataclass
class _Trace:
    entry: dict[str, int] | None = None  # registers at the stub (the caller's view)
    entry_ret: int | None = None
    reentry: dict | None = None  # what the hook saw (first call)
    reentries: list[tuple[int, int]] = field(default_factory=list)  # (ctx, trampoline) per call
    accesses: list[tuple[str, str, int, int, int]] = field(default_factory=list)
    phase: str = "before"
    # The modelled shadow stack (return addresses, top last) and every return
    # that did not return to its top: (pc, top or None, target).
    shadow: list[int] = field(default_factory=list)
    shadow_breaks: list[tuple[int, int | None, int]] = field(default_factory=list)


def placement(base: int, units) -> Placement:
    """The farthest whole page before the stubs' reach holds the pointers."""
    stubs = base + STUBS
    reach = min(units.stub_to_pointer_max_displacement, FAR)
    gap = max(reach // PAGE * PAGE - PAGE, -(-UNITS * units.stub_size // PAGE) * PAGE)
    return Placement(stubs, stubs + gap, base + TRAMPOLINES, base + RESOLVER)


class Emulation:
    def __init__(self, subject: Subject, facts: EmuFacts):
        self.subject, self.facts = subject, facts
        self.scaffold = subject.spec.arch_info.scaffold
        self.spec = subject.spec
        self.slot = self.spec.pointer_size
        self.order = self.spec.endian
        self.base = facts.base
        self.ctx = CTX[self.slot]
        mode = getattr(unicorn, facts.uc_mode)
        if self.order == "big":
            mode |= unicorn.UC_MODE_BIG_ENDIAN
        self.uc = unicorn.Uc(getattr(unicorn, facts.uc_arch), mode)
        self.regs = self._registers()
        self.controls = [n for n in self.spec.call.fp_control if n in facts.fp_control]
        # The bits of each FP control register a callee must keep (the convention's).
        self.preserved = {c.reg: c.preserved for c in self.spec.convention_info.fp_control}
        self.trace = _Trace()
        self.linked: Linked | None = None
        self.resolver = b""

    def addr(self, offset: int) -> int:
        return self.base + offset

    def _registers(self) -> dict[str, _Reg]:
        """Every register the hook may clobber and the landing may check, at full width."""
        arch, facts, call = self.spec.arch_info, self.facts, self.spec.call
        skip = {facts.sp, facts.pc, facts.link, *facts.reserved, *facts.fp_control}
        regs = {}
        for reg in arch.registers:
            if reg.name in skip or reg.name in facts.aliases or reg.cls == "ctl":
                continue
            regs[reg.name] = _Reg(reg.name, reg.bits)
        for name, bits in facts.extra_clobber:
            regs[name] = _Reg(name, bits)
        for name in call.callee_saved:
            full, bits = facts.aliases.get(name, (name, None))
            if full in regs:
                regs[full].keep |= (1 << (bits or regs[full].bits)) - 1
        return regs

    def where(self, pc: int) -> str:
        """A code address as `region+offset: instruction`, for findings."""
        regions = [("caller", CALLER), ("resolver", RESOLVER), ("re-entry", REENTRY)]
        regions = [(n, self.addr(o)) for n, o in [*regions, ("landing", LANDING)]]
        if self.linked is not None:
            regions += [(n, at) for n, at, _ in self.linked.blocks]
        name, start = max(
            ((n, at) for n, at in regions if at <= pc),
            default=("", 0),
            key=lambda r: r[1],
        )
        if not name:
            return f"{pc:#x}"
        return f"{name}+{pc - start:#x}{self._disassemble(pc)}"

    def _disassemble(self, pc: int) -> str:
        cs = capstone_for(self.spec.arch_info, self.order, self.spec.syntax)
        if cs is None:
            return ""
        try:
            data = bytes(self.uc.mem_read(pc, 16))
        except unicorn.UcError:
            return ""
        for insn in cs.disasm(data, pc, 1):
            return f" ({insn.mnemonic} {insn.op_str})".replace(" )", ")")
        return ""

    # -- memory helpers ---------------------------------------------------

    def word(self, address: int) -> int:
        return int.from_bytes(self.uc.mem_read(address, self.slot), self.order)

    def pointer(self, value: int) -> bytes:
        return value.to_bytes(self.slot, self.order)

    def pc(self) -> int:
        return self.read(self.facts.pc)

    def read(self, name: str) -> int:
        return self.facts.read(self.uc, name)

    # -- the run ----------------------------------------------------------

    def _link(self) -> Linked:
        units = self.subject.units
        if units is None:
            raise ValueError("the table has no trampolines and stubs to run")
        return link(units, placement(self.base, units), self.slot, self.order)

    def _map(self, address: int, data: bytes) -> None:
        """Map the pages `data` needs (those not mapped yet) and write it."""
        first, end = address // PAGE, -(-(address + len(data)) // PAGE)
        for page in range(first, end):
            if page * PAGE not in self.mapped:
                self.uc.mem_map(page * PAGE, PAGE)
                self.mapped.add(page * PAGE)
        self.uc.mem_write(address, data)

    def run(self) -> dict[str, CheckResult]:
        uc, a = self.uc, self.addr
        uc.mem_map(self.base, MAP_SIZE)
        self.mapped = set(range(self.base, self.base + MAP_SIZE, PAGE))
        try:
            # The table's own instantiate and block writers are part of what is verified.
            self.resolver = self.subject.instantiate(a(REENTRY), self.ctx)
            self.linked = self._link()
            caller = self.scaffold.caller(a(CALLER), self.linked.stub, self.order)
        except (KeyError, ValueError, TypeError) as exc:
            return self._results(f"linking the chain failed: {type(exc).__name__}: {exc}")
        for _, address, data in self.linked.blocks:
            self._map(address, data)
        stub, order = self.linked.stub, self.order
        self._map(a(CALLER), caller)
        uc.mem_write(a(RESOLVER), self.resolver)
        uc.mem_write(a(REENTRY), self.scaffold.ret(order))
        self._set_sentinels()
        uc.hook_add(unicorn.UC_HOOK_CODE, self._at_stub, begin=stub, end=stub)
        if self.spec.arch_info.shadow_stack is not None:
            self._decoded: dict[int, tuple[str, str, int]] = {}
            self._cs = None
            uc.hook_add(unicorn.UC_HOOK_CODE, self._shadow_step)
        uc.hook_add(unicorn.UC_HOOK_CODE, self._at_reentry, begin=a(REENTRY), end=a(REENTRY))
        uc.hook_add(
            unicorn.UC_HOOK_MEM_READ | unicorn.UC_HOOK_MEM_WRITE,
            self._on_stack_access,
            begin=a(STACK_LO),
            end=a(STACK_HI) - 1,
        )
        error = ""
        try:
            uc.emu_start(a(CALLER), a(LANDING), count=MAX_INSNS)
        except unicorn.UcError as exc:
            sp = self.read(self.facts.sp)
            error = f"{exc} at {self.where(self.read(self.facts.pc))}, sp {sp:#x}"
        return self._results(error)

    def _set_sentinels(self) -> None:
        uc, facts, spec = self.uc, self.facts, self.spec
        for name, value in facts.init:
            facts.write(uc, name, facts.read(uc, name) | value)
        for index, reg in enumerate(self.regs.values()):
            facts.write(uc, reg.name, pattern(SENTINEL_SEED, index, reg.bits))
        for name in self.controls:
            facts.write(uc, name, facts.fp_control[name][0])
        if facts.flags:
            facts.write(uc, facts.flags[0], facts.flags[1] & 0x55)
        # The caller's sp is aligned exactly as the convention promises, no more.
        align = spec.call.stack_align
        promised = getattr(spec.call, "entry_align", align)
        sp = self.addr(STACK_HI - 0x800)
        sp -= sp % align
        if promised < align:
            sp -= promised
        facts.write(uc, facts.sp, sp)

    def _at_stub(self, uc, address, size, user_data) -> None:
        if self.trace.entry is not None:
            return
        self.trace.entry = {name: self.read(name) for name in self.regs}
        self.trace.entry[self.facts.sp] = self.read(self.facts.sp)
        self.trace.entry_ret = self._return_address()

    def _shadow_step(self, uc, address, size, user_data) -> None:
        """The shadow stack, as the hardware keeps it: a call pushes the
        address after it, a return compares its target with the top and pops
        it (the hardware faults on a difference; the model records it and
        goes on, so that every such return is named)."""
        shadow = self.spec.arch_info.shadow_stack
        insn = self._decoded.get(address)
        if insn is None:
            insn = self._decode(address)
            self._decoded[address] = insn
        mnemonic, operands, length = insn
        if mnemonic in shadow.calls:
            self.trace.shadow.append(address + length)
        elif mnemonic in shadow.returns:
            if shadow.return_register is None:
                target = self.word(self.read(self.facts.sp))
            else:
                target = self.read(operands or shadow.return_register)
            top = self.trace.shadow.pop() if self.trace.shadow else None
            if top != target:
                self.trace.shadow_breaks.append((address, top, target))

    def _decode(self, pc: int) -> tuple[str, str, int]:
        if self._cs is None:  # one disassembler for the run, made at its first use
            self._cs = capstone_for(self.spec.arch_info, self.order)
        for insn in self._cs.disasm(bytes(self.uc.mem_read(pc, 16)), pc, 1):
            return insn.mnemonic, insn.op_str.strip(), insn.size
        return "", "", 0

    def _return_address(self) -> int:
        if self.facts.link:
            return self.read(self.facts.link)
        return self.word(self.read(self.facts.sp))

    def _on_stack_access(self, uc, access, address, size, value, user_data) -> None:
        pc = self.read(self.facts.pc)
        if not self.addr(RESOLVER) <= pc < self.addr(RESOLVER) + len(self.resolver):
            return
        kind = "write" if access == unicorn.UC_MEM_WRITE else "read"
        self.trace.accesses.append((self.trace.phase, kind, address, size, pc))

    def _at_reentry(self, uc, address, size, user_data) -> None:
        facts, call = self.facts, self.spec.call
        sp = self.read(facts.sp)
        args_at = sp + facts.call_pushes  # sp as it was at the call
        args = []
        for i in range(2 if self.subject.takes_context else 1):
            if i < len(call.int_args):
                args.append(self.read(call.int_args[i]))
            else:
                stack_index = i - len(call.int_args)
                args.append(self.word(args_at + call.shadow_space + stack_index * self.slot))
        home = (args_at, args_at + call.shadow_space)
        self.trace.reentries.append((args[0], args[-1]))
        if self.trace.reentry is None:
            self.trace.reentry = {"args": args, "sp_at_call": args_at, "home": home}
            if call.back_chain is not None:
                self.trace.reentry["back_chain"] = self.word(args_at + call.back_chain)
        # Spill the register arguments into the home area, as MSVC code does
        # (not into the back-chain word: that is the frame owner's).
        for i in range(call.shadow_space // self.slot):
            if i < len(call.int_args) and i * self.slot != call.back_chain:
                uc.mem_write(args_at + i * self.slot, self.pointer(self.read(call.int_args[i])))
        # Clobber everything a callee may clobber.
        for index, reg in enumerate(self.regs.values()):
            full = (1 << reg.bits) - 1
            old = self.read(reg.name)
            new = (pattern(CLOBBER_SEED, index, reg.bits) & ~reg.keep & full) | (old & reg.keep)
            facts.write(uc, reg.name, new)
        if facts.flags:
            name, mask = facts.flags
            facts.write(uc, name, self.read(name) ^ mask)
        for name in self.controls:
            # A conforming callee changes only the status bits.
            keep = self.preserved[name]
            bits = self.spec.arch_info.register(name).bits
            new = (self.read(name) & keep) | (facts.fp_control[name][1] & ~keep)
            facts.write(uc, name, new & ((1 << bits) - 1))
        # The landing address; a result wider than a register (o32's 64-bit
        # address in v0:v1) has zero in its other registers.
        for name in getattr(call, "result_regs", (call.return_reg,)):
            facts.write(uc, name, self.addr(LANDING) if name == call.return_reg else 0)
        self.trace.phase = "after"

    # -- checks -----------------------------------------------------------

    def _results(self, error: str) -> dict[str, CheckResult]:
        results: dict[str, CheckResult] = {}

        def add(check, findings, note="", status=None):
            if status is None:
                status = FAIL if findings else PASS
            results[check] = CheckResult(check, status, "unicorn", list(findings), note)

        t, call = self.trace, self.spec.call
        bits = 8 * self.slot
        if t.reentry is None:
            why = error or "the re-entry function was never called"
            for check in ("ctx_arg", "trampoline_arg", "stack_align", "shadow_space"):
                add(check, [Finding("re-entry call", "reached", why)])
        else:
            args = t.reentry["args"]
            where = [
                call.int_args[i] if i < len(call.int_args) else f"stack arg {i}"
                for i in range(len(args))
            ]
            if self.subject.takes_context:
                add("ctx_arg", _diff(where[0], self.ctx, args[0], bits))
            else:
                add("ctx_arg", [], "the reentry path passes no context", NA)
            add("trampoline_arg", _diff(where[-1], self.linked.trampoline, args[-1], bits))
            sp = t.reentry["sp_at_call"]
            add(
                "stack_align",
                []
                if sp % call.stack_align == 0
                else [Finding("sp at the call", f"0 mod {call.stack_align:#x}", hexw(sp, bits))],
            )
            self._check_home(add)
        landed = not error and self.read(self.facts.pc) == self.addr(LANDING)
        arrival = []
        if not landed:
            got = error or hex(self.read(self.facts.pc))
            arrival.append(Finding("pc", hexw(self.addr(LANDING), bits), got))
        add("landing_pc", arrival + self._reentered(), self._reentry_cause())
        self._check_shadow(add, landed)
        entry = t.entry or {}
        landing_checks = {
            "int_args": call.int_args,
            "fp_args": call.fp_args,
            "callee_saved": call.callee_saved,
        }
        for check, names in landing_checks.items():
            if not names:
                add(check, [], "the convention has none", NA)
            elif not landed:
                add(check, [Finding("landing", "reached", "not reached")])
            else:
                add(check, [f for n in names for f in self._compare(n, entry)])
        self._check_callers(add, landed, entry)
        if not landed:
            for check in ("stack_pointer", "return_address"):
                add(check, [Finding("landing", "reached", "not reached")])
        else:
            sp_name = self.facts.sp
            add("stack_pointer", _diff(sp_name, entry[sp_name], self.read(sp_name), bits))
            what = self.facts.link or f"[{sp_name}]"
            add("return_address", _diff(what, t.entry_ret, self._return_address(), bits))
        unmodeled = dict(self.facts.unmodeled)
        if not call.fp_control:
            add("fp_control", [], "the spec names no FP control state", NA)
        elif all(name in unmodeled for name in call.fp_control):
            why = "; ".join(f"{n}: {unmodeled[n]}" for n in call.fp_control)
            add("fp_control", [], f"not emulated ({why})", NA)
        elif not landed:
            add("fp_control", [Finding("landing", "reached", "not reached")])
        else:
            found = [
                Finding(name, "a value the emulator can set (facts.py)", "no fact for it")
                for name in call.fp_control
                if name not in self.controls and name not in unmodeled
            ]
            for name in self.controls:
                keep = self.preserved[name]
                want, got = self.facts.fp_control[name][0], self.read(name)
                if (want ^ got) & keep:
                    bits = self.spec.arch_info.register(name).bits
                    found.append(Finding(name, hexw(want, bits), hexw(got, bits)))
            kept = ", ".join(f"{n} {self.preserved[n]:#x}" for n in self.controls)
            add("fp_control", found, f"compares the bits a callee keeps: {kept}" if found else "")
        return results

    def _check_callers(self, add, landed: bool, entry: dict[str, int]) -> None:
        """Every register a served caller convention passes or keeps beyond the
        contract (which int_args, fp_args and callee_saved check) at the landing,
        at the width unicorn models (no AVX: vector_width checks the rest)."""
        served = {c.name: beyond_contract(self.spec, c) for c in self.spec.served}
        if not any(served.values()):
            why = "the served conventions pass and keep nothing beyond the contract"
            add("caller_conventions", [], why, NA)
            return
        if not landed:
            add("caller_conventions", [Finding("landing", "reached", "not reached")])
            return
        found = []
        for name, registers in served.items():
            for reg in registers:
                if self.facts.aliases.get(reg, (reg,))[0] not in self.regs:
                    continue  # not modeled here (a reserved register)
                found += [broke(f, name) for f in self._compare(reg, entry)]
        add("caller_conventions", found)

    def _check_shadow(self, add, landed: bool) -> None:
        shadow = self.spec.arch_info.shadow_stack
        if shadow is None:
            add("shadow_stack", [], f"{self.spec.arch} has no hardware shadow stack", NA)
            return
        bits = 8 * self.slot

        def place(address: int) -> str:
            return f"{hexw(address, bits)} ({self.where(address).split(' (')[0]})"

        found = [
            Finding(
                f"return at {self.where(pc)}",
                f"{place(top)}, the top of the shadow stack" if top else "a call to return from",
                f"a return to {place(target)}",
            )
            for pc, top, target in self.trace.shadow_breaks
        ]
        if landed:
            # The landed function's own return must pop the caller's call.
            want = [self.trace.entry_ret]
            got = self.trace.shadow
            if got != want or self._return_address() != self.trace.entry_ret:
                found.append(
                    Finding(
                        "shadow stack at the landing",
                        f"[{', '.join(hexw(a, bits) for a in want)}] (the caller's call), "
                        f"and the landing's return address on top",
                        f"[{', '.join(hexw(a, bits) for a in got)}], return address "
                        f"{hexw(self._return_address(), bits)}",
                    )
                )
        else:
            found.append(Finding("landing", "reached", "not reached"))
        note = f"models the {shadow.name}" + (
            ": the hardware faults at the first return named" if found else ""
        )
        add("shadow_stack", found, note)

    def _reentered(self) -> list[Finding]:
        """The resolver runs once per lazy call: a second call of the re-entry
        function means it jumped back into itself instead of to the landing."""
        calls = self.trace.reentries
        if len(calls) <= 1:
            return []
        seen = ", ".join(f"({ctx:#x}, {tramp:#x})" for ctx, tramp in calls)
        return [Finding("re-entry function calls", "1", f"{len(calls)}: {seen}")]

    def _reentry_cause(self) -> str:
        if len(self.trace.reentries) <= 1:
            return ""
        causes = late_delay_slot_writes(self.spec, self.resolver)
        why = "; ".join(causes) or "no late delay-slot write found in the resolver"
        return f"the resolver re-entered itself: {why}"

    def _compare(self, name: str, entry: dict[str, int]) -> list[Finding]:
        full, part = self.facts.aliases.get(name, (name, None))
        reg = self.regs[full]
        bits = part or reg.bits
        mask = (1 << bits) - 1
        return _diff(name, entry[full] & mask, self.read(full) & mask, bits)

    def _check_home(self, add) -> None:
        call = self.spec.call
        if not call.shadow_space:
            add("shadow_space", [], "the convention has no home area", NA)
            return
        lo, hi = self.trace.reentry["home"]
        # The back-chain word belongs to the resolver's own frame: written, it
        # must hold the caller's sp, so that the chain stays unbroken.
        chain = None if call.back_chain is None else lo + call.back_chain
        found = []
        if chain is not None:
            written = any(
                (phase, kind) == ("before", "write")
                and address < chain + self.slot
                and chain < address + size
                for phase, kind, address, size, _ in self.trace.accesses
            )
            sp, kept = self.trace.entry[self.facts.sp], self.trace.reentry["back_chain"]
            if written and kept != sp:
                what = f"back chain [sp+{call.back_chain:#x}]"
                found.append(
                    Finding(
                        what,
                        f"the caller's sp {hexw(sp, 8 * self.slot)}",
                        hexw(kept, 8 * self.slot),
                    )
                )
        # One finding per instruction: the span of the home area it touched.
        spans: dict[tuple[str, int], list[int]] = {}
        for phase, kind, address, size, pc in self.trace.accesses:
            start, end = max(address, lo), min(address + size, hi)
            live = (phase, kind) in (("before", "write"), ("after", "read"))
            if chain is not None and chain <= start and end <= chain + self.slot:
                continue
            if start < end and live:
                span = spans.setdefault((kind, pc), [start, end])
                span[0], span[1] = min(span[0], start), max(span[1], end)
        for (kind, pc), (start, end) in spans.items():
            at = f"home area [{start - lo:#x}, {end - lo:#x})"
            where = self.where(pc)
            if kind == "write":
                found.append(
                    Finding(at, "no resolver data", f"written at {where}, before the call")
                )
            else:
                found.append(Finding(at, "not read after the call", f"read at {where}"))
        add("shadow_space", found)


def _diff(what: str, expected: int, got: int, bits: int) -> list[Finding]:
    if expected == got:
        return []
    return [Finding(what, hexw(expected, bits), hexw(got, bits))]


def emulate(subject: Subject, facts: EmuFacts) -> dict[str, CheckResult]:
    return Emulation(subject, facts).run()
