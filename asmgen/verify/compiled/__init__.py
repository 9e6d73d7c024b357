"""asmgen verify against compiled code: the `native`, `wine` and `qemu-*` runs.

For each target (an arch's `HarnessTarget`: a convention, a byte order, a
real compiler and the way its programs run here), one harness process runs
every table of that target: first the convention file's facts against
compiled probes (`facts.py`), then each table's lazy-call chain through
compiled re-entry and landing functions (`chains.py`).  The results are the
same checks unicorn runs, with the target's method, plus `convention`.  A
target that cannot run here (no compiler, no runner, another host) gives
`n/a` with the reason.  See docs/verify.md.
"""

from asmgen.verify.compiled.runner import COMPILED_CHECKS, Compiled, TargetRun, run_compiled

__all__ = ["COMPILED_CHECKS", "Compiled", "TargetRun", "run_compiled"]
