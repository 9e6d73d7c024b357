"""One side of an LLVM review: its classes' resolver records, what its own
trampoline and stub writers write, and the checks that need no run.

The resolver records come from reading the source (llvm_tables).  The
trampolines and stubs come from the side's writers compiled into a driver
(llvm_writers): two of each, written at fixed addresses, are the unit records
the review disassembles and aligns like a resolver (keyed by the writer,
`OrcX86_64_Base::writeTrampolines`, which several classes share).  The same
driver runs each class's writeResolverCode, and any byte where the compiled
writer and the Python reading of it disagree is reported.  Without a compiler
the review covers the resolver tables only, and says so.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from asmgen.arches import ARCHES
from asmgen.review.llvm_inputs import Tree
from asmgen.review.llvm_reach import stub_reach
from asmgen.review.llvm_tables import UNIT_WRITERS, Conventions, Finding, LlvmClass, read_tree
from asmgen.review.llvm_writers import Driver, Unavailable, build

# Where the unit records are written: two units each, pointers a page past the stubs.
UNIT_COUNT = 2
BLOCK, RESOLVER_AT, STUBS, POINTERS = 0x10000, 0x8000, 0x20000, 0x21000
# Addresses for comparing the compiled resolver writer with the reading of it.
CHECK_VALUES = ((0x7EC7_3C2D_1E0F_5678, 0x1234_5678_9ABC_DEF0), (0x7000_8000, 0x6000_F000))
SLACK = 256  # bytes past the expected end a writer may write


def swap_words(data: bytes, size: int) -> bytes:
    """Words of `size` bytes in the other byte order."""
    if size <= 1:
        return data
    padded = data + bytes(-len(data) % size)
    return b"".join(padded[i : i + size][::-1] for i in range(0, len(padded), size))[: len(data)]


@dataclass
class LlvmSide:
    tree: Tree
    classes: dict[str, LlvmClass]
    driver: Driver | None
    writers_note: str  # where the trampolines and stubs come from, or why not from the side
    templates: Path  # asmgen's templates, whose units stand in when the side's do not run
    units: dict[str, dict] = field(default_factory=dict)  # writer -> unit record
    notes: dict[str, list[str]] = field(default_factory=dict)  # class -> reader notes

    @property
    def label(self) -> str:
        return self.tree.label

    def fingerprint(self, name: str) -> str:
        """Everything a class's verdict depends on: equal on both sides, equal verdicts."""
        cls = self.classes[name]
        units = [self.units.get(writer, {}).get("hex") for writer in sorted(cls.units.values())]
        parts = [cls.record, cls.contract.how, units, self.driver is None, self.notes.get(name)]
        return json.dumps(parts, sort_keys=True, default=str)

    def order_fix(self, name: str):
        """What the driver writes for class `name` (words in this host's byte order,
        as ORC writes them) in the class's byte order."""
        cls = self.classes[name]
        size = ARCHES[cls.record["arch"]].element_size
        other = cls.endian != sys.byteorder
        return lambda data: swap_words(data, size) if other else data

    def resolver(self, name: str, target: int, fn_addr: int, ctx_addr: int) -> bytes:
        """The compiled writeResolverCode's output for class `name`."""
        cls = self.classes[name]
        n = max(cls.record["size"], cls.record["constants"].get("ResolverCodeSize", 0)) + SLACK
        answer = self.driver.ask([f"R {name} {target:x} {fn_addr:x} {ctx_addr:x} {n:x}"])[0]
        return self.order_fix(name)(answer.data)

    def chain_units(self, name: str) -> DriverUnits | None:
        """Class `name`'s trampolines and stubs for verify's chain, from the compiled
        writers; None when they cannot be run (no driver, a writer or size missing)."""
        cls = self.classes[name]
        constants = cls.record["constants"]
        sizes = [constants.get("TrampolineSize"), constants.get("StubSize")]
        if self.driver is None or set(cls.units) != set(UNIT_WRITERS) or None in sizes:
            return None
        reach = constants.get("StubToPointerMaxDisplacement", 1 << 31)
        return DriverUnits(self, name, sizes[0], sizes[1], reach)

    def block(self, kind: str, name: str, a: int, b: int, count: int) -> bytes:
        """What class `name`'s trampoline (T) or stub (S) writer writes for `count` units."""
        cls = self.classes[name]
        size = cls.record["constants"].get("TrampolineSize" if kind == "T" else "StubSize", 64)
        n = count * max(size, 1) + SLACK
        answer = self.driver.ask([f"{kind} {name} {a:x} {b:x} {count:x} {n:x}"])[0]
        return self.order_fix(name)(answer.data)


