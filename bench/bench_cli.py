"""Each command's wall time as a ratio to the import floor, measured side by side.

The floor is `python -c 'import keystone, capstone, unicorn'`: starting
Python with the assemblers loaded.  Every round runs the floor and each
command once, as separate processes, in a shuffled order, so that a busy
machine slows them alike; the figures are the medians over the rounds.

- `check` and no-op `generate`: the build cache (asmgen/build/buildcache.py)
  warm, nothing to write;
- cold `generate`: a fresh, empty cache folder each time (every llvm-mc run,
  every template compile), into an empty output folder;
- `verify --emulation-only`: unicorn and the static checks, every table;
- `explain X86_64_Win32`, cache warm;
- `review`: the checked-in tables at HEAD against the working tree;

and, once, how many llvm-mc processes a cold `generate` starts.

Figures only: nothing here passes or fails.  `--rounds N` (default 9).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FLOOR = [sys.executable, "-c", "import keystone, capstone, unicorn"]
ASMGEN = [sys.executable, "-m", "asmgen"]
TARGETS = {"check": "<= 2x", "generate (no-op)": "<= 2x", "generate (cold)": "<= 0.5 s"}
TARGETS["verify --emulation-only"] = "<= 0.6 s"


def commands(scratch: Path) -> dict[str, tuple[list[str], dict[str, str]]]:
    warm = {"ASMGEN_CACHE_DIR": str(scratch / "cache")}
    return {
        "floor": (FLOOR, {}),
        "check": ([*ASMGEN, "check"], warm),
        "generate (no-op)": ([*ASMGEN, "generate", "--out", str(scratch / "out")], warm),
        "generate (cold)": ([*ASMGEN, "generate", "--out", "COLD/out"], {}),
        "verify --emulation-only": ([*ASMGEN, "verify", "--emulation-only"], warm),
        "explain X86_64_Win32": ([*ASMGEN, "explain", "X86_64_Win32"], warm),
        "review (HEAD -> tree)": ([*ASMGEN, "review"], warm),
    }


def timed(argv: list[str], env: dict[str, str], scratch: Path) -> float:
    cold = None
    if "COLD/out" in argv:
        cold = Path(tempfile.mkdtemp(dir=scratch))
        argv = [a.replace("COLD", str(cold)) for a in argv]
        env = {**env, "ASMGEN_CACHE_DIR": str(cold / "cache")}
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, env={**os.environ, **env}, capture_output=True)
    seconds = time.perf_counter() - start
    if cold is not None:
        shutil.rmtree(cold)
    if done.returncode not in (0, 1):
        sys.exit(f"{' '.join(argv)}: exit {done.returncode}\n{done.stderr.decode()}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    rounds = parser.parse_args().rounds
    scratch = Path(tempfile.mkdtemp(prefix="asmgen-bench-cli-"))
    try:
        runs = commands(scratch)
        for argv, env in runs.values():  # warm the caches and the output folder
            timed(argv, env, scratch)
        times: dict[str, list[float]] = {name: [] for name in runs}
        load = [os.getloadavg()[0]]
        for _ in range(rounds):
            order = list(runs)
            random.shuffle(order)
            for name in order:
                times[name].append(timed(*runs[name], scratch))
            load.append(os.getloadavg()[0])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    floor = statistics.median(times["floor"])
    print(
        f"{rounds} interleaved rounds on {os.cpu_count()} CPUs, load average (1 min) "
        f"{min(load):.2f}-{max(load):.2f}; medians"
    )
    print(f"{'command':28} {'time':>8} {'ratio':>7}  target")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:28} {median:7.3f}s {median / floor:6.1f}x  {TARGETS.get(name, '')}")
    print(f"llvm-mc processes in a cold generate: {cold_llvm_mc_runs()}")


def cold_llvm_mc_runs() -> int:
    """How many times a cold `generate` starts llvm-mc: it runs through a
    wrapper (ASMGEN_LLVM_MC) that counts its starts."""
    from asmgen.build.llvm_mc import find_llvm_mc

    with tempfile.TemporaryDirectory(prefix="asmgen-bench-mc-") as scratch:
        folder = Path(scratch)
        wrapper, starts = folder / "llvm-mc", folder / "starts"
        wrapper.write_text(f'#!/bin/sh\necho >> "{starts}"\nexec "{find_llvm_mc()}" "$@"\n')
        wrapper.chmod(0o755)
        env = {**os.environ, "ASMGEN_LLVM_MC": str(wrapper), "ASMGEN_CACHE_DIR": str(folder / "c")}
        argv = [*ASMGEN, "generate", "--out", str(folder / "out")]
        subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, check=True)
        return len(starts.read_text().splitlines())


if __name__ == "__main__":
    main()
