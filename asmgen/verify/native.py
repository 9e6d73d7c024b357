"""Run the resolver on the real CPU, with C-callable Python functions around it.

Python calls a stub as a C function with six integer and eight double
arguments; the stub jumps through its pointer to a trampoline, the trampoline
calls the resolver (stubs and trampolines are the table's own, written by its
`write_stubs` and `write_trampolines`), and the resolver calls a ctypes
re-entry function that records (ctx, trampoline) and returns the address of
the landing, a second ctypes function that records the arguments it received
and returns a marker.  What an emulator models wrongly (alignment faults, real
libffi callbacks, the real stack) shows here.

It runs in a forked child (`forked.py`), so a broken table kills the child, not verify.
"""

from __future__ import annotations

import ctypes
import mmap
import platform

from asmgen.arches.model import EmuFacts
from asmgen.verify.chain import Placement, link
from asmgen.verify.forked import run_forked
from asmgen.verify.model import FAIL, NA, PASS, CheckResult, Finding, Subject, hexw

INTS = tuple(0x1111_2222_3333_0000 + 0x0101 * i for i in range(1, 7))
DOUBLES = tuple(1.5 + 0.25 * i for i in range(8))
MARKER = 0x600D_CAFE_F00D_1234
CTX = 0x7EC7_0000_0000_5678

REENTRY_T = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_uint64, ctypes.c_uint64)
LANDING_T = ctypes.CFUNCTYPE(ctypes.c_uint64, *[ctypes.c_int64] * 6, *[ctypes.c_double] * 8)

# The mapping, in pages: stubs, their pointers, trampolines, then the resolver.
STUBS, POINTERS, TRAMPOLINES, RESOLVER, PAGES = 0, 1, 2, 3, 6


def not_applicable(subject: Subject, facts: EmuFacts | None) -> str:
    """Why this table cannot run natively here, or "" if it can."""
    host = (platform.machine(), platform.system())
    if facts is None or host not in facts.native_hosts:
        return f"this host ({host[0]} {host[1]}) does not run {subject.spec.arch} code"
    if subject.spec.call.int_args != facts.native_int_args:
        return "the convention is not the host's C convention (ctypes cannot call it)"
    if subject.units is None:
        return "the table has no trampolines and stubs to run"
    return ""


def _libc():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int]
    libc.mmap.argtypes += [ctypes.c_int, ctypes.c_long]
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    return libc


def _run(subject: Subject) -> dict:
    """The chain itself (in the child): returns what the callbacks saw."""
    seen: dict = {"reentry": [], "landing": []}

    def landing(*args):
        seen["landing"].append(list(args))
        return MARKER

    landing_fn = LANDING_T(landing)
    landing_addr = ctypes.cast(landing_fn, ctypes.c_void_p).value

    def reentry(ctx, tramp):
        seen["reentry"].append([ctx, tramp])
        return landing_addr

    reentry_fn = REENTRY_T(reentry)
    reentry_addr = ctypes.cast(reentry_fn, ctypes.c_void_p).value

    libc = _libc()
    page = mmap.PAGESIZE
    size = page * PAGES
    flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS
    base = libc.mmap(None, size, mmap.PROT_READ | mmap.PROT_WRITE, flags, -1, 0)
    if base in (None, ctypes.c_void_p(-1).value):
        raise OSError(ctypes.get_errno(), "mmap failed")
    at = Placement(*(base + page * i for i in (STUBS, POINTERS, TRAMPOLINES, RESOLVER)))
    linked = link(subject.units, at, subject.spec.pointer_size, subject.spec.endian)
    resolver = subject.instantiate(reentry_addr, CTX)
    blocks = [*linked.blocks, ("resolver", at.resolver, resolver)]
    for what, address, data in blocks:
        if address + len(data) > base + size:
            raise ValueError(f"the {what} do not fit the mapping")
        ctypes.memmove(address, data, len(data))
    if libc.mprotect(base, size, mmap.PROT_READ | mmap.PROT_EXEC) != 0:
        raise OSError(ctypes.get_errno(), "mprotect failed")
    seen["tramp"] = linked.trampoline
    seen["result"] = LANDING_T(linked.stub)(*INTS, *DOUBLES)
    return seen


def run_native(subject: Subject, facts: EmuFacts | None) -> CheckResult:
    why = not_applicable(subject, facts)
    if why:
        return CheckResult("native", NA, "native", [], why)
    out = run_forked(lambda: _run(subject))
    if isinstance(out, Finding):
        return _fail(out)
    return _check(out)


def _fail(*findings: Finding) -> CheckResult:
    return CheckResult("native", FAIL, "native", list(findings))


def _check(seen: dict) -> CheckResult:
    found = []
    if seen["reentry"] != [[CTX, seen["tramp"]]]:
        found.append(
            Finding(
                "re-entry(ctx, trampoline)",
                f"one call ({CTX:#x}, {seen['tramp']:#x})",
                ", ".join(f"({c:#x}, {t:#x})" for c, t in seen["reentry"]) or "no call",
            )
        )
    if len(seen["landing"]) != 1:
        found.append(Finding("landing calls", "1", str(len(seen["landing"]))))
    else:
        got = seen["landing"][0]
        for i, (want, have) in enumerate(zip((*INTS, *DOUBLES), got, strict=True)):
            if want != have:
                kind = "int" if i < len(INTS) else "double"
                shown = (hexw(want), hexw(have)) if kind == "int" else (repr(want), repr(have))
                found.append(Finding(f"landing {kind} arg {i}", *shown))
    if seen["result"] != MARKER:
        found.append(Finding("value returned to the caller", hexw(MARKER), hexw(seen["result"])))
    return CheckResult("native", FAIL if found else PASS, "native", found)