@dataclass(frozen=True)
class DriverUnits:
    """A class's trampolines and stubs as its side's compiled writers write them."""

    side: LlvmSide
    name: str
    trampoline_size: int
    stub_size: int
    stub_to_pointer_max_displacement: int

    def write_trampolines(self, block_addr: int, resolver_addr: int, n: int) -> bytes:
        return self.side.block("T", self.name, block_addr, resolver_addr, n)

    def write_stubs(self, stubs_addr: int, ptrs_addr: int, n: int) -> bytes:
        return self.side.block("S", self.name, stubs_addr, ptrs_addr, n)


def _entries(classes: dict[str, LlvmClass]) -> list[tuple[str, bool, bool]]:
    return [(n, "trampolines" in c.units, "stubs" in c.units) for n, c in classes.items()]


def read_side(tree: Tree, conventions: Conventions, compile_writers: bool = True) -> LlvmSide:
    classes = read_tree(tree.root, conventions)

    def made(driver: Driver | None, note: str) -> LlvmSide:
        return LlvmSide(tree, classes, driver, note, conventions.templates)

    if not compile_writers:
        return made(None, "this side's writers were not compiled (--no-compile)")
    try:
        driver = build(tree.root, _entries(classes))
    except Unavailable as exc:
        return made(None, f"this side's writers could not be compiled: {exc}")
    side = made(driver, "this side's writers, compiled")
    try:
        _check_reading(side)
        _unit_records(side)
    except Unavailable as exc:
        side.driver, side.units = None, {}
        side.writers_note = f"this side's writers did not run: {exc}"
    return side


def _check_reading(side: LlvmSide) -> None:
    """The Python reading of each resolver writer against the compiled writer."""
    for name, cls in side.classes.items():
        bits = 8 * cls.record["pointer_size"]
        for fn_addr, ctx_addr in CHECK_VALUES:
            fn_addr, ctx_addr = fn_addr % (1 << bits), ctx_addr % (1 << bits)
            read = cls.evaluate(0, fn_addr, ctx_addr)
            compiled = side.resolver(name, 0, fn_addr, ctx_addr)
            if read != compiled:
                at = next(
                    (
                        i
                        for i in range(max(len(read), len(compiled)))
                        if read[i : i + 1] != compiled[i : i + 1]
                    ),
                    0,
                )
                side.notes.setdefault(name, []).append(
                    f"the compiled writeResolverCode writes {compiled[at : at + 8].hex()} at "
                    f"{at:#x} where asmgen's reading of the source has "
                    f"{read[at : at + 8].hex()}; verify runs the compiled writer"
                )
                break


def _unit_records(side: LlvmSide) -> None:
    """Two trampolines and two stubs of each writer, and the size checks on them."""
    for name, cls in side.classes.items():
        constants = cls.record["constants"]
        for kind, key, (a, b) in (
            ("trampolines", "T", (BLOCK, RESOLVER_AT)),
            ("stubs", "S", (STUBS, POINTERS)),
        ):
            writer = cls.units.get(kind)
            if writer is None:
                continue
            data = side.block(key, name, a, b, UNIT_COUNT)
            _unit_size(cls, kind, writer, constants, data)
            if kind == "stubs" and side.chain_units(name) is not None:
                reach = stub_reach(side.chain_units(name), cls.contract.spec)
                if reach:
                    cls.findings.append(Finding("reach:StubToPointerMaxDisplacement", reach))
            if writer in side.units:
                continue
            side.units[writer] = {
                "element": cls.record["element"],
                "size": len(data),
                "hex": data.hex(),
                "patches": {},
                "llvm_class": writer.split("::")[0],
                "arch": cls.record["arch"],
                "endian": cls.endian,
                "syntax": cls.record["syntax"],
                "pointer_size": cls.record["pointer_size"],
                "unit": kind,
                "written": f"{UNIT_COUNT} {kind} at {a:#x}, "
                + (f"resolver at {b:#x}" if key == "T" else f"pointers at {b:#x}"),
            }


def _unit_size(cls: LlvmClass, kind: str, writer: str, constants: dict, data: bytes) -> None:
    """A writer that writes past the units its class's size constant gives it."""
    member = "TrampolineSize" if kind == "trampolines" else "StubSize"
    size = constants.get(member)
    if size is None:
        return
    allowed = UNIT_COUNT * size
    if kind == "trampolines":
        # The resolver's address may follow the last trampoline, pointer-aligned.
        pointer = cls.record["pointer_size"]
        allowed = -(-allowed // pointer) * pointer + pointer
    if len(data) > allowed:
        cls.findings.append(
            Finding(
                f"size:{member}",
                f"{member} is {size:#x}, but {writer} writes {len(data):#x} bytes for "
                f"{UNIT_COUNT} {kind} ({len(data) // UNIT_COUNT:#x} a unit)",
            )
        )
