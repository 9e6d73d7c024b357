"""Scratch LLVM trees as git repositories: a patch is applied the way a
maintainer applies it (`git apply --check`, `git apply`) and checked with
`git clang-format`.  Shared by the patch tests and tests/llvm_release.py."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from asmgen.cli import main as asmgen
from asmgen.emit.clangformat import clang_format_binary
from asmgen.patch import orc_factories
from asmgen.patch import orc_source as orc

GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
}


def git(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["git", *args], cwd=repo, env=GIT_ENV, capture_output=True, text=True, check=False
    )


def scratch_tree(repo: Path, files: dict[str, Path]) -> Path:
    """A git repository at `repo` holding `files` (path in the tree -> source), committed."""
    for rel, source in files.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, repo / rel)
    for args in (("init", "-q"), ("add", "-A"), ("commit", "-qm", "base")):
        done = git(repo, *args)
        if done.returncode != 0:
            raise RuntimeError(f"git {' '.join(args)}: {done.stderr}")
    return repo


def llvm_files(root: Path) -> dict[str, Path]:
    """The files `asmgen patch` edits, in an LLVM checkout: OrcABISupport.cpp
    and .h, and the files of the factory functions that pick a class by triple."""
    return {
        orc.CPP_PATH: root / orc.CPP_PATH,
        orc.HEADER_PATH: root / orc.HEADER_PATH,
        **factory_files(root),
    }


def factory_files(root: Path) -> dict[str, Path]:
    """IndirectionUtils.cpp and LazyReexports.cpp in an LLVM checkout (or the fixture)."""
    return orc_factories.files(root)


def apply(repo: Path, patch: Path) -> str:
    """`git apply --check`, then `git apply`; the error text, or "" when both pass."""
    for args in (("apply", "--check", str(patch)), ("apply", str(patch))):
        done = git(repo, *args)
        if done.returncode != 0:
            return done.stderr.strip() or f"git {' '.join(args)} failed"
    return ""


def patched_tree(repo: Path, files: dict[str, Path], *abis: str) -> str:
    """`files` committed at `repo`, then `asmgen patch` (every ABI, or the
    ones named) applied with git; the patch."""
    scratch_tree(repo, files)
    patch = repo.parent / f"{repo.name}.patch"
    if asmgen(["patch", "--llvm-root", str(repo), *abis, "-o", str(patch)]) != 0:
        raise RuntimeError(f"asmgen patch --llvm-root {repo} failed")
    error = apply(repo, patch)
    if error:
        raise RuntimeError(f"git apply {patch}: {error}")
    return patch.read_text()


def clang_format_diff(repo: Path) -> str:
    """What `git clang-format --diff` would change in the working tree ("" if nothing)."""
    tool = Path(sys.executable).parent / "git-clang-format"
    done = subprocess.run(
        [sys.executable, str(tool), "--binary", clang_format_binary(), "--style=LLVM", "--diff"],
        cwd=repo,
        env=GIT_ENV,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode == 0 and "did not modify" in done.stdout:
        return ""
    return (done.stdout + done.stderr).strip() or "git clang-format failed"
