"""Write generated files atomically, as one set, and only when they change.

Every changed file is first written in full to a temp file beside it; only
when all of them are on disk are they renamed over the old ones.  A failure
(or an interrupt) before that leaves the previous outputs as they were, and
removes the temp files; a rename that fails puts back the files already
renamed.  An exclusive lock on the output folder keeps two
runs from interleaving their renames, so the files always form one run's set.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from asmgen.errors import AsmgenError


@contextlib.contextmanager
def locked(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on `folder` (flock on the folder itself: no lock file)."""
    if folder.exists() and not folder.is_dir():
        raise AsmgenError("output folder is not a folder", folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise AsmgenError(f"cannot use output folder: {exc.strerror}", folder) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _current(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise AsmgenError(f"cannot read output: {exc.strerror}", path) from None


# Mode of an output that did not exist before.
NEW_FILE_MODE = 0o644


def _mode_to_keep(path: Path) -> int:
    """The permission bits a replaced file keeps.  A read-only file is refused:
    someone made it so on purpose, and a rename would replace it regardless."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return NEW_FILE_MODE
    except OSError as exc:
        raise AsmgenError(f"cannot read output: {exc.strerror}", path) from None
    if not mode & stat.S_IWUSR or not os.access(path, os.W_OK):
        raise AsmgenError(
            f"output is read-only (mode {mode:o}); asmgen does not replace it",
            path,
            hint="make it writable, or write elsewhere with --out",
        )
    return mode


def _stage(path: Path, data: bytes, mode: int) -> Path:
    """Write `data` to a new temp file beside `path`."""
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise AsmgenError(f"cannot write output: {exc.strerror}", path) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, mode)
    except BaseException as exc:
        Path(temp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise AsmgenError(f"cannot write output: {exc.strerror}", path) from None
        raise
    return Path(temp)


def write_files(files: dict[Path, str]) -> list[Path]:
    """Replace every file whose text changed; return those written, in order.

    All paths lie in one folder (the one that is locked) or in folders
    directly inside it (generated/reentry/), which are made when missing.
    The set fills those inner folders completely: another run's files left
    in them (tables this set does not have) are removed, under the same
    lock, so the folder always holds one run's set."""
    if not files:
        return []
    root, inner = output_folders(set(files))
    if any(folder.parent != root for folder in inner):
        raise ValueError("write_files writes into one folder and the folders inside it")
    with locked(root):
        for folder in sorted(inner):
            try:
                folder.mkdir(exist_ok=True)
            except OSError as exc:
                raise AsmgenError(f"cannot make the folder: {exc.strerror}", folder) from None
        old = {path: _current(path) for path in files}
        changed = {
            path: data
            for path, data in ((p, t.encode("utf-8")) for p, t in files.items())
            if data != old[path]
        }
        modes = {path: _mode_to_keep(path) for path in changed}
        staged: dict[Path, Path] = {}
        renamed: list[Path] = []
        try:
            for path, data in changed.items():
                staged[path] = _stage(path, data, modes[path])
            for path, temp in staged.items():
                try:
                    os.replace(temp, path)
                except OSError as exc:
                    raise AsmgenError(f"cannot write output: {exc.strerror}", path) from None
                renamed.append(path)
        except BaseException:
            _restore({path: old[path] for path in renamed}, modes)
            raise
        finally:
            for temp in staged.values():
                temp.unlink(missing_ok=True)
        _remove_others(inner, set(files))
    return list(changed)


def output_folders(paths: set[Path]) -> tuple[Path, set[Path]]:
    """The outermost folder `paths` lie in, and the others (generated/reentry/)."""
    folders = {path.parent for path in paths}
    root = min(folders, key=lambda folder: len(folder.parts))
    return root, folders - {root}


def others(folders: set[Path], kept: set[Path]) -> list[Path]:
    """The files in `folders` the set does not have, which a write removes
    (hidden ones aside: an editor's, or a temp file)."""
    return [
        path
        for folder in sorted(folders)
        if folder.is_dir()
        for path in sorted(folder.iterdir())
        if path.is_file() and not path.name.startswith(".") and path not in kept
    ]


def _remove_others(folders: set[Path], kept: set[Path]) -> None:
    for path in others(folders, kept):
        try:
            path.unlink()
        except OSError as exc:
            message = f"cannot remove an old output: {exc.strerror}"
            raise AsmgenError(message, path) from None


def _restore(previous: dict[Path, bytes | None], modes: dict[Path, int]) -> None:
    """Best effort: put back what the failed run had already replaced."""
    for path, data in previous.items():
        with contextlib.suppress(OSError, AsmgenError):
            if data is None:
                path.unlink(missing_ok=True)
            else:
                temp = _stage(path, data, modes[path])
                try:
                    os.replace(temp, path)
                finally:
                    temp.unlink(missing_ok=True)


def write_if_changed(path: Path, text: str) -> bool:
    """Replace `path` with `text` through a temp file and rename; False if unchanged."""
    return bool(write_files({path: text}))
