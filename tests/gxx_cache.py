"""The tests' g++ runs, kept under the hash of everything they compile.

What g++ makes of a translation unit depends on the compiler, the flags, and
the unit's text after preprocessing: the source with every header it
includes expanded (LLVM's installed headers, a scratch tree's patched
OrcABISupport.h, ...).  So the key of a compile is the SHA-256 of the
compiler's identity (the driver and cc1plus: path, size, modification time;
`g++ -dumpfullversion`), the flags, and `g++ -E` of each source with the same
flags (a tenth of a second for a unit that takes three to compile); a link
adds its own flags and the identity of the shared libraries it names.  An
edit to any included file, to a flag, an LLVM or a compiler upgrade is a miss.

A scratch folder's path (a tmp_path, a scratch LLVM tree) appears in the
preprocessed text (line markers, `__FILE__` in assert) and in the flags; the
folders named as `scratch` are replaced by a placeholder, so a new scratch
copy of the same files is a hit.

Only successes are kept: a compile that fails runs every time and reports
g++'s own errors.  The cache is the folder in $ASMGEN_TEST_GXX_CACHE
(conftest.py puts it in the suite's cache, so ASMGEN_TEST_CACHE=cold starts
it empty); without it every compile runs.  tests/test_gxx_cache.py shows an
edited header and a changed flag are misses.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from functools import cache
from pathlib import Path

CXX = "g++"
# Entries kept (the most recently used): a few dozen units and executables
# make one suite run.
KEEP = 300


def cache_dir() -> Path | None:
    configured = os.environ.get("ASMGEN_TEST_GXX_CACHE")
    return Path(configured) if configured else None


def _used(entry: Path) -> bool:
    """A hit counts as a use (its modification time, for `_prune`)."""
    try:
        os.utime(entry)
    except OSError:
        return False
    return True


def _prune(folder: Path) -> None:
    entries = []
    for entry in folder.iterdir():
        try:
            entries.append((entry.stat().st_mtime_ns, entry))
        except OSError:
            continue
    for _, entry in sorted(entries, reverse=True)[KEEP:]:
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def _stat_identity(path: str) -> str:
    real = os.path.realpath(path)
    stat = os.stat(real)
    return f"{real}:{stat.st_size}:{stat.st_mtime_ns}"


@cache
def compiler_identity() -> str:
    def ask(*args: str) -> str:
        return subprocess.run([CXX, *args], capture_output=True, text=True, check=True).stdout

    driver = shutil.which(CXX) or CXX
    cc1plus = ask("-print-prog-name=cc1plus").strip()
    return "\0".join(
        [ask("-dumpfullversion").strip(), _stat_identity(driver), _stat_identity(cc1plus)]
    )


def _normalized(text: str, scratch: Sequence[Path]) -> str:
    # Longest first: a scratch folder inside another is replaced whole.
    names = {str(p) for p in scratch} | {str(p.resolve()) for p in scratch}
    for i, name in enumerate(sorted(names, key=len, reverse=True)):
        text = text.replace(name, f"<scratch{i}>")
    return text


def _key(flags: Sequence[str], sources: Sequence[Path], scratch: Sequence[Path], extra) -> str:
    key = hashlib.sha256()
    for part in (compiler_identity(), *(_normalized(f, scratch) for f in flags), *extra):
        key.update(hashlib.sha256(part.encode()).digest())
    for source in sources:
        pre = subprocess.run(
            [CXX, *flags, "-E", str(source)], capture_output=True, text=True, check=False
        )
        if pre.returncode != 0:
            return ""  # the compile fails too: it runs, and says why
        key.update(hashlib.sha256(_normalized(pre.stdout, scratch).encode()).digest())
    return key.hexdigest()[:40]


def syntax_check(flags: Sequence[str], source: Path, scratch: Sequence[Path] = ()) -> str:
    """`g++ -fsyntax-only` of `source` with `flags`: its errors, or "" when it
    compiles (kept: a second check of the same unit runs no compiler)."""
    folder = cache_dir()
    key = _key(flags, [source], scratch, ["-fsyntax-only"]) if folder else ""
    if key and _used(folder / f"{key}.ok"):
        return ""
    done = subprocess.run(
        [CXX, *flags, "-fsyntax-only", str(source)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        return done.stderr.strip()[-3000:] or "g++ failed"
    if key:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{key}.ok").touch()
        _prune(folder)
    return ""


def library_identity(libraries: Sequence[Path]) -> list[str]:
    return [_stat_identity(str(lib)) for lib in libraries]


def executable(
    name: str,
    flags: Sequence[str],
    sources: Sequence[Path],
    link: Sequence[str] = (),
    *,
    libraries: Sequence[Path] = (),
    scratch: Sequence[Path] = (),
    out: Path,
) -> tuple[Path, str]:
    """`sources` compiled with `flags` and linked with `link` (`libraries`: the
    shared libraries those name, whose identity joins the key): (the
    executable, ""), or (a path that does not exist, g++'s errors).  A hit is
    the kept executable; without a cache it is built at out/name."""
    folder = cache_dir()
    extra = ["link", *(_normalized(f, scratch) for f in link), *library_identity(libraries)]
    key = _key(flags, sources, scratch, extra) if folder else ""
    target = folder / key / name if key else out / name
    if key and target.exists() and _used(target.parent):
        return target, ""
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(dir=target.parent)) / name
    done = subprocess.run(
        [CXX, *flags, *map(str, sources), "-o", str(temp), *link],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        shutil.rmtree(temp.parent, ignore_errors=True)
        return target, done.stderr.strip()[-3000:] or "g++ failed"
    os.replace(temp, target)
    shutil.rmtree(temp.parent, ignore_errors=True)
    if key:
        _prune(folder)
    return target, ""
