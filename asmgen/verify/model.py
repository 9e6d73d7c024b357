"""What verify checks (a subject) and what it finds (results)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from asmgen.build.frame import Frame
from asmgen.spec.schema import Spec

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
    # The frame computed from the spec; None for code that no spec describes
    # (LLVM's, under `asmgen review`): the static frame check is then n/a.
    frame: Frame | None
    # instantiate(fn_addr, ctx_addr) -> code with both addresses patched in.
    instantiate: Callable[[int, int], bytes]
    source: str  # where the code came from, for the report
    # The table's own trampolines and stubs; None when it has none (an old
    # tables.json), and then the chain cannot run.
    units: ChainUnits | None = None
    # stack(lo, hi) -> what the resolver keeps at [sp+lo, sp+hi) at the call,
    # read from its code (stackimage.py); None: from `frame` and the spec.
    stack: Callable[[int, int], list[str]] | None = None
    # The re-entry function's arguments: (context, trampoline) for
    # OrcABISupport's resolvers; only the trampoline on LLVM's newer reentry
    # path (`__orc_rt_resolve(trampoline)`, verify/reentry.py).
    takes_context: bool = True


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


def broke(finding: Finding, convention: str) -> Finding:
    """A register's finding, as the caller convention that lost it sees it."""
    return Finding(
        f"{finding.what} broke {convention}",
        f"{finding.expected} (kept by {convention})",
        f"{finding.got} (lost by the resolver)",
    )
