"""The tests' g++ cache (tests/gxx_cache.py) answers as g++ does: a unit that
compiled is a hit only while its preprocessed text, flags and compiler are the
same; an edit to an included header, or a flag that changes what the unit
means, is a miss and compiles again; a failure is never kept."""

from __future__ import annotations

import subprocess
from pathlib import Path

import gxx_cache
import pytest


@pytest.fixture
def cache(tmp_path: Path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("ASMGEN_TEST_GXX_CACHE", str(folder))
    return folder


def _unit(folder: Path, header: str) -> tuple[Path, list[str]]:
    (folder / "inc").mkdir(parents=True, exist_ok=True)
    (folder / "inc" / "h.h").write_text(header)
    source = folder / "u.cpp"
    source.write_text(
        '#include "h.h"\n#include <cstdio>\n'
        "#ifndef WANT\n#define WANT 1\n#endif\n"
        'int main() { printf("%d\\n", value() + WANT); return 0; }\n'
    )
    return source, ["-std=c++17", "-I", str(folder / "inc")]


def test_an_edited_header_is_a_miss(cache, tmp_path):
    source, flags = _unit(tmp_path / "a", "inline int value() { return 41; }\n")
    assert gxx_cache.syntax_check(flags, source, scratch=[tmp_path / "a"]) == ""
    assert len(list(cache.glob("*.ok"))) == 1
    # The same files in another scratch folder: the same unit, a hit.
    again, flags_b = _unit(tmp_path / "b", "inline int value() { return 41; }\n")
    assert gxx_cache.syntax_check(flags_b, again, scratch=[tmp_path / "b"]) == ""
    assert len(list(cache.glob("*.ok"))) == 1
    # The header the unit includes, broken: compiled again, and refused.
    (tmp_path / "a" / "inc" / "h.h").write_text("inline int value() { return nope; }\n")
    errors = gxx_cache.syntax_check(flags, source, scratch=[tmp_path / "a"])
    assert "nope" in errors
    assert len(list(cache.glob("*.ok"))) == 1  # the failure is not kept
    assert "nope" in gxx_cache.syntax_check(flags, source, scratch=[tmp_path / "a"])


def test_executables_follow_their_headers_and_flags(cache, tmp_path):
    source, flags = _unit(tmp_path, "inline int value() { return 41; }\n")

    def run(extra: list[str]) -> str:
        exe, errors = gxx_cache.executable(
            "u", [*flags, *extra], [source], scratch=[tmp_path], out=tmp_path
        )
        assert errors == ""
        assert cache in exe.parents
        return subprocess.run([exe], capture_output=True, text=True, check=True).stdout

    assert run([]) == "42\n"
    assert run([]) == "42\n"  # a hit
    assert run(["-DWANT=2"]) == "43\n"  # a flag that changes the unit
    (tmp_path / "inc" / "h.h").write_text("inline int value() { return 7; }\n")
    assert run([]) == "8\n"
    assert len(list(cache.iterdir())) == 3


def test_without_a_cache_every_compile_runs(tmp_path, monkeypatch):
    monkeypatch.delenv("ASMGEN_TEST_GXX_CACHE")
    source, flags = _unit(tmp_path, "inline int value() { return 1; }\n")
    exe, errors = gxx_cache.executable("u", flags, [source], out=tmp_path / "out")
    assert (errors, exe) == ("", tmp_path / "out" / "u")
    assert gxx_cache.syntax_check(flags, source) == ""
