"""Run native code in a forked child, so a broken table kills the child, not verify."""

from __future__ import annotations

import faulthandler
import json
import os
import signal
from collections.abc import Callable

from asmgen.verify.model import Finding

TIMEOUT_S = 10


def run_forked(work: Callable[[], dict]) -> dict | Finding:
    """`work()`'s JSON-able result, or the Finding that says how the child died."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        # A crash is the expected report of a broken table: no traceback dump.
        faulthandler.disable()
        signal.alarm(TIMEOUT_S)  # a resolver that loops is killed by SIGALRM
        try:
            out = {"ok": work()}
        except Exception as exc:  # reported to the parent, which fails the check
            out = {"error": f"{type(exc).__name__}: {exc}"}
        os.write(write_fd, json.dumps(out).encode())
        os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        name = signal.Signals(os.WTERMSIG(status)).name
        return Finding("process", "returns to Python", f"killed by {name}")
    out = json.loads(data or b'{"error": "no result"}')
    if "error" in out:
        return Finding("run", "completes", out["error"])
    return out["ok"]
