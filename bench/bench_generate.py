"""Time `asmgen generate` against a bare keystone loop over the same sources.

Prints the warm pipeline time (build every table in memory, emit every file,
compare with what is on disk), the time keystone alone needs to assemble the
same rendered sources once each, their ratio, and a full `make generate` run.
Figures only: nothing here passes or fails.
"""

from __future__ import annotations

import statistics
import subprocess
import time
from pathlib import Path

from asmgen.build.frame import compute_frame
from asmgen.build.keystone_backend import keystone_engine
from asmgen.build.layout import build_table
from asmgen.build.patchkinds import KINDS
from asmgen.build.pipeline import build_all, template_for
from asmgen.build.render import render
from asmgen.build.source import parse_lines
from asmgen.emit.outputs import render_outputs, stale_outputs
from asmgen.spec.files import spec_files

ROOT = Path(__file__).resolve().parent.parent

ROUNDS = 20


def best(fn, rounds: int = ROUNDS) -> float:
    fn()  # warm
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    items = spec_files()
    keystone_items = [i for i in items if i.spec.backend == "keystone"]

    def pipeline() -> None:
        tables = build_all(items)
        stale_outputs(render_outputs(tables), ROOT / "generated")

    def build_only() -> None:
        for item in items:
            build_table(item.spec, item.path, template_for(item))

    sources = []
    for item in keystone_items:
        spec = item.spec

        def placeholder(index, use, spec=spec):
            return KINDS[use.kind].encode(spec.placeholders.get(use.patch, 0))

        rendered = render(spec, template_for(item), compute_frame(spec), placeholder)
        text = "\n".join(
            "\n".join([*(f"{label}:" for label in line.labels), line.statement or ""])
            for line in parse_lines(rendered, spec.arch_info)
        )
        sources.append((keystone_engine(spec), text))

    def bare_keystone() -> None:
        for ks, text in sources:
            ks.asm(text, 0)

    t_pipeline = best(pipeline)
    t_build = best(build_only)
    t_bare = best(bare_keystone)
    print(f"specs: {len(items)} ({len(keystone_items)} assembled by keystone)")
    print(f"pipeline, warm (build + emit + compare): {t_pipeline * 1e3:8.2f} ms")
    print(f"  of which building the tables:          {t_build * 1e3:8.2f} ms")
    print(f"bare keystone loop over the sources:     {t_bare * 1e3:8.2f} ms")
    print(f"ratio pipeline / bare keystone:          {t_pipeline / t_bare:8.1f}x")
    print(f"ratio table building / bare keystone:    {t_build / t_bare:8.1f}x")

    runs = []
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run(["make", "-s", "generate"], cwd=ROOT, check=True, capture_output=True)
        runs.append(time.perf_counter() - start)
    print(f"`make generate`, warm, wall clock:       {min(runs) * 1e3:8.2f} ms (best of 3)")


if __name__ == "__main__":
    main()
