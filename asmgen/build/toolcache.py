"""A content-addressed cache for runs of external tools (llvm-mc).

A run's result depends only on the tool's identity (path and version), its
arguments and its input, so it is stored under the SHA-256 of those and
reused by later processes: a warm `asmgen generate` starts no llvm-mc at all.
Entries are written atomically; a missing, unreadable or corrupt entry is a
miss.  ASMGEN_CACHE_DIR moves the cache; ASMGEN_CACHE=0 turns it off.
`buildcache.py` keeps whole command results in the same folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def cache_dir() -> Path | None:
    if os.environ.get("ASMGEN_CACHE", "1") == "0":
        return None
    configured = os.environ.get("ASMGEN_CACHE_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "asmgen"


def entry_path(key: list[str], suffix: str = ".json", area: str = "") -> Path | None:
    """Where the entry for `key` lives; None when caching is off.  Entries of
    an `area` sit in one folder of their own, which `prune` keeps small."""
    folder = cache_dir()
    if folder is None:
        return None
    digest = hashlib.sha256("\0".join(key).encode("utf-8", "surrogateescape")).hexdigest()
    return folder / (area or digest[:2]) / f"{digest}{suffix}"


def load_bytes(key: list[str], suffix: str, area: str = "") -> bytes | None:
    """The stored bytes for `key`; None for a miss (absent or unreadable).
    A hit in an area counts as a use (its modification time, for `prune`)."""
    path = entry_path(key, suffix, area)
    if path is None:
        return None
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if area:
        with contextlib.suppress(OSError):
            os.utime(path)
    return data


def store_bytes(key: list[str], data: bytes, suffix: str, area: str = "") -> None:
    """Store `data` for `key`, atomically; an unwritable cache only costs speed."""
    path = entry_path(key, suffix, area)
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(temp, path)
        except BaseException:
            os.unlink(temp)
            raise
    except OSError:
        pass


def prune(area: str, keep: int) -> None:
    """Remove all but the `keep` most recently used entries of `area` (keys
    that name scratch folders would otherwise pile up)."""
    folder = cache_dir()
    if folder is None:
        return
    try:
        with os.scandir(folder / area) as found:
            entries = sorted((e.stat().st_mtime_ns, e.path) for e in found if e.is_file())
    except OSError:
        return
    for _, path in entries[: max(0, len(entries) - keep)]:
        with contextlib.suppress(OSError):
            os.unlink(path)


def load(key: list[str], area: str = "") -> Any | None:
    """The stored JSON value for `key`; None for a miss (absent, unreadable, corrupt)."""
    data = load_bytes(key, ".json", area)
    try:
        return None if data is None else json.loads(data.decode("utf-8"))
    except ValueError:  # UnicodeDecodeError too
        return None


def store(key: list[str], value: Any, area: str = "") -> None:
    """Store `value` (JSON-able) for `key`."""
    store_bytes(key, json.dumps(value).encode("utf-8"), ".json", area)


def cached(key: list[str], compute: Callable[[], dict]) -> dict:
    """`compute()`'s JSON-able result for `key`, from the cache when present."""
    found = load(key)
    if isinstance(found, dict):
        return found
    result = compute()
    store(key, result)
    return result
