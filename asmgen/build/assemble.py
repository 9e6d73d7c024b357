"""Assemble rendered source with the backend the spec names; the versions of
the tools that did (for the outputs' DO NOT EDIT headers)."""

from __future__ import annotations

from functools import cache
from importlib.metadata import PackageNotFoundError, version

from asmgen import __version__
from asmgen.build.gather import checkpoint
from asmgen.build.keystone_backend import assemble_keystone
from asmgen.build.llvm_mc import assemble_llvm_mc, llvm_mc_version
from asmgen.build.render import Rendered
from asmgen.build.source import Assembly
from asmgen.spec import Spec

BACKENDS = {"keystone": assemble_keystone, "llvm-mc": assemble_llvm_mc}


def assemble(spec: Spec, rendered: Rendered) -> Assembly:
    checkpoint()  # a parallel build that has failed stops here (gather.py)
    return BACKENDS[spec.backend](spec, rendered)


@cache
def tool_versions(backends: tuple[str, ...]) -> list[str]:
    """asmgen and the libraries and tools that build tables with `backends`."""
    names = ["jinja2", "capstone"]
    names += ["keystone-engine"] if "keystone" in backends else []
    parts = [f"asmgen {__version__}"]
    for name in names:
        try:
            parts.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            parts.append(f"{name} (not installed)")
    if "llvm-mc" in backends:
        parts.append(f"llvm-mc {llvm_mc_version()}")
    return parts
