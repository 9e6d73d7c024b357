"""A build cache keyed by content: a command's whole result, reused while
nothing it depends on has changed.

`asmgen generate`, `check` and `explain` are pure functions of their inputs:
the spec folder, the convention folders, the templates, asmgen's own source,
the installed Python packages, the external tools (llvm-mc, clang-format), the
folders that anchor the relative paths the DO NOT EDIT headers name, and the
command's arguments.  `fingerprint()` reads all of them (file bytes, not
modification times, for everything asmgen reads; installed packages and tool
binaries by name, size and modification time) and the result is stored under
the SHA-256 of that fingerprint in the tool cache's folder (`toolcache.py`:
`ASMGEN_CACHE_DIR`, `XDG_CACHE_HOME`, `ASMGEN_CACHE=0`).

A hit costs a few milliseconds and imports nothing beyond the standard
library: no YAML, Jinja, pydantic or assembler.  The fingerprint is taken
again after a miss is computed, and the result is stored only if it did not
change meanwhile, so an input edited during a build cannot leave a stale
entry.  A failed build stores nothing (its error is reported afresh every
time), and a corrupt or unreadable entry is a miss.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from asmgen.build import toolcache
from asmgen.resources import PACKAGE, SPECS_DIR

FORMAT = "asmgen-build-1"
MARKER = "abi_specs"  # the folder whose parent the headers' paths are relative to
# A folder this big is not a template or spec folder; building it is not cached.
MAX_FILES = 4096
MAX_BYTES = 64 << 20
TOOLS = ("llvm-mc-19", "llvm-mc", "clang-format")
# Entries live in <cache>/build/; the most recently used KEEP stay (up to ~1 MiB
# each: every output file of 19 tables is ~0.6 MiB).
AREA = "build"
KEEP = 48


class _Unkeyable(Exception):
    """An input that cannot be read or is too big: run without the cache."""


def _files(root: Path, recursive: bool) -> Iterator[Path]:
    if not root.is_dir():
        return
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        path = Path(entry.path)
        if entry.is_dir():
            if recursive and entry.name != "__pycache__":
                yield from _files(path, recursive)
        elif entry.is_file():  # FIFOs, sockets and dangling links are never read
            yield path


def _anchor(folder: Path) -> str:
    """The nearest folder, `folder` itself or a parent, that holds abi_specs/."""
    for parent in (folder, *folder.parents):
        if (parent / MARKER).is_dir():
            return str(parent)
    return ""


def _tree(root: Path, recursive: bool, budget: list[int], located: bool = True) -> Iterator[str]:
    """Each file's name and hash; when `located`, also where the folders are
    and the folders their paths in the headers are relative to."""
    root = root.resolve()
    if located:
        yield f"tree {root} anchor {_anchor(root)}"
    folders = set()
    for path in _files(root, recursive):
        try:
            data = path.read_bytes()
        except OSError:
            raise _Unkeyable from None
        budget[0] -= 1
        budget[1] -= len(data)
        if budget[0] < 0 or budget[1] < 0:
            raise _Unkeyable
        rel = path.relative_to(root).as_posix()
        yield f"{rel} {hashlib.sha256(data).hexdigest()}"
        folders.add(path.parent)
    for folder in sorted(folders) if located else ():
        yield f"anchor {folder.relative_to(root).as_posix()} {_anchor(folder)}"


def _stat(path: str | Path) -> str:
    try:
        real = os.path.realpath(path)
        st = os.stat(real)
    except OSError:
        return f"{path} missing"
    return f"{path} -> {real} {st.st_size} {st.st_mtime_ns}"


def _installed() -> Iterator[str]:
    """The Python and the distributions on sys.path, by name, version and mtime."""
    yield f"python {sys.version} {sys.executable}"
    for entry in sys.path:
        try:
            names = sorted(os.listdir(entry or "."))
        except OSError:
            continue
        for name in names:
            if name.endswith((".dist-info", ".egg-info", ".egg-link", ".pth")):
                yield _stat(os.path.join(entry, name))


def _tools() -> Iterator[str]:
    override = os.environ.get("ASMGEN_LLVM_MC", "")
    yield f"ASMGEN_LLVM_MC={override}"
    for name in (*TOOLS, *([override] if override else [])):
        found = shutil.which(name)
        yield f"{name}: {_stat(found) if found else 'not found'}"
    yield _stat(Path(sys.executable).parent / "clang-format")


def fingerprint(specs_dir: Path, templates_dir: Path, args: list[str]) -> str | None:
    """The SHA-256 of everything a build of `specs_dir` with `templates_dir`
    depends on, plus `args`; None when some input cannot be read (the build
    then runs uncached and reports it)."""
    budget = [MAX_FILES, MAX_BYTES]
    conventions = [specs_dir / "conventions", SPECS_DIR / "conventions"]
    try:
        parts = [
            FORMAT,
            *args,
            *_tree(PACKAGE, True, budget, located=False),
            *_tree(specs_dir, False, budget),
            *(line for folder in conventions for line in _tree(folder, False, budget)),
            *_tree(templates_dir, True, budget),
            *_installed(),
            *_tools(),
        ]
    except (_Unkeyable, OSError, RecursionError):
        return None
    return hashlib.sha256("\n".join(parts).encode("utf-8", "surrogateescape")).hexdigest()


def texts(entry: object) -> dict[str, str] | None:
    """The named texts a stored entry holds; None if it is no valid entry."""
    if not isinstance(entry, dict) or entry.get("format") != FORMAT:
        return None
    found = entry.get("texts")
    if isinstance(found, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in found.items()
    ):
        return found
    return None


def cached_build(
    specs_dir: Path, templates_dir: Path, args: list[str], compute: Callable[[], dict[str, str]]
) -> dict[str, str]:
    """`compute()` (named texts: output files, a listing) for these inputs and
    `args`, from the cache when an entry for exactly these inputs exists."""
    if toolcache.cache_dir() is None:
        return compute()
    before = fingerprint(specs_dir, templates_dir, args)
    if before is None:
        return compute()
    key = [FORMAT, before]
    found = texts(toolcache.load(key, AREA))
    if found is not None:
        return found
    result = compute()
    if fingerprint(specs_dir, templates_dir, args) == before:
        toolcache.store(key, {"format": FORMAT, "texts": result}, AREA)
        toolcache.prune(AREA, KEEP)
    return result
