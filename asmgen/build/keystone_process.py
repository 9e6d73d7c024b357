"""keystone in a child process, so a statement it loops on costs a time limit.

keystone 0.9.2 never returns on some malformed statements (one that starts
with `,` or `>`, `.quad ]`, ...), and a C loop cannot be interrupted from
Python.  Every `asm` call therefore runs in one long-lived child process
(started on first use, ~40 ms); a call that takes longer than `TIMEOUT`
seconds kills it, and the next call starts a fresh one.  A resolver assembles
in well under a millisecond, so the limit is never near a real template.

`Engine` looks like `keystone.Ks` to its callers: `asm(text, address)`
returns `(encoding, count)` or raises `keystone.KsError`; it raises
`KeystoneStuck` when the child times out or dies.
"""

from __future__ import annotations

import atexit
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from typing import Any

TIMEOUT = 2.0

_HEADER = struct.Struct("<I")


class KeystoneStuck(Exception):
    """keystone did not answer within TIMEOUT (or its process died)."""


class _Child:
    """The child process and the pipes to it."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from asmgen.build.keystone_process import serve; serve()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            # keystone's own diagnostics (some of its parsers print "error:
            # invalid memory operand" and the statement) carry no template
            # line; asmgen reports the failure itself, on one line.
            stderr=subprocess.DEVNULL,
        )

    def call(self, request: Any) -> Any:
        data = pickle.dumps(request)
        try:
            self.proc.stdin.write(_HEADER.pack(len(data)) + data)
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise KeystoneStuck("keystone's process ended") from None
        deadline = time.monotonic() + TIMEOUT
        size = _HEADER.unpack(self._read(_HEADER.size, deadline))[0]
        return pickle.loads(self._read(size, deadline))

    def _read(self, count: int, deadline: float) -> bytes:
        out = self.proc.stdout
        data = b""
        while len(data) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([out], [], [], remaining)[0]:
                raise KeystoneStuck(f"keystone did not finish within {TIMEOUT:g} s")
            chunk = os.read(out.fileno(), count - len(data))
            if not chunk:
                raise KeystoneStuck("keystone's process ended")
            data += chunk
        return data

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            pipe.close()


_child: _Child | None = None
_owner = 0  # the process that started _child (a fork starts its own)


def start() -> None:
    """Start this process's child unless it runs: a caller that is about to
    build lets it boot meanwhile."""
    global _child, _owner
    if _child is None or _owner != os.getpid() or _child.proc.poll() is not None:
        _child, _owner = _Child(), os.getpid()


# One request at a time on the pipe: a parallel build (gather.py) calls from threads.
_lock = threading.Lock()


def _call(request: Any) -> Any:
    global _child
    with _lock:
        start()
        try:
            return _child.call(request)
        except KeystoneStuck:
            _child.close()
            _child = None
            raise


@atexit.register
def _stop() -> None:
    if _child is not None and _owner == os.getpid():
        _child.close()


class Engine:
    """A keystone engine for (KS_ARCH_*, KS_MODE_* | endian bits, syntax option)."""

    def __init__(self, arch: str, mode: int, syntax: str | None) -> None:
        self.key = (arch, mode, syntax)

    def asm(self, text: str, address: int = 0) -> tuple[list[int] | None, int]:
        import keystone

        status, *result = _call((self.key, text, address))
        if status == "error":
            raise keystone.KsError(result[0])
        return result[0], result[1]


def serve() -> None:
    """The child: answer (engine, text, address) requests until stdin closes."""
    import keystone

    # Ctrl-C reaches the whole process group: the parent reports it, and
    # closing the pipe ends the child.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    engines: dict[tuple, Any] = {}
    source, sink = sys.stdin.buffer, sys.stdout.buffer
    while header := source.read(_HEADER.size):
        key, text, address = pickle.loads(source.read(_HEADER.unpack(header)[0]))
        if key not in engines:
            arch, mode, syntax = key
            engines[key] = keystone.Ks(getattr(keystone, arch), mode)
            if syntax:
                engines[key].syntax = getattr(keystone, syntax)
        try:
            encoding, count = engines[key].asm(text, address)
            reply = ("ok", list(encoding) if encoding else None, count)
        except keystone.KsError as exc:
            reply = ("error", exc.errno)
        data = pickle.dumps(reply)
        sink.write(_HEADER.pack(len(data)) + data)
        sink.flush()
