"""The llvm-mc / clang-format result cache: a pure speed-up, never a change in output."""

from __future__ import annotations

import json
import marshal

import pytest

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


def test_compiled_templates_come_from_the_cache_and_a_bad_entry_is_a_miss(tmp_path, monkeypatch):
    """Jinja's code for each template is kept (render.py); a process with an
    empty in-memory cache then compiles nothing, and an entry that is not
    code is compiled again, with the same outputs every time."""
    from asmgen.build import render

    monkeypatch.setenv("ASMGEN_CACHE_DIR", str(tmp_path))
    items = select(spec_files(), ["X86_64_SysV"])
    monkeypatch.setattr(render, "_COMPILED", {})
    cold = render_outputs(build_all(items))
    codes = sorted(tmp_path.rglob("*.code"))
    assert len(codes) == 3  # resolver, trampoline, stub

    real = render._checked_code
    monkeypatch.setattr(render, "_COMPILED", {})
    monkeypatch.setattr(render, "_checked_code", lambda *a: pytest.fail("compiled again"))
    assert render_outputs(build_all(items)) == cold
    monkeypatch.setattr(render, "_checked_code", real)

    for garbage in (b"", b"\x00not marshal", marshal.dumps(42)):
        for path in codes:
            path.write_bytes(garbage)
        monkeypatch.setattr(render, "_COMPILED", {})
        assert render_outputs(build_all(items)) == cold
        assert all(p.read_bytes() != garbage for p in codes)  # stored afresh


def test_an_area_keeps_its_most_recently_used_entries(tmp_path, monkeypatch):
    """Keys that name scratch folders (build results, compiled templates) add
    entries without end: `prune` keeps the newest, and a hit counts as a use."""
    import os

    monkeypatch.setenv("ASMGEN_CACHE_DIR", str(tmp_path))
    for i in range(8):
        toolcache.store([str(i)], {"i": i}, "area")
        os.utime(toolcache.entry_path([str(i)], area="area"), ns=(i * 10**9, i * 10**9))
    assert toolcache.load(["0"], "area") == {"i": 0}  # used now: the most recent
    toolcache.prune("area", 3)
    kept = [i for i in range(8) if toolcache.load([str(i)], "area") is not None]
    assert kept == [0, 6, 7]
    assert [p.name for p in tmp_path.iterdir()] == ["area"]
