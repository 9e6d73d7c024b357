"""Native check of the vector state beyond SSE: unicorn models no AVX, so the
upper halves of YMM/ZMM are checked on the real CPU with asmgen.native's
harness (ABI-neutral: it calls only its own code, so Win64 tables run too).

The contract: every FP argument register (call.fp_args) reaches the landing
at the full width the CPU has (YMM, or ZMM with AVX-512F), since __m256 and
__m512 arguments travel there.  A CPU without AVX fails the check loudly.
"""

from __future__ import annotations

import json
import os
import platform
import signal

from .facts import EmuFacts
from .model import FAIL, NA, PASS, CheckResult, Finding, Subject

TIMEOUT_S = 10


def _child(subject: Subject, fd: int) -> None:
    from ..native import run_code

    signal.alarm(TIMEOUT_S)
    try:
        out = {"ok": run_code(subject.instantiate, subject.units)}
    except Exception as exc:  # reported to the parent, which fails the check
        out = {"error": f"{type(exc).__name__}: {exc}"}
    os.write(fd, json.dumps(out).encode())
    os._exit(0)


def vector_width_check(subject: Subject, facts: EmuFacts | None) -> CheckResult:
    from ..native import survival

    host = (platform.machine(), platform.system())
    if subject.spec.arch != "x86_64" or facts is None or host not in facts.native_hosts:
        return CheckResult("vector_width", NA, "native", [], "needs x86-64 code on this host")
    if subject.units is None:
        why = "the table has no trampolines and stubs to run"
        return CheckResult("vector_width", NA, "native", [], why)
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        _child(subject, write_fd)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        name = signal.Signals(os.WTERMSIG(status)).name
        finding = Finding("process", "returns to Python", f"killed by {name}")
        return CheckResult("vector_width", FAIL, "native", [finding])
    out = json.loads(data or b'{"error": "no result"}')
    if "error" in out:
        finding = Finding("run", "completes", out["error"])
        return CheckResult("vector_width", FAIL, "native", [finding])
    seen = survival(out["ok"])
    wide = out["ok"]["shape"]["name"]
    found = []
    for name in subject.spec.call.fp_args:
        index = int(name.removeprefix("xmm"))
        if not seen.xmm[index]:
            found.append(Finding(f"{wide}{index} bits 0-127", "kept", "changed"))
        if not seen.upper[index]:
            found.append(Finding(f"{wide}{index} bits 128 and up", "kept", "changed"))
    note = f"{wide}, {len(seen.xmm)} registers"
    return CheckResult("vector_width", FAIL if found else PASS, "native", found, note)
