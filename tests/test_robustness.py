"""Outputs survive failures and races, and do not depend on the environment.

Atomic writes (a run that fails while it writes leaves the previous outputs),
determinism (hash seed, locale, working folder), keystone's process-wide
state (assembly order), and two concurrent `asmgen generate` runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from scratch_tree import generate_args, tree_options

import asmgen.emit.atomic
import asmgen.emit.outputs
from asmgen.build.pipeline import build
from asmgen.cli import main
from asmgen.emit.outputs import render_outputs
from asmgen.errors import AsmgenError
from asmgen.spec.files import select, spec_files

ROOT = Path(__file__).resolve().parent.parent
NAMES = ["orc_resolvers.h", "orc_resolvers.py", "orc_resolvers_llvm.h", "tables.json"]


def _files(folder: Path) -> list[Path]:
    """Every output file, generated/reentry/ included (not Python's bytecode
    cache, which importing the checked-in module may write beside it)."""
    found = folder.rglob("*")
    return sorted(p for p in found if p.is_file() and "__pycache__" not in p.parts)


def _contents(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in _files(folder)}


def _tables(contents: dict[str, bytes]) -> list[str]:
    """The table files (generated/reentry/ aside)."""
    return sorted(name for name in contents if "/" not in name)


def _subprocess(tree: Path, argv: list[str], cwd: Path, **env: str):
    environ = {k: v for k, v in os.environ.items() if k not in ("LC_ALL", "LANG")}
    environ.update(env, PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [sys.executable, "-m", "asmgen", *argv],
        cwd=cwd,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def previous(tree: Path) -> dict[str, bytes]:
    """generated/ holds an older run's outputs (the SysV table alone)."""
    assert main(generate_args(tree, "X86_64_SysV")) == 0
    return _contents(tree / "generated")


# -- atomic writes --------------------------------------------------------------


def test_failed_rename_leaves_previous_outputs(tree, previous, monkeypatch, capsys):
    """The second rename fails: the first file, already replaced, is put back."""
    real = os.replace
    calls = []

    def flaky(src, dst):
        if Path(dst).parent != tree / "generated":  # the tool cache's writes
            return real(src, dst)
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(asmgen.emit.atomic.os, "replace", flaky)
    assert main(generate_args(tree)) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("error: cannot write output: No space left on device"), err
    assert len(calls) >= 2  # it did get past the first rename
    assert _contents(tree / "generated") == previous  # also: no temp file left


def test_interrupt_while_writing_leaves_previous_outputs(tree, previous, monkeypatch):
    real = asmgen.emit.atomic._stage
    staged = []

    def interrupted(path, data, mode):
        if staged:  # Ctrl-C while the second file is being written
            raise KeyboardInterrupt
        staged.append(real(path, data, mode))
        return staged[-1]

    monkeypatch.setattr(asmgen.emit.atomic, "_stage", interrupted)
    assert main(generate_args(tree)) == 130
    assert _contents(tree / "generated") == previous
    assert not any(p.exists() for p in staged)  # the temp files are gone


def test_failing_emitter_writes_nothing(tree, previous, monkeypatch, capsys):
    def broken(tables):
        raise AsmgenError("emitter failed", "emit_cpp")

    monkeypatch.setitem(asmgen.emit.outputs.OUTPUTS, "orc_resolvers.h", broken)
    monkeypatch.setenv("ASMGEN_CACHE", "0")  # the build cache cannot see a patched emitter
    assert main(generate_args(tree)) == 2
    assert "emitter failed" in capsys.readouterr().err
    assert _contents(tree / "generated") == previous


def test_read_only_output_is_refused_and_nothing_is_written(tree, previous, capsys):
    header = tree / "generated" / "orc_resolvers.h"
    header.chmod(0o444)
    before = {p.name: (p.read_bytes(), p.stat().st_mode) for p in _files(tree / "generated")}
    assert main(generate_args(tree)) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"{header}: error: output is read-only (mode 444)"), err
    after = {p.name: (p.read_bytes(), p.stat().st_mode) for p in _files(tree / "generated")}
    assert after == before


