"""A spec's finished table: the resolver's code and patch points, and its units."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from asmgen.build.frame import Frame
from asmgen.build.patchkinds import ENCODERS
from asmgen.build.reentry import Reentry
from asmgen.build.runtime import PatchPoint, apply_patches
from asmgen.build.source import ListingLine, Statement
from asmgen.build.units import Units
from asmgen.build.unwind import Unwind
from asmgen.spec import Spec


@dataclass(frozen=True)
class Table:
    spec: Spec
    spec_path: Path
    template_path: Path
    frame: Frame
    code: bytes
    statements: tuple[Statement, ...]
    labels: dict[str, int]
    patches: tuple[PatchPoint, ...]
    # The arch's trampoline and stub (units.py), when it has templates for them.
    units: Units | None = None
    # LLVM's newer reentry path (build/reentry.py), where the arch has it.
    reentry: Reentry | None = None
    # The annotated listing (build/disasm.py), which build.pipeline computes
    # once; None in a table that came from layout alone.
    listing: tuple[ListingLine, ...] | None = None
    # Its unwind information (spec `unwind`), which build.pipeline computes.
    unwind: Unwind | None = None

    @property
    def byteorder(self) -> str:
        return self.spec.endian

    def _units(self) -> Units:
        if self.units is None:
            raise ValueError(f"{self.spec.abi}: no trampoline and stub templates")
        return self.units

    # The same sizes and reach the generated module's table objects carry.
    @property
    def trampoline_size(self) -> int:
        return self._units().trampoline.size

    @property
    def stub_size(self) -> int:
        return self._units().stub.size

    @property
    def stub_to_pointer_max_displacement(self) -> int:
        return self._units().stub_to_pointer_max_displacement

    def write_trampolines(self, block_addr: int, resolver_addr: int, n: int) -> bytes:
        """`n` trampolines linked at `block_addr` calling the resolver (and, where
        they reach it through a pointer, the pointer slot after them)."""
        return self._units().blocks.write_trampolines(block_addr, resolver_addr, n)

    def write_stubs(self, stubs_addr: int, ptrs_addr: int, n: int) -> bytes:
        """`n` indirect stubs linked at `stubs_addr`, stub I jumping through the
        pointer at `ptrs_addr + I * pointer size`."""
        return self._units().blocks.write_stubs(stubs_addr, ptrs_addr, n)

    def instantiate(self, addresses: dict[str, int]) -> bytes:
        """The table with every patch applied.  Patches that carry no address
        (only `runtime_word` fields) need no entry in `addresses`."""
        limit = 1 << (8 * self.spec.pointer_size)
        for name, address in addresses.items():
            if not 0 <= address < limit:
                raise ValueError(
                    f"{name}: address {address:#x} does not fit a "
                    f"{self.spec.pointer_size}-byte pointer"
                )
        return apply_patches(self.code, self.patches, addresses, self.byteorder, ENCODERS)
