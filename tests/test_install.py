"""`pip install .` works outside the repo: templates and specs ship in the wheel."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_carries_templates_and_specs_and_runs_outside_the_repo(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", tmp_path, ROOT],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("asmgen-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        archive.extractall(tmp_path / "site")
    assert "asmgen/templates/x86_64/resolver.s.j2" in names
    assert "asmgen/abi_specs/x86_64_win64.yaml" in names
    # The convention files, and the compiled harness's sources and scaffolds.
    assert "asmgen/abi_specs/conventions/ms_x64.yaml" in names
    assert "asmgen/verify/compiled/c/harness.c" in names
    assert "asmgen/templates/mips32/harness_scaffold.S.j2" in names

    # Run from an unrelated folder with only the unpacked wheel on the path.
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {"PYTHONPATH": str(tmp_path / "site"), "PATH": "/usr/bin:/bin"}
    where = subprocess.run(
        [sys.executable, "-c", "import asmgen.resources as r; print(r.SPECS_DIR)"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.strip() == str(tmp_path / "site" / "asmgen" / "abi_specs")
    result = subprocess.run(
        [sys.executable, "-m", "asmgen", "generate", "--out", str(work / "out")],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    fresh = (work / "out" / "tables.json").read_text()
    assert '"hex": "554889e5' in fresh
    assert str(tmp_path / "site" / "asmgen" / "abi_specs") not in fresh  # paths stay relative
