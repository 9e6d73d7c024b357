"""The installed package: asmgen's wheel in a fresh venv, run from folders that
are not the repository.  A command finds its project (a folder holding
abi_specs/) from the current folder up; without one it reads the bundled
specs and templates but writes nothing unless told where, and never into
its install location.

The wheel is built once per run and installed with `pip --no-index --no-deps`;
the fresh venv reaches the pinned dependencies through a .pth line naming the
project venv's site-packages (which does not load asmgen's editable install),
and clang-format's command through a link.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
import shared

ROOT = Path(__file__).resolve().parent.parent
LLVM_TREE = ROOT / "tests" / "fixtures" / "llvm_tree"
# A project of its own: two specs (one keystone, one llvm-mc arch) and no
# templates folder, so the bundled templates serve.
PROJECT_SPECS = ("x86_64_sysv_lean.yaml", "riscv64.yaml")


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict[str, Path]:
    """The wheel installed in a fresh venv, once for the session (shared.py:
    pytest-xdist's workers share it; each test leaves the install as it was)."""
    text = shared.once(tmp_path_factory, "installed-wheel", lambda: _install(tmp_path_factory))
    return {name: Path(path) for name, path in json.loads(text).items()}


def _install(tmp_path_factory) -> str:
    base = tmp_path_factory.mktemp("install")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", base, ROOT],
        check=True,
        capture_output=True,
    )
    (wheel,) = base.glob("asmgen-*.whl")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    python = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    (site / "asmgen_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # A dependency's command, as pip would have installed it beside python.
    (venv / "bin" / "clang-format").symlink_to(Path(sys.executable).parent / "clang-format")
    pip = [sys.executable, "-m", "pip", "--python", python]
    subprocess.run(
        [*pip, "install", "--quiet", "--no-index", "--no-deps", wheel],
        check=True,
        capture_output=True,
    )
    paths = {"wheel": wheel, "venv": venv, "site": site, "package": site / "asmgen"}
    return json.dumps({name: str(path) for name, path in paths.items()})


def _asmgen(installed, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{installed['venv'] / 'bin'}:/usr/bin:/bin"
    return subprocess.run(
        [installed["venv"] / "bin" / "asmgen", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def _files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if "__pycache__" not in p.parts}


def test_wheel_carries_templates_and_specs(installed):
    with zipfile.ZipFile(installed["wheel"]) as archive:
        names = set(archive.namelist())
    assert "asmgen/templates/x86_64/resolver.s.j2" in names
    assert "asmgen/abi_specs/x86_64_win64.yaml" in names
    # The convention files, and the compiled harness's sources and scaffolds.
    assert "asmgen/abi_specs/conventions/ms_x64.yaml" in names
    assert "asmgen/verify/compiled/c/harness.c" in names
    assert "asmgen/templates/mips32/harness_scaffold.S.j2" in names
    # The venv runs the wheel's copy, not the checkout.
    where = subprocess.run(
        [installed["venv"] / "bin" / "python", "-c", "import asmgen; print(asmgen.__file__)"],
        cwd="/",
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.strip() == str(installed["package"] / "__init__.py")


def test_outside_any_project_commands_that_write_refuse(installed, tmp_path):
    before = _files_under(installed["venv"])
    for args, option in ((["generate"], "--out"), (["verify", "X86_64_SysV"], "--generated")):
        done = _asmgen(installed, *args, cwd=tmp_path)
        assert done.returncode == 2, done
        assert done.stderr.splitlines() == [
            f"{tmp_path}: error: no asmgen project here: neither this folder nor a parent "
            f"holds abi_specs/ (hint: run inside a project, pass --project DIR, or name the "
            f"folder with {option})"
        ]
    # Inside the installed package (which holds abi_specs/) is no project either.
    done = _asmgen(installed, "generate", cwd=installed["package"])
    assert done.returncode == 2 and "no asmgen project here" in done.stderr
    assert _files_under(installed["venv"]) == before
    assert list(tmp_path.iterdir()) == []


def test_bundled_specs_build_anywhere_into_a_named_folder(installed, tmp_path):
    out = tmp_path / "out"
    done = _asmgen(installed, "generate", "X86_64_SysV", "--out", out, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    fresh = json.loads((out / "tables.json").read_text())["abis"]["X86_64_SysV"]
    checked_in = json.loads((ROOT / "generated" / "tables.json").read_text())["abis"]
    assert fresh == checked_in["X86_64_SysV"]
    # The header names the bundled spec, convention and templates by their paths
    # in the package, never by where it is installed.
    header = (out / "orc_resolvers.h").read_text()
    assert "  convention abi_specs/conventions/sysv_amd64.yaml" in header
    assert str(installed["site"]) not in header
    done = _asmgen(installed, "verify", "X86_64_SysV", "--generated", out, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_project_works_from_any_folder_inside_it(installed, tmp_path):
    project = tmp_path / "project"
    (project / "abi_specs" / "conventions").mkdir(parents=True)
    for name in PROJECT_SPECS:
        shutil.copyfile(ROOT / "abi_specs" / name, project / "abi_specs" / name)
    # A convention file of the project's own, which only it has.
    own = (ROOT / "abi_specs" / "conventions" / "sysv_amd64.yaml").read_text()
    own = own.replace("convention: sysv_amd64", "convention: project_sysv")
    (project / "abi_specs" / "conventions" / "project_sysv.yaml").write_text(own)
    lean = project / "abi_specs" / PROJECT_SPECS[0]
    lean.write_text(lean.read_text().replace("convention: sysv_amd64", "convention: project_sysv"))
    inside = project / "src" / "deeper"
    inside.mkdir(parents=True)

    done = _asmgen(installed, "generate", cwd=inside)
    assert done.returncode == 0, done.stderr
    tables = json.loads((project / "generated" / "tables.json").read_text())["abis"]
    checked_in = json.loads((ROOT / "generated" / "tables.json").read_text())["abis"]
    assert tables == {abi: checked_in[abi] for abi in tables}
    assert sorted(tables) == ["Riscv64", "X86_64_SysV_Lean"]
    header = (project / "generated" / "orc_resolvers.h").read_text()
    assert "  convention abi_specs/conventions/project_sysv.yaml" in header

    done = _asmgen(installed, "check", cwd=inside)
    assert done.returncode == 0 and "up to date" in done.stdout, done.stderr
    done = _asmgen(installed, "verify", cwd=inside)
    assert done.returncode == 0, done.stdout + done.stderr
    done = _asmgen(installed, "docs", cwd=inside)
    assert done.returncode == 0, done.stderr
    assert (project / "docs" / "abi" / "X86_64_SysV_Lean.md").is_file()

    # A class LLVM lacks: the patch adds it to (a copy of) LLVM's sources.
    llvm = tmp_path / "llvm"
    shutil.copytree(LLVM_TREE, llvm)
    done = _asmgen(installed, "patch", "--llvm-root", llvm, "X86_64_SysV_Lean", cwd=inside)
    assert done.returncode == 0, done.stderr
    assert "+void OrcX86_64_SysV_Lean::writeResolverCode(" in done.stdout
    applied = subprocess.run(
        ["git", "apply", "--check", "-"], input=done.stdout, cwd=llvm, text=True, check=False
    )
    assert applied.returncode == 0
