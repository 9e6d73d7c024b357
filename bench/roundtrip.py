"""One lazy-compile round trip of an x86-64 resolver under unicorn, measured.

The chain is the table's own: its stubs, their pointers and its trampolines,
written by the table's `write_stubs`/`write_trampolines` and linked by
`verify.chain.link`.  The round trip starts where a caller's call has entered
stub USED (sp at the caller's return address) and ends at the landing address
the re-entry function returned.  A hook stands in for the re-entry function:
it records its arguments and sp, overwrites every register the call
convention lets a callee overwrite (and, with a home area, spills into it as
MSVC code does), and returns the landing address.

Measured per round trip: instructions executed inside the resolver, and bytes
of stack the resolver read and wrote (every access in the stack mapping while
the program counter is inside the resolver).  Both are deterministic.

The emulator models x87/SSE state and XSAVE with XCR0 = x87|SSE (CPUID leaf
0xD reports a 0x240-byte area), not AVX: YMM/ZMM state is checked natively by
`asmgen.native`.
"""

from __future__ import annotations

from dataclasses import dataclass

from asmgen.verify.chain import Linked, Placement, link
from asmgen.verify.model import ChainUnits

CODE = 0x100000
# The blocks of four units each, all before the resolver in one mapping.
PLACEMENT = Placement(
    stubs=CODE + 0x200, pointers=CODE + 0x400, trampolines=CODE, resolver=CODE + 0x1000
)
RESOLVER = PLACEMENT.resolver
REENTRY = CODE + 0x3000
LANDING = CODE + 0x3800
STACK = 0x800000
STACK_SIZE = 0x10000
ENTRY_SP = STACK + STACK_SIZE - 0x1008  # 16-byte aligned minus the caller's return address
CALLER_RETURN = 0xCA11E2C0DE
CTX = 0xC0FFEE0C0FFEE00

GPRS = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "r8", "r9", "r10", "r11", "r12", "r13")
GPRS += ("r14", "r15")
XMMS = tuple(f"xmm{i}" for i in range(16))


def _reg(name: str) -> int:
    from unicorn import x86_const

    return getattr(x86_const, f"UC_X86_REG_{name.upper()}")


def _value(i: int) -> int:
    return 0x1111111111111111 * (i % 15 + 1) ^ (i << 56)


def initial_state() -> dict[str, int]:
    """Register values at the trampoline's entry."""
    state = {name: _value(i) for i, name in enumerate(GPRS)}
    for i, name in enumerate(XMMS):
        state[name] = _value(i + 0x20) << 64 | _value(i + 0x40)
    return state


@dataclass(frozen=True)
class RoundTrip:
    instructions: int  # executed inside the resolver
    stack_read: int  # bytes of stack the resolver read
    stack_written: int  # bytes of stack the resolver wrote
    landed: bool
    sp_at_landing: int
    caller_return_kept: bool
    reentry_args: tuple[int, int]
    trampoline: int  # the trampoline the stub reaches: the re-entry function's second argument
    reentry_sp: int  # sp at the re-entry function's first instruction
    changed: tuple[str, ...]  # registers whose value at landing differs from entry
    vector_area_addr: int | None  # operand of the first fxsave64/xsave64, if any

    @property
    def stack_moved(self) -> int:
        return self.stack_read + self.stack_written


def linked(units: ChainUnits) -> Linked:
    """The table's stubs, pointers and trampolines as the round trip links them."""
    chain = link(units, PLACEMENT, 8, "little")
    spans = sorted((at, at + len(data)) for _, at, data in chain.blocks)
    for (_, end), (start, _) in zip(spans, [*spans[1:], (RESOLVER, 0)], strict=True):
        if end > start:
            raise ValueError(f"the linked blocks overlap at {start:#x}")
    return chain


