"""Where one side of an LLVM review comes from: a checkout, a git revision of
one, or either with a `.patch`/`.diff` applied.

Every input becomes a folder holding LLVM's two ORC files at their paths in
the tree (llvm/include/.../OrcABISupport.h, llvm/lib/.../OrcABISupport.cpp):
a checkout is used in place; a revision's files are read with `git show` into
a scratch folder; a patch is applied with `git apply` to a scratch copy of the
files it is based on, limited to those two files, so a pull request's whole
diff (tests, other libraries) can be given as it is.  Scratch folders are
removed when the process exits.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from asmgen.errors import AsmgenError
from asmgen.patch import orc_source as orc

FILES = (orc.HEADER_PATH, orc.CPP_PATH)
PATCH_SUFFIXES = (".patch", ".diff")


@dataclass(frozen=True)
class Tree:
    root: Path  # the folder that holds FILES
    label: str  # how the review names this side


def checkout_root(path: Path) -> Path | None:
    """The LLVM checkout at `path` (its top, or its `llvm/` folder)."""
    for candidate in (path, path.parent):
        if (candidate / orc.CPP_PATH).is_file() and (candidate / orc.HEADER_PATH).is_file():
            return candidate
    return None


def is_patch(path: Path) -> bool:
    return path.suffix in PATCH_SUFFIXES and path.is_file()


@cache
def _scratch_root() -> Path:
    root = Path(tempfile.mkdtemp(prefix="asmgen-review-llvm-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return root


def _scratch() -> Path:
    return Path(tempfile.mkdtemp(dir=_scratch_root()))


def _git(cwd: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    # A scratch folder must not be taken for part of a repository around it.
    env = {**os.environ, "GIT_CEILING_DIRECTORIES": str(cwd.parent)}
    try:
        return subprocess.run(
            ["git", *args], cwd=cwd, env=env, input=stdin, capture_output=True, text=True
        )
    except FileNotFoundError:
        raise AsmgenError("git not found; it reads revisions and applies patches") from None


def from_checkout(path: Path) -> Tree:
    root = checkout_root(path)
    if root is None:
        raise AsmgenError(f"not an LLVM checkout: no {orc.CPP_PATH}", path)
    return Tree(root, str(path))


def is_llvm_repo(repo: Path | None) -> bool:
    return repo is not None and checkout_root(repo) is not None


def from_revision(repo: Path, rev: str) -> Tree:
    commit = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
        capture_output=True,
        text=True,
    )
    if commit.returncode != 0:
        raise AsmgenError(f"{rev!r} is not a file, a folder or a git revision of {repo}")
    root = _scratch()
    for rel in FILES:
        shown = subprocess.run(
            ["git", "-C", str(repo), "show", f"{commit.stdout.strip()}:{rel}"],
            capture_output=True,
        )
        if shown.returncode != 0:
            raise AsmgenError(f"revision {rev} has no {rel}", repo)
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(shown.stdout)
    return Tree(root, f"{rev}")


def with_patch(base: Tree, patch: Path) -> Tree:
    """`base` with the patch's changes to the two ORC files applied."""
    root = _scratch()
    for rel in FILES:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(base.root / rel, root / rel)
    include = [f"--include={rel}" for rel in FILES]
    try:
        text = patch.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AsmgenError(f"cannot read the patch: {exc}", patch) from None
    touched = _git(root, "apply", "--numstat", *include, "-", stdin=text)
    if touched.returncode != 0:
        raise AsmgenError(f"not a patch git can read: {_first(touched.stderr)}", patch)
    applied = _git(root, "apply", "--whitespace=nowarn", *include, "-", stdin=text)
    if applied.returncode != 0:
        raise AsmgenError(f"does not apply to {base.label}: {_first(applied.stderr)}", patch)
    label = f"{base.label} + {patch.name}"
    if not touched.stdout.strip():
        label += " (changes neither OrcABISupport file)"
    return Tree(root, label)


def _first(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return "; ".join(lines[:2]) or "git apply failed"
