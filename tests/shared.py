"""Work the whole pytest session shares, done once even when pytest-xdist
runs the tests in several worker processes.

A session fixture runs once per worker: two workers would each run the same
long verify or JIT run.  `once` keeps the first worker's answer (text) in the
session's base temporary folder, which every worker of the run shares, under
an exclusive lock: the others wait for it and read it.  Nothing outlives the
run (pytest removes old base folders), so no answer is ever stale.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable


def once(tmp_path_factory, name: str, compute: Callable[[], str]) -> str:
    """compute()'s text, computed by one process of this session."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return compute()
    folder = tmp_path_factory.getbasetemp().parent / "shared"
    folder.mkdir(exist_ok=True)
    path = folder / name
    with open(folder / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists():
            return path.read_text()
        text = compute()
        path.write_text(text)
        return text
