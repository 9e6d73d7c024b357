"""Whether this machine could run a table with the arch's hardware shadow
stack enabled, for the `shadow_stack` check's native run.

The check itself is the emulated model (emulate.py).  A native run needs the
CPU to have the feature, the kernel to offer it to user space (Linux lists
`user_shstk` or `gcs` in /proc/cpuinfo only then) and a C library that enables
it for the process.  This says which of those is missing, so the report
states why the real hardware did not check it, instead of passing silently.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

from asmgen.verify.model import NA, CheckResult, Subject


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return set()
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(value.split())
    return flags


def _glibc() -> str:
    try:
        return os.confstr("CS_GNU_LIBC_VERSION") or "no glibc"
    except (ValueError, OSError):
        return "no glibc"


def native_shadow_stack(subject: Subject) -> CheckResult:
    """The native run's verdict: not applicable, with what this machine lacks."""
    arch = subject.spec.arch_info
    shadow = arch.shadow_stack
    if shadow is None:
        return CheckResult("shadow_stack", NA, "native", [], f"{arch.name} has no shadow stack")
    host = platform.machine()
    facts = arch.emulator
    hosts = {machine for machine, _ in facts.native_hosts} if facts else set()
    kernel = f"Linux {platform.release()}" if platform.system() == "Linux" else platform.system()
    if host not in hosts:
        why = f"this host ({host}) does not run {arch.name} code natively"
    elif shadow.cpu_flag not in _cpu_flags():
        why = (
            f"this machine cannot enable the {shadow.name}: /proc/cpuinfo has no "
            f"`{shadow.cpu_flag}` ({kernel}, {_glibc()}; the C library enables it from "
            f"glibc {shadow.glibc})"
        )
    else:
        why = (
            f"the CPU and kernel offer the {shadow.name} (`{shadow.cpu_flag}`), but asmgen's "
            f"native run does not enable it yet ({_glibc()})"
        )
    return CheckResult("shadow_stack", NA, "native", [], why)
