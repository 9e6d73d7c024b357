"""The build cache (asmgen/build/buildcache.py): the same bytes cold and warm,
never a stale result, and a bad entry is only a miss."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from asmgen.build import buildcache, toolcache
from asmgen.resources import PACKAGE

ROOT = Path(__file__).resolve().parent.parent
ONE = "X86_64_SysV"  # a keystone ABI: quick to build


def run(args: list[str], cwd: Path, cache: Path, **env: str) -> subprocess.CompletedProcess:
    environ = {**os.environ, "ASMGEN_CACHE_DIR": str(cache), **env}
    return subprocess.run(
        [sys.executable, "-m", "asmgen", *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        check=False,
    )


def files(folder: Path) -> dict[str, bytes]:
    found = (p for p in folder.rglob("*") if p.is_file())
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in found}


def build_entries(cache: Path) -> list[Path]:
    """The cache's build entries (beside the tool cache's)."""
    found = (p for p in cache.rglob("*.json") if p.is_file())
    return [p for p in found if buildcache.texts(json.loads(p.read_text()))]


def test_cold_and_warm_runs_write_the_same_bytes(tmp_path):
    """Every output and the explain listing, from an empty cache and from a
    warm one, byte for byte the checked-in files; the warm `check` loads none
    of the build's modules, so the cache really answered."""
    cache = tmp_path / "cache"
    cold, warm = tmp_path / "cold", tmp_path / "warm"
    first = run(["generate", "--out", str(cold)], ROOT, cache)
    assert first.returncode == 0, first.stderr
    assert build_entries(cache)
    second = run(["generate", "--out", str(warm)], ROOT, cache)
    assert second.returncode == 0, second.stderr
    checked_in = {name: (ROOT / "generated" / name).read_bytes() for name in files(cold)}
    assert files(cold) == files(warm) == checked_in

    explained = [run(["explain", "X86_64_Win32"], ROOT, cache).stdout for _ in range(2)]
    uncached = run(["explain", "X86_64_Win32"], ROOT, cache, ASMGEN_CACHE="0").stdout
    assert explained[0] == explained[1] == uncached
    assert "X86_64_Win32" in uncached

    probe = (
        "import sys; from asmgen.cli import main; code = main(['check']); "
        "heavy = [m for m in ('jinja2', 'yaml', 'pydantic', 'keystone', 'tree_sitter', "
        "'asmgen.spec.schema', 'asmgen.review.cli') if m in sys.modules]; print(code, heavy)"
    )
    warm_check = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env={**os.environ, "ASMGEN_CACHE_DIR": str(cache)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert warm_check.stdout.splitlines()[-1] == "0 []"


@pytest.fixture
def project(tree: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A scratch project whose ONE table is built once into a fresh cache."""
    cache = tmp_path / "cache"
    done = run(["generate", ONE], tree, cache)
    assert done.returncode == 0, done.stderr
    assert build_entries(cache)
    return tree, cache


@pytest.mark.parametrize(
    "edit",
    [
        ("templates/x86_64/resolver.s.j2", "{% if %}\n"),
        ("abi_specs/x86_64_sysv.yaml", "abi: [\n"),
        ("abi_specs/conventions/sysv_amd64.yaml", "callee_saved: {{\n"),
    ],
    ids=["template", "spec", "convention"],
)
def test_a_changed_input_is_never_served_from_the_cache(project, edit):
    """A template, spec or convention edited after a cached build is read
    again: a broken one fails as it would without the cache."""
    tree, cache = project
    name, broken = edit
    path = tree / name
    assert path.is_file(), name
    path.write_text(path.read_text() + broken)
    for _ in range(2):  # a failed build is not cached either
        again = run(["generate", ONE], tree, cache)
        assert again.returncode == 2
        assert again.stderr.count("error:") == 1
        assert name in again.stderr


def test_a_harmless_edit_rebuilds_with_the_same_bytes(project):
    tree, cache = project
    before = files(tree / "generated")
    spec = tree / "abi_specs" / "x86_64_sysv.yaml"
    spec.write_text(spec.read_text() + "# a comment\n")
    generate = run(["generate", ONE], tree, cache)
    assert generate.returncode == 0, generate.stderr
    assert files(tree / "generated") == before
    assert len(build_entries(cache)) == 2  # a new key, built and stored


def test_fingerprint_covers_source_tools_and_folders(tmp_path, monkeypatch):
    specs, templates = ROOT / "abi_specs", ROOT / "templates"
    base = buildcache.fingerprint(specs, templates, ["outputs"])
    assert base == buildcache.fingerprint(specs, templates, ["outputs"])
    assert base != buildcache.fingerprint(specs, templates, ["outputs", ONE])
    # asmgen's own source.
    copy = tmp_path / "asmgen"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(buildcache, "PACKAGE", copy)
    assert buildcache.fingerprint(specs, templates, ["outputs"]) == base
    emitter = copy / "emit" / "cpp_rows.py"
    emitter.write_text(emitter.read_text() + "\n")
    assert buildcache.fingerprint(specs, templates, ["outputs"]) != base
    monkeypatch.undo()
    # The llvm-mc asmgen would run.
    fake = tmp_path / "bin" / "llvm-mc"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("ASMGEN_LLVM_MC", str(fake))
    assert buildcache.fingerprint(specs, templates, ["outputs"]) != base
    monkeypatch.delenv("ASMGEN_LLVM_MC")
    # A folder holding abi_specs/ above the templates changes the headers' paths.
    assert buildcache.fingerprint(specs, templates, ["outputs"]) == base
    moved = tmp_path / "t"
    shutil.copytree(templates, moved / "templates")
    outside = buildcache.fingerprint(specs, moved / "templates", ["outputs"])
    (moved / "abi_specs").mkdir()
    assert buildcache.fingerprint(specs, moved / "templates", ["outputs"]) != outside
    # An unreadable input: no key, the build runs uncached.
    odd = tmp_path / "specs"
    odd.mkdir()
    (odd / "a.yaml").write_text("abi: A\n")
    (odd / "a.yaml").chmod(0)
    if not os.access(odd / "a.yaml", os.R_OK):  # root reads it anyway
        assert buildcache.fingerprint(odd, templates, ["outputs"]) is None


BAD_TEXTS = json.dumps({"format": buildcache.FORMAT, "texts": {"orc_resolvers.py": 1}})


def test_a_corrupt_entry_is_a_miss(project):
    """Garbage, JSON of another shape, texts that are no texts, a folder: each
    is rebuilt (and stored again), with no traceback."""
    tree, cache = project
    before = files(tree / "generated")
    for garbage in ["{not json", "[]", BAD_TEXTS, "dir"]:
        (entry,) = build_entries(cache)
        if garbage == "dir":
            entry.unlink()
            entry.mkdir()
        else:
            entry.write_text(garbage)
        shutil.rmtree(tree / "generated")
        again = run(["generate", ONE], tree, cache)
        assert again.returncode == 0, again.stderr
        assert "Traceback" not in again.stderr
        assert files(tree / "generated") == before, garbage
        if garbage == "dir":
            assert entry.is_dir() and not build_entries(cache)  # unwritable: not stored


def test_disabled_cache_stores_nothing(tree, tmp_path):
    cache = tmp_path / "cache"
    done = run(["generate", ONE], tree, cache, ASMGEN_CACHE="0")
    assert done.returncode == 0, done.stderr
    assert not cache.exists()
    assert toolcache.entry_path(["x"]) is not None  # this process's own cache is on


@pytest.mark.parametrize("argv", [["-h"], ["--help", "generate"]])
def test_help_lists_every_command_though_commands_import_lazily(argv, capsys):
    from asmgen.cli import COMMANDS, main

    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 0
    listed = capsys.readouterr().out.split("{", 1)[1].split("}", 1)[0]
    assert listed.split(",") == list(COMMANDS)
