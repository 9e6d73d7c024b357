"""What verify checks (a subject) and what it finds (results)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, get_args

from asmgen.build.frame import Frame
from asmgen.spec.schema import Spec, VerifyCheck

# Every check, in report order, with what it proves.
CHECKS: dict[str, str] = {
    "ctx_arg": "ctx arrives where the convention puts the first argument",
    "trampoline_arg": "the trampoline's address arrives as the second argument",
    "stack_align": "sp is aligned to call.stack_align at the call",
    "shadow_space": "the resolver neither keeps live data in nor reads the callee's home area",
    "int_args": "integer argument registers survive to the landing",
    "fp_args": "FP/vector argument registers survive to the landing (full width)",
    "callee_saved": "callee-saved registers survive to the landing",
    "stack_pointer": "sp at the landing equals sp at the stub",
    "return_address": "the caller's return address survives to the landing",
    "fp_control": "FP control state (call.fp_control) survives to the landing",
    "landing_pc": "pc reaches the address the re-entry function returned",
    "native": "the real CPU runs trampoline -> resolver -> C re-entry -> landing",
    "vector_width": "native: FP argument registers survive at full YMM/ZMM width",
    "frame_align": "static: the frame computed from the spec keeps the call aligned",
}
assert tuple(CHECKS) == get_args(VerifyCheck), "CHECKS and spec.VerifyCheck disagree"

PASS, FAIL, NA = "pass", "fail", "n/a"


class ChainUnits(Protocol):
    """A table's trampolines and stubs, as the generated module's table objects
    and asmgen's in-memory `Table` both offer them."""

    @property
    def trampoline_size(self) -> int: ...

    @property
    def stub_size(self) -> int: ...

    @property
    def stub_to_pointer_max_displacement(self) -> int: ...

    def write_trampolines(self, block_addr: int, resolver_addr: int, n: int) -> bytes: ...

    def write_stubs(self, stubs_addr: int, ptrs_addr: int, n: int) -> bytes: ...


@dataclass(frozen=True)
class Subject:
    """One resolver table, its trampolines and stubs, and the contract (spec)
    they must keep."""

    spec: Spec
    spec_path: Path
    frame: Frame
    # instantiate(fn_addr, ctx_addr) -> code with both addresses patched in.
    instantiate: Callable[[int, int], bytes]
    source: str  # where the code came from, for the report
    # The table's own trampolines and stubs; None when it has none (an old
    # tables.json), and then the chain cannot run.
    units: ChainUnits | None = None


@dataclass(frozen=True)
class Finding:
    what: str  # register, memory slot or condition
    expected: str
    got: str


@dataclass
class CheckResult:
    check: str
    status: str  # PASS, FAIL or NA
    method: str  # "unicorn", "native" or "static"
    findings: list[Finding] = field(default_factory=list)
    note: str = ""


def hexw(value: int, bits: int = 64) -> str:
    return f"{value:#0{bits // 4 + 2}x}"