def run(
    code: bytes,
    patches: dict[str, int],
    units: ChainUnits,
    int_args: tuple[str, ...],
    callee_saved: tuple[str, ...],
    shadow_space: int,
    on_step=None,
    on_chain_step=None,
) -> RoundTrip:
    """Run resolver bytes `code`, whose abs64 patch fields sit at `patches`
    offsets, through one round trip, reached through `units`' stubs and
    trampolines (a `Table`, or a generated module's table object).
    `on_step(uc, offset)` runs before each resolver instruction (offset from
    the resolver's start), `on_chain_step(uc, address)` before each stub and
    trampoline instruction."""
    from unicorn import (
        UC_ARCH_X86,
        UC_HOOK_CODE,
        UC_HOOK_MEM_READ,
        UC_HOOK_MEM_WRITE,
        UC_MEM_WRITE,
        UC_MODE_64,
        Uc,
    )

    image = bytearray(code)
    for name, value in (("ReentryFnAddr", REENTRY), ("ReentryCtxAddr", CTX)):
        at = patches[name]
        image[at : at + 8] = value.to_bytes(8, "little")
    uc = Uc(UC_ARCH_X86, UC_MODE_64)
    uc.mem_map(CODE, 0x4000)
    uc.mem_map(STACK, STACK_SIZE)
    chain = linked(units)
    for _, at, data in chain.blocks:
        uc.mem_write(at, data)
    uc.mem_write(RESOLVER, bytes(image))
    uc.mem_write(REENTRY, b"\xc3")  # ret; the hook below does the rest
    uc.mem_write(ENTRY_SP, CALLER_RETURN.to_bytes(8, "little"))
    initial = initial_state()
    for name, value in initial.items():
        uc.reg_write(_reg(name), value)
    uc.reg_write(_reg("rsp"), ENTRY_SP)

    end = RESOLVER + len(image)
    counts = {"insn": 0, "read": 0, "write": 0}
    seen: dict = {}

    def on_code(uc, address, size, _):
        if RESOLVER <= address < end:
            counts["insn"] += 1
            if on_step is not None:
                on_step(uc, address - RESOLVER)
            if "area" not in seen and uc.mem_read(address, size)[:4] in (
                b"\x48\x0f\xae\x04",
                b"\x48\x0f\xae\x24",
            ):
                # fxsave64/xsave64 (%rsp): the area is at sp.
                seen["area"] = uc.reg_read(_reg("rsp"))
        elif address < RESOLVER:
            if on_chain_step is not None:
                on_chain_step(uc, address)
        elif address == REENTRY:
            sp = uc.reg_read(_reg("rsp"))
            seen["args"] = (uc.reg_read(_reg(int_args[0])), uc.reg_read(_reg(int_args[1])))
            seen["sp"] = sp
            for i, name in enumerate(GPRS + XMMS):
                if name not in callee_saved:
                    uc.reg_write(_reg(name), 0xBAD0000000000000 | i)
            if shadow_space:
                uc.mem_write(sp + 8, b"\xee" * shadow_space)
            uc.reg_write(_reg("rax"), LANDING)

    def on_mem(uc, access, address, size, value, _):
        pc = uc.reg_read(_reg("rip"))
        if RESOLVER <= pc < end and STACK <= address < STACK + STACK_SIZE:
            counts["write" if access == UC_MEM_WRITE else "read"] += size

    uc.hook_add(UC_HOOK_CODE, on_code)
    uc.hook_add(UC_HOOK_MEM_READ | UC_HOOK_MEM_WRITE, on_mem)
    uc.emu_start(chain.stub, LANDING, count=10000)
    pc = uc.reg_read(_reg("rip"))
    changed = []
    for name in GPRS + XMMS:
        if uc.reg_read(_reg(name)) != initial[name]:
            changed.append(name)
    sp = uc.reg_read(_reg("rsp"))
    kept = int.from_bytes(uc.mem_read(ENTRY_SP, 8), "little") == CALLER_RETURN
    return RoundTrip(
        instructions=counts["insn"],
        stack_read=counts["read"],
        stack_written=counts["write"],
        landed=pc == LANDING,
        sp_at_landing=sp,
        caller_return_kept=kept,
        reentry_args=seen.get("args", (0, 0)),
        trampoline=chain.trampoline,
        reentry_sp=seen.get("sp", 0),
        changed=tuple(changed),
        vector_area_addr=seen.get("area"),
    )


def run_table(table, on_step=None, on_chain_step=None) -> RoundTrip:
    spec = table.spec
    return run(
        table.code,
        {p.name: p.offset for p in table.patches},
        table,
        spec.call.int_args,
        spec.call.callee_saved,
        spec.call.shadow_space,
        on_step,
        on_chain_step,
    )


def reg(uc, name: str) -> int:
    return uc.reg_read(_reg(name))