def test_replaced_outputs_keep_their_mode(tree, previous):
    module = tree / "generated" / "orc_resolvers.py"
    module.chmod(0o640)
    assert main(generate_args(tree)) == 0
    assert module.read_bytes() != previous["orc_resolvers.py"]  # it was replaced
    assert stat.S_IMODE(module.stat().st_mode) == 0o640
    assert stat.S_IMODE((tree / "generated" / "tables.json").stat().st_mode) == 0o644


def test_successful_run_replaces_every_file(tree, previous):
    assert main(generate_args(tree)) == 0
    fresh = _contents(tree / "generated")
    assert _tables(fresh) == NAMES
    assert all(fresh[name] != previous[name] for name in NAMES)
    assert fresh == _contents(ROOT / "generated")


# -- determinism ----------------------------------------------------------------


def test_outputs_do_not_depend_on_hash_seed_locale_or_folder(tree, tmp_path_factory):
    other = tmp_path_factory.mktemp("elsewhere") / "checkout"
    for name in ("abi_specs", "templates"):
        shutil.copytree(tree / name, other / name)
    (other / "generated").mkdir()
    runs = [
        _subprocess(tree, generate_args(tree), cwd=tree, PYTHONHASHSEED="1", LC_ALL="C"),
        _subprocess(other, generate_args(other), cwd=ROOT, PYTHONHASHSEED="4242", LC_ALL="C.UTF-8"),
    ]
    for run in runs:
        _, err = run.communicate(timeout=120)
        assert run.returncode == 0, err
    first, second = _contents(tree / "generated"), _contents(other / "generated")
    assert _tables(first) == NAMES
    assert first == second
    # ... and equal to the checked-in files, made by yet another process.
    assert first == _contents(ROOT / "generated")


# -- keystone's process-wide state ----------------------------------------------

# Each ABI is built in a process of its own that assembles nothing else: a
# child forked from one that has read the specs and imported asmgen but
# assembled nothing (keystone runs in a child process, which a fork starts
# anew: build/keystone_process.py).  Two at a time, so that keystone's time
# limit is not spent waiting for a busy machine.
_ORDER_SCRIPT = """
import json, os, sys, traceback
from pathlib import Path
from asmgen.build.pipeline import build
from asmgen.spec.files import select, spec_files
specs = Path(sys.argv[1])
items = [i for i in spec_files(specs) if i.spec.backend == "keystone"]
pending, running, codes = sys.argv[2:], {}, {}
while pending or running:
    while pending and len(running) < 2:
        name = pending.pop(0)
        r, w = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            try:
                code = build(select(items, [name])[0], specs.parent / "templates").code.hex()
                os.write(w, code.encode())
            except BaseException:
                traceback.print_exc()
                sys.exit(1)
            sys.exit(0)
        os.close(w)
        running[pid] = (name, r)
    pid, status = os.wait()
    name, r = running.pop(pid)
    with os.fdopen(r) as pipe:
        codes[name] = pipe.read()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{name}: its process failed")
print(json.dumps(codes))
"""


