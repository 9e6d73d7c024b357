"""Run one harness process: natively, under wine or under qemu-user.

The harness prints a hello line (its real addresses); the caller queues
writes and runs, and `finish` sends them in one batch and reads one JSON line
per run: one round trip per target, so a slow runner (wine's start) is paid
once.  Wine needs a prefix: it is created once per machine, outside the
repository (`ASMGEN_WINEPREFIX`, default ~/.cache/asmgen/wine64), under a
lock so that concurrent runs create it once.
"""

from __future__ import annotations

import fcntl
import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from asmgen.arches.model import HarnessTarget

# How long a whole batch may take (each run has its own 3 s watchdog).
BATCH_TIMEOUT_S = 300
WINEBOOT_TIMEOUT_S = 300


class HarnessError(Exception):
    """The harness could not be built or run: the message says why."""


def wine_prefix() -> Path:
    configured = os.environ.get("ASMGEN_WINEPREFIX")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "asmgen" / "wine64"


def wine_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        WINEPREFIX=str(wine_prefix()),
        WINEARCH="win64",
        WINEDEBUG="-all",
        # No Mono/Gecko installer prompts, no desktop menu entries, no display.
        WINEDLLOVERRIDES="mscoree,mshtml,winemenubuilder.exe=d",
        DISPLAY="",
    )
    return env


def ensure_wine_prefix() -> float:
    """Create the wine prefix if it is missing (about 5 s and 700 MB, once per
    machine); returns the seconds it took, 0 when it existed."""
    prefix = wine_prefix()
    if (prefix / "system.reg").exists():
        return 0.0
    start = time.perf_counter()
    prefix.parent.mkdir(parents=True, exist_ok=True)
    with open(prefix.parent / f".{prefix.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (prefix / "system.reg").exists():
            quiet = {
                "env": wine_env(),
                "stdin": subprocess.DEVNULL,
                "stdout": subprocess.DEVNULL,
                "stderr": subprocess.DEVNULL,
                "timeout": WINEBOOT_TIMEOUT_S,
                "check": False,
            }
            done = subprocess.run(["wine", "wineboot", "--init"], **quiet)
            # The registry files are written when the wineserver exits.
            subprocess.run(["wineserver", "-w"], **quiet)
            if not (prefix / "system.reg").exists():
                raise HarnessError(f"wineboot could not create {prefix} (exit {done.returncode})")
    return time.perf_counter() - start


def unavailable(target: HarnessTarget) -> str:
    """Why `target` cannot run here, or "" when it can."""
    machine = platform.machine()
    if target.hosts and machine not in target.hosts:
        return f"{target.method} runs on {'/'.join(target.hosts)} hosts, not on {machine}"
    missing = [tool for tool in (target.compiler, *target.runner[:1]) if not shutil.which(tool)]
    if missing:
        return (
            f"{' and '.join(missing)} not found (Debian packages {' '.join(target.packages)}; "
            "`make toolchains` installs them)"
        )
    return ""


class Session:
    """One harness process: start it, read its hello, then one batch."""

    def __init__(self, target: HarnessTarget, exe: Path):
        self.target = target
        command, env = [str(exe)], None
        if target.runner:
            tool = shutil.which(target.runner[0]) or target.runner[0]
            command = [tool, *target.runner[1:], str(exe)]
        if target.windows:
            env = wine_env()
        self.started = time.perf_counter()
        # stderr goes to a file: wine's helper processes inherit it, and a pipe
        # would stay open until they exit.
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed with the session)
        self._proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, env=env
        )
        line = self._proc.stdout.readline()
        try:
            self.hello = json.loads(line)
        except ValueError:
            self._proc.kill()
            self._proc.wait()
            why = self._stderr_text() or repr(line)
            raise HarnessError(f"the harness did not start: {why}") from None
        if "error" in self.hello:
            raise HarnessError(f"the harness failed to start: {self.hello['error']}")
        self.hello_seconds = time.perf_counter() - self.started
        self.sym = {name: int(value, 16) for name, value in self.hello["sym"].items()}
        self.arena = int(self.hello["arena"], 16)
        self.arena_size = int(self.hello["arena_size"])
        self.ctx = int(self.hello["ctx"], 16)
        self.call_sp = int(self.hello["call_sp"], 16)
        self._commands: list[str] = []

    def _stderr_text(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace").strip()

    def write(self, address: int, data: bytes) -> None:
        self._commands.append(f"W {address - self.arena:x} {data.hex()}")

    def run(self, tag: str, state: bytes, target: int, landing: int = 0, flags: int = 0) -> None:
        self._commands.append(f"S {state.hex()}")
        self._commands.append(f"R {tag} {target:x} {landing:x} {flags}")

    def finish(self) -> dict[str, dict]:
        """Send the batch; every run's result by tag."""
        data = ("\n".join(self._commands) + "\nQ\n").encode()
        try:
            out, _ = self._proc.communicate(data, timeout=BATCH_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            out, _ = self._proc.communicate()
        self.seconds = time.perf_counter() - self.started
        stderr = self._stderr_text()
        self._stderr.close()
        results = {}
        for line in out.decode(errors="replace").splitlines():
            try:
                result = json.loads(line)
            except ValueError:
                continue
            if "error" in result:
                raise HarnessError(f"the harness refused a command: {result['error']}")
            if "tag" in result:
                for key in ("code", "pc", "addr", "fpu"):
                    result[key] = int(result[key], 16)
                result["out"] = bytes.fromhex(result["out"])
                result["obs"] = bytes.fromhex(result["obs"])
                results[result["tag"]] = result
        if self._proc.returncode not in (0, None) and not results:
            raise HarnessError(f"the harness exited with {self._proc.returncode}: {stderr[-500:]}")
        return results
