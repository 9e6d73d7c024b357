"""`asmgen verify` on LLVM's own code: each class of one side against its convention.

A class becomes a verify Subject: the spec it is verified with (llvm_tables:
its own asmgen spec, or one of its arch bound to the convention the reviewer
names or its name names), declaring nothing; the resolver as the side's code
writes it (the compiled writeResolverCode, or the Python reading of it when
nothing compiles here); the side's own trampolines and stubs from its
compiled writers, or, without a compiler, asmgen's for the same spec standing
in (the report says so); and what the resolver keeps on its stack read by
running it (verify/stackimage.py), since no spec describes LLVM's frame.
All classes of one side run in one `verify` call: one harness per target.
"""

from __future__ import annotations

from dataclasses import replace

from asmgen.build.pipeline import build
from asmgen.review.llvm_side import LlvmSide
from asmgen.review.verdict import Verdict, from_report
from asmgen.spec.files import SpecFile
from asmgen.verify.model import Subject
from asmgen.verify.runner import verify
from asmgen.verify.stackimage import ResolverStack, home_area_cause, lost_controls


def _units(side: LlvmSide, name: str) -> tuple[object | None, str]:
    """The chain's trampolines and stubs, and where they come from."""
    cls = side.classes[name]
    units = side.chain_units(name)
    if units is not None:
        return units, f"trampolines and stubs: {side.writers_note}"
    contract = cls.contract
    table = build(SpecFile(contract.spec_path, contract.spec), side.templates)
    why = side.writers_note if side.driver is None else "the class's writers are not all defined"
    return table, (
        f"trampolines and stubs: asmgen's from {contract.spec_path.name} standing in ({why})"
    )


def subject(side: LlvmSide, name: str) -> tuple[Subject, str]:
    cls = side.classes[name]
    units, origin = _units(side, name)
    if side.driver is not None:

        def instantiate(fn_addr: int, ctx_addr: int) -> bytes:
            return side.resolver(name, 0, fn_addr, ctx_addr)

        writes = "resolver: the compiled writeResolverCode"
    else:

        def instantiate(fn_addr: int, ctx_addr: int) -> bytes:
            return cls.evaluate(0, fn_addr, ctx_addr)

        writes = "resolver: writeResolverCode as asmgen reads it"
    contract = cls.contract
    made = Subject(contract.spec, contract.spec_path, None, instantiate, side.label, units)
    return replace(made, stack=ResolverStack(made)), f"{writes}; {origin}"


def verdicts(side: LlvmSide, names: list[str]) -> dict[str, Verdict]:
    """Each named class's verdict; every check against its convention, nothing declared."""
    made = {name: subject(side, name) for name in names}
    reports = verify([s for s, _ in made.values()], compiled=True, templates=side.templates)
    out = {}
    for (name, (made_subject, origin)), report in zip(made.items(), reports, strict=True):
        cls = side.classes[name]
        about = f"{cls.contract.about}; {origin}"
        causes = {}
        if report.outcomes["shadow_space"].outcome == "FAIL":
            causes["shadow_space"] = home_area_cause(made_subject.stack)
            lost = lost_controls(made_subject.stack)
            if lost and report.outcomes["fp_control"].outcome == "FAIL":
                causes["fp_control"] = (
                    f"{lost} lie in the callee's home area (shadow_space), where its spills "
                    "overwrite them before the resolver restores them"
                )
        out[name] = from_report(report, about, {k: v for k, v in causes.items() if v})
    return out
