"""How long `asmgen verify` takes, per ABI and in total (target: <= 2 s for all).

Verifies the checked-in generated tables, as `make test` does, and prints
one line per ABI plus the total and the whole command's wall time.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

from asmgen.spec.files import spec_files
from asmgen.verify import subjects_from_generated, verify

ROOT = Path(__file__).resolve().parent.parent

TARGET_S = 2.0
ROUNDS = 5  # the machine is shared: report the median of a few rounds


def main() -> int:
    start = time.perf_counter()
    subjects = subjects_from_generated(spec_files(), ROOT / "generated" / "orc_resolvers.py")
    first = verify(subjects)
    wall = time.perf_counter() - start
    rounds = [first] + [verify(subjects) for _ in range(ROUNDS - 1)]
    print(f"asmgen verify, median of {ROUNDS} rounds")
    for i, report in enumerate(first):
        ran = ["static"]
        if report.emulated:
            ran.insert(0, "unicorn")
            if report.outcomes["native"].outcome != "n/a":
                ran.insert(1, "native")
        ms = statistics.median(r[i].seconds for r in rounds) * 1000
        print(f"{report.abi:28} {ms:8.1f} ms  ({'+'.join(ran)})")
    total = statistics.median(sum(r.seconds for r in reports) for reports in rounds)
    print(f"{'all ABIs':28} {total * 1000:8.1f} ms")
    print(f"{'first run, with loading':28} {wall * 1000:8.1f} ms")
    verdict = "within" if wall <= TARGET_S else "OVER"
    print(f"target {TARGET_S:.1f} s: {verdict}")
    return 0 if wall <= TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