def _alone_in_fresh_processes(abis: list[str]) -> dict[str, bytes]:
    """Each ABI's code from a process that assembles nothing else."""
    environ = dict(os.environ, PYTHONPATH=str(ROOT))
    run = subprocess.run(
        [sys.executable, "-c", _ORDER_SCRIPT, str(ROOT / "abi_specs"), *abis],
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    codes = json.loads(run.stdout)
    assert sorted(codes) == sorted(abis)
    return {abi: bytes.fromhex(code) for abi, code in codes.items()}


def test_keystone_tables_do_not_depend_on_assembly_order():
    """keystone's radix setting leaks from one engine into later ones: every
    order, and a process that assembles one ABI alone, give the same bytes."""
    items = [i for i in spec_files(ROOT / "abi_specs") if i.spec.backend == "keystone"]
    assert {i.spec.arch for i in items} >= {"x86_64", "i386", "aarch64", "mips32", "mips64"}
    shuffled = items[:]
    random.Random(9).shuffle(shuffled)
    orders = [items, items[::-1], shuffled]
    results = [{i.spec.abi: build(i).code for i in order} for order in orders]
    assert results[0] == results[1] == results[2]
    assert _alone_in_fresh_processes([i.spec.abi for i in items]) == results[0]


# -- concurrency ----------------------------------------------------------------


def test_concurrent_generate_runs_leave_one_complete_set(tree):
    """Two runs that write different tables race on one folder; the files
    end up as one run's complete set, never a mix or a torn file."""
    items = spec_files(tree / "abi_specs")
    expected = [
        render_outputs([build(i, tree / "templates") for i in items]),
        render_outputs([build(i, tree / "templates") for i in select(items, ["X86_64_SysV"])]),
    ]
    expected = [{k: v.encode() for k, v in sorted(e.items())} for e in expected]
    assert expected[0] != expected[1]
    for _ in range(2):
        runs = [
            _subprocess(tree, generate_args(tree), cwd=tree),
            _subprocess(tree, generate_args(tree, "X86_64_SysV"), cwd=tree),
        ]
        for run in runs:
            _, err = run.communicate(timeout=120)
            assert run.returncode == 0, err
        assert _contents(tree / "generated") in expected


def test_a_run_leaves_no_other_runs_reentry_files(tree):
    """generated/reentry/ holds one run's sources: after all tables, a run of
    one table leaves its own source there and removes the others (an
    editor's hidden file stays)."""
    out = tree / "generated"
    assert main(generate_args(tree)) == 0
    assert len(list((out / "reentry").glob("*.S"))) > 1
    (out / "reentry" / ".notes.swp").write_text("an editor's\n")
    assert main(generate_args(tree, "X86_64_SysV")) == 0
    left = sorted(p.name for p in (out / "reentry").iterdir())
    assert left == [".notes.swp", "X86_64_SysV.S"]


def test_check_finds_a_reentry_source_no_spec_makes(tree, capsys):
    """A removed spec's source left in generated/reentry/ is stale; generate removes it."""
    out = tree / "generated"
    assert main(generate_args(tree)) == 0
    left = out / "reentry" / "Removed_ABI.S"
    left.write_text("a removed spec's\n")
    check = ["check", *tree_options(tree), "--out", str(out)]
    capsys.readouterr()
    assert main(check) == 1
    assert f"{left}: not an output any more" in capsys.readouterr().out
    assert main(generate_args(tree)) == 0
    assert not left.exists()
    assert main(check) == 0


def _blocked_on(folder: Path, run: subprocess.Popen, timeout: float = 120.0) -> bool:
    """Wait until `run` waits for a flock on `folder` (/proc/locks lists a
    blocked request as `->`); False if it ends or the time runs out first."""
    inode = f":{folder.stat().st_ino} "
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and run.poll() is None:
        for line in Path("/proc/locks").read_text().splitlines():
            fields = line.split()
            if {"->", "FLOCK", str(run.pid)} <= set(fields) and inode in f"{line} ":
                return True
        time.sleep(0.05)
    return False


def test_generate_waits_for_the_output_folder_lock(tree, previous):
    """A run holding the folder's lock keeps another run from writing until it lets go."""
    out = tree / "generated"
    with asmgen.emit.atomic.locked(out):
        run = _subprocess(tree, generate_args(tree), cwd=tree)
        # The kernel lists the run as blocked on the folder's lock once it
        # has built everything and wants to write.
        assert _blocked_on(out, run), run.communicate(timeout=120)
        with contextlib.suppress(subprocess.TimeoutExpired):
            run.wait(timeout=0.5)
        assert run.returncode is None  # still waiting for the lock
        assert _contents(out) == previous
    _, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    assert _contents(out) == _contents(ROOT / "generated")
