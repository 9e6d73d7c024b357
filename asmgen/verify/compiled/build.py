"""Render the harness sources for one target and build them with its compiler.

Sources: the generic C in this package (`c/`), the header, landings and
probes generated from the convention file and the arch's `Harness` record,
and the arch's caller scaffold and clobber body from
templates/<arch>/harness_scaffold.S.j2 and harness_clobber.c.j2.  The
executable is cached under the SHA-256 of every source, the compiler's
version and its flags (in asmgen's tool cache, `ASMGEN_CACHE_DIR`), so a warm
run builds nothing.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import jinja2

from asmgen.arches.model import Arch, HarnessTarget
from asmgen.build.toolcache import cache_dir
from asmgen.spec.convention import Convention
from asmgen.verify.compiled.layout import OBS, Landing, Layout, landings
from asmgen.verify.compiled.session import HarnessError

C_DIR = Path(__file__).resolve().parent / "c"
# What the landing returns to the caller: checked in the caller's result register.
LANDING_RET = {4: 0x5EED_5EED, 8: 0x5EED_5EED_5EED_5EED}
COMMON_FLAGS = ("-g0", "-Wall", "-Wno-unused-variable")


@dataclass(frozen=True)
class Built:
    """A harness executable and what its sources were generated from."""

    exe: Path
    arch: Arch
    target: HarnessTarget
    conv: Convention
    layout: Layout
    landings: tuple[Landing, ...]
    seconds: float  # build time; 0 when it came from the cache

    @property
    def landing_ret(self) -> int:
        return LANDING_RET[self.arch.pointer_size]


def _pattern(pointer_size: int, names: list[str]):
    """A distinct, recognisable value per register for the clobber body."""

    def pattern(reg: str) -> str:
        i = names.index(reg) + 1
        if pointer_size == 8:
            return f"0x{0xC10B_BE55_0000_0000 | i * 0x0101_0101:016x}"
        return f"0x{0xC1B0_0000 | i * 0x0101:08x}"

    return pattern


def sources(arch: Arch, target: HarnessTarget, conv: Convention, templates: Path) -> dict[str, str]:
    harness = arch.harness
    assert harness is not None
    lay = Layout.of(conv, arch)
    unprobed = {name for name, _ in harness.unprobed}
    gprs = [r.name for r in arch.registers if r.cls == "gpr"]
    align = conv.stack.align
    context = {
        "arch": arch,
        "harness": harness,
        "target": target,
        "conv": conv,
        "endian": target.endian,
        "lay": lay,
        "obs": OBS,
        "landings": landings(conv, arch),
        "landing_ret": hex(LANDING_RET[arch.pointer_size]),
        "align_probes": sorted({align, *(n for n in (4, 8, 16, 32, 64) if n > align)}),
        # Register numbers, as clobber lists spell some registers ($8, x5).
        "regno": {name: i for i, name in enumerate(gprs)},
        "clobber_gprs": [r for r in lay.gprs if r not in unprobed],
        "pattern": _pattern(arch.pointer_size, [*lay.gprs, *lay.fprs]),
    }
    generic, own = (
        jinja2.Environment(
            loader=jinja2.FileSystemLoader(folder),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
        )
        for folder in (C_DIR, templates / arch.name)
    )
    try:
        context["clobber"] = own.get_template("harness_clobber.c.j2").render(context)
        scaffold = own.get_template("harness_scaffold.S.j2").render(context)
    except jinja2.TemplateError as exc:
        raise HarnessError(f"templates/{arch.name}: {exc}") from None
    return {
        "cc_gen.h": generic.get_template("cc_gen.h.j2").render(context),
        "probes.c": generic.get_template("probes.c.j2").render(context),
        "probes_o0.c": generic.get_template("probes_o0.c.j2").render(context),
        "scaffold.S": scaffold,
        "harness.c": (C_DIR / "harness.c").read_text(encoding="utf-8"),
    }


@cache
def _scratch_root() -> Path:
    """With the cache off (ASMGEN_CACHE=0): one folder for this process, removed at exit."""
    root = Path(tempfile.mkdtemp(prefix="asmgen-harness-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return root


@cache
def _compiler_version(compiler: str) -> str:
    done = subprocess.run([compiler, "--version"], capture_output=True, text=True, check=False)
    return done.stdout.splitlines()[0] if done.stdout else compiler


def _steps(target: HarnessTarget, exe: str) -> list[list[str]]:
    cc = [target.compiler, "-I", ".", *COMMON_FLAGS, *target.cflags]
    return [
        [*cc, "-O2", "-c", "harness.c", "-o", "harness.o"],
        # -O0: the re-entry functions spill their parameters as unoptimised code does.
        [*cc, "-O0", "-c", "probes_o0.c", "-o", "probes_o0.o"],
        # -fomit-frame-pointer: the clobber function may name the frame pointer.
        [*cc, "-O2", "-fomit-frame-pointer", "-fno-inline", "-c", "probes.c", "-o", "probes.o"],
        [*cc, "-c", "scaffold.S", "-o", "scaffold.o"],
        [*cc, "-static", "-o", exe, "harness.o", "probes_o0.o", "probes.o", "scaffold.o"],
    ]


def build(arch: Arch, target: HarnessTarget, conv: Convention, templates: Path) -> Built:
    files = sources(arch, target, conv, templates)
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(f"{name}\0{files[name]}\0".encode())
    digest.update(repr((_compiler_version(target.compiler), _steps(target, "h"))).encode())
    key = f"{conv.convention}-{target.method}-{digest.hexdigest()[:16]}"
    exe_name = "harness.exe" if target.windows else "harness"
    root = cache_dir() or _scratch_root()
    folder = root / "harness" / key
    done = Built(
        folder / exe_name, arch, target, conv, Layout.of(conv, arch), landings(conv, arch), 0.0
    )
    if done.exe.is_file():
        return done
    start = time.perf_counter()
    folder.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=folder.parent))
    try:
        for name, text in files.items():
            (scratch / name).write_text(text, encoding="utf-8")
        for step in _steps(target, exe_name):
            ran = subprocess.run(step, cwd=scratch, capture_output=True, text=True, check=False)
            if ran.returncode:
                first = (ran.stderr or ran.stdout).strip().splitlines()[:3]
                raise HarnessError(
                    f"{target.compiler} failed on the generated {step[-3]}: " + " / ".join(first)
                )
        try:
            os.replace(scratch, folder)  # atomic: a concurrent build may have won
        except OSError:
            if not done.exe.is_file():
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return Built(**{**done.__dict__, "seconds": time.perf_counter() - start})
