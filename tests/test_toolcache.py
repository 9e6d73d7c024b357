"""The llvm-mc / clang-format result cache: a pure speed-up, never a change in output."""

from __future__ import annotations

import json

from asmgen.build import toolcache
from asmgen.build.pipeline import build_all
from asmgen.emit.outputs import render_outputs
from asmgen.spec.files import select, spec_files


def test_hit_miss_and_corrupt_entries(tmp_path, monkeypatch):
    monkeypatch.setenv("ASMGEN_CACHE_DIR", str(tmp_path))
    calls = []

    def compute():
        calls.append(1)
        return {"value": len(calls)}

    assert toolcache.cached(["tool", "input"], compute) == {"value": 1}
    assert toolcache.cached(["tool", "input"], compute) == {"value": 1}  # hit
    assert toolcache.cached(["tool", "other"], compute) == {"value": 2}  # other key
    (entry,) = [p for p in tmp_path.rglob("*.json") if json.loads(p.read_text())["value"] == 1]
    entry.write_text("{not json")
    assert toolcache.cached(["tool", "input"], compute) == {"value": 3}  # corrupt: recomputed
    assert toolcache.cached(["tool", "input"], compute) == {"value": 3}
    assert not list(tmp_path.rglob("*.tmp"))


def test_disabled(tmp_path, monkeypatch):
    monkeypatch.setenv("ASMGEN_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("ASMGEN_CACHE", "0")
    calls = []
    for _ in range(2):
        toolcache.cached(["k"], lambda: calls.append(1) or {})
    assert len(calls) == 2
    assert not list(tmp_path.iterdir())


def test_outputs_identical_with_cold_warm_and_no_cache(tmp_path, monkeypatch):
    items = select(spec_files(), ["Riscv64", "LoongArch64", "X86_64_SysV"])
    monkeypatch.setenv("ASMGEN_CACHE_DIR", str(tmp_path / "cache"))
    cold = render_outputs(build_all(items))
    assert list((tmp_path / "cache").rglob("*.json")), "llvm-mc and clang-format runs are cached"
    warm = render_outputs(build_all(items))
    monkeypatch.setenv("ASMGEN_CACHE", "0")
    uncached = render_outputs(build_all(items))
    assert cold == warm == uncached
