"""Write generated files atomically, and only when their contents change."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import AsmgenError


def write_if_changed(path: Path, text: str) -> bool:
    """Replace `path` with `text` through a temp file and rename; False if unchanged."""
    data = text.encode("utf-8")
    try:
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise AsmgenError(f"cannot read output: {exc.strerror}", path) from None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise AsmgenError(f"cannot write output: {exc.strerror}", path) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException as exc:
        Path(temp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise AsmgenError(f"cannot write output: {exc.strerror}", path) from None
        raise
    return True
