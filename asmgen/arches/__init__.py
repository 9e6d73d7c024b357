"""Every architecture asmgen knows, one module each (see model.py for the record).

An arch module defines `ARCH`; this registry finds them, so adding an arch
is adding its module (and its templates under templates/<arch>/).
"""

from __future__ import annotations

import importlib
import pkgutil

from asmgen.arches.model import Arch, Register

__all__ = ["ARCHES", "Arch", "Register"]


def _discover() -> dict[str, Arch]:
    found = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        arch = getattr(module, "ARCH", None)
        if isinstance(arch, Arch):
            found[arch.name] = arch
    return found


ARCHES: dict[str, Arch] = _discover()
