"""What a cold `asmgen generate` cannot go below, part by part, beside what it takes.

A cold generate (empty cache) must at least import the pipeline, compile
each template the specs use, run clang-format on the finished C++ headers
(after every table exists), and wait for one llvm-mc run per gathered round
of assemblies (build/gather.py).  Each part is timed alone here, as the
median of `--rounds` runs, next to the whole cold generate; nothing here
passes or fails.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMPORTS = "import asmgen.cli, asmgen.build.pipeline, asmgen.emit.outputs, asmgen.spec.files"
COMPILE = """
import os, sys, tempfile, time
os.environ["ASMGEN_CACHE_DIR"] = tempfile.mkdtemp()
from asmgen.build import render
from asmgen.resources import SPECS_DIR, TEMPLATES_DIR
from asmgen.spec.files import spec_files
needed = {
    TEMPLATES_DIR / item.spec.arch / name
    for item in spec_files(SPECS_DIR)
    for name in (item.spec.template, "trampoline.s.j2", "stub.s.j2")
}
start = time.perf_counter()
for path in sorted(needed):
    render._compile(path)
print(len(needed), time.perf_counter() - start)
"""


def seconds(argv: list[str], **kwargs) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, check=True, capture_output=True, **kwargs)
    return time.perf_counter() - start


def clang_format_both() -> float:
    from asmgen.emit.clangformat import clang_format_binary
    from asmgen.emit.outputs import CLANG_FORMATTED

    start = time.perf_counter()
    runs = []
    for name in CLANG_FORMATTED:
        with (ROOT / "generated" / name).open() as text:
            argv = [clang_format_binary(), "--style=LLVM", f"--assume-filename={name}"]
            runs.append(subprocess.Popen(argv, stdin=text, stdout=subprocess.DEVNULL))
    for run in runs:
        run.wait()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    rounds = parser.parse_args().rounds
    from asmgen.build.llvm_mc import find_llvm_mc

    parts: dict[str, list[float]] = {}
    templates = 0
    for _ in range(rounds):
        parts.setdefault("imports (python -c ...)", []).append(
            seconds([sys.executable, "-c", IMPORTS])
        )
        found = subprocess.run(
            [sys.executable, "-c", COMPILE], cwd=ROOT, check=True, capture_output=True, text=True
        ).stdout.split()
        templates = int(found[0])
        parts.setdefault("template compiles", []).append(float(found[1]))
        parts.setdefault("clang-format, both headers", []).append(clang_format_both())
        mc = [find_llvm_mc(), "-triple=riscv64", "-filetype=obj", "-o", os.devnull]
        parts.setdefault("one llvm-mc run", []).append(seconds(mc, input=b"nop\n"))
        with tempfile.TemporaryDirectory(prefix="asmgen-bench-cold-") as scratch:
            env = {**os.environ, "ASMGEN_CACHE_DIR": str(Path(scratch) / "cache")}
            argv = [sys.executable, "-m", "asmgen", "generate", "--out", str(Path(scratch) / "out")]
            parts.setdefault("cold generate (whole)", []).append(seconds(argv, env=env))
    print(f"{rounds} rounds, load average (1 min) {os.getloadavg()[0]:.2f}; medians")
    for name, values in parts.items():
        label = f"{name} ({templates})" if name == "template compiles" else name
        print(f"{label:32} {statistics.median(values):7.3f}s")


if __name__ == "__main__":
    main()
