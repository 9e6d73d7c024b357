"""The tests' way into the native vector harness (asmgen.verify.vector_harness):
a run of one ABI's table in a child process, and llvm-mc assembly for x86-64.

Run as a script (`python tests/native_vectors.py ABI`) it prints the run's
result as JSON; `run_isolated` starts it, so a crash stays in the child.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from asmgen.errors import AsmgenError
from asmgen.verify import vector_harness
from asmgen.verify.vector_harness import Survival, survival


def assemble_harness(
    source: str, triple: str = "x86_64", mattr: str | None = None
) -> tuple[bytes, dict[str, int]]:
    """llvm-mc's .text bytes and symbols for `source` (x86-64 unless `triple` says)."""
    return vector_harness.assemble_harness(source, triple, mattr)


def run(table) -> dict:
    """Run `table` natively in this process; return what survived."""
    return vector_harness.run_code(
        table.spec.arch_info,
        lambda fn, ctx: table.instantiate({"ReentryFnAddr": fn, "ReentryCtxAddr": ctx}),
        table,
    )


def run_isolated(abi: str, timeout: float = 60) -> Survival:
    """Run this file as a script for `abi` in a child process (a crash stays there)."""
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), abi],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=Path(__file__).resolve().parents[1],
        check=False,
    )
    if proc.returncode != 0:
        raise AsmgenError(
            f"native run of {abi} failed (exit {proc.returncode}): "
            f"{(proc.stderr.strip().splitlines() or ['no message'])[-1]}"
        )
    return survival(json.loads(proc.stdout))


def main(argv: list[str]) -> int:
    from asmgen.build.pipeline import build
    from asmgen.spec.files import select, spec_files

    try:
        (item,) = select(spec_files(), argv[:1])
        print(json.dumps(run(build(item))))
    except AsmgenError as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
