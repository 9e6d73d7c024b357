"""Assemble rendered source with the backend the spec names."""

from __future__ import annotations

from asmgen.build.keystone_backend import assemble_keystone
from asmgen.build.llvm_mc import assemble_llvm_mc
from asmgen.build.render import Rendered
from asmgen.build.source import Assembly
from asmgen.spec import Spec

BACKENDS = {"keystone": assemble_keystone, "llvm-mc": assemble_llvm_mc}


def assemble(spec: Spec, rendered: Rendered) -> Assembly:
    return BACKENDS[spec.backend](spec, rendered)
