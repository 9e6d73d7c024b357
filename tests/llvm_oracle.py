"""LLVM 19's compiled ORC writers as the oracle for asmgen's.

`tests/llvm19/writers.cpp` calls the nine LLVM ABI classes' `writeResolverCode`,
`writeTrampolines` and `writeIndirectStubsBlock` and prints what they wrote.  It
is built three ways (each binary cached under the hash of what it is built
from): linked with Debian's libLLVM-19.so (LLVM's own writers), over asmgen's
generated C++ header, and linked with a patched OrcABISupport.cpp (what
`asmgen patch` leaves in a tree).  Every answer is compared element by element
(bytes, or instruction words) with the generated Python module, over address
sets at the edges: displacements of both signs, near and at the reach limits,
counts 1..9 and beyond.  Where they differ is data (tests/llvm19/differences.yaml):
each difference says where, what each side writes, which implementations show
it, and why; an undeclared one fails, and so does a declared one that no
longer occurs.  Used by tests/test_llvm19_oracle.py and tests/llvm_release.py.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import gxx_cache
import yaml

from asmgen.build.patchkinds import KINDS

HERE = Path(__file__).resolve().parent
DRIVER = HERE / "llvm19" / "writers.cpp"
DIFFERENCES = HERE / "llvm19" / "differences.yaml"
LLVM_CONFIG = "llvm-config-19"
HEADER_REL = "llvm/ExecutionEngine/Orc/OrcABISupport.h"
# The ABI classes LLVM defines (class Orc<name>), in the driver's spelling.
LLVM_ABIS = (
    "AArch64",
    "X86_64_SysV",
    "X86_64_Win32",
    "I386",
    "Mips32Le",
    "Mips32Be",
    "Mips64",
    "Riscv64",
    "LoongArch64",
)
CONSTANTS = (
    "PointerSize",
    "TrampolineSize",
    "StubSize",
    "StubToPointerMaxDisplacement",
    "ResolverCodeSize",
)
BACKENDS = ("llvm", "header", "patched")


# -- building the drivers ---------------------------------------------------------


@cache
def llvm_config(option: str) -> list[str]:
    out = subprocess.run([LLVM_CONFIG, option], capture_output=True, text=True, check=True)
    return out.stdout.split()


def installed_header() -> Path:
    """LLVM 19's OrcABISupport.h as llvm-19-dev installs it."""
    return Path(llvm_config("--includedir")[0]) / HEADER_REL


def libllvm() -> Path:
    return Path(llvm_config("--libdir")[0]) / f"lib{llvm_config('--libs')[0][2:]}.so"


def _compiler_identity() -> str:
    out = subprocess.run(["g++", "--version"], capture_output=True, text=True, check=True)
    return out.stdout.splitlines()[0]


def build_driver(
    cache_dir: Path,
    name: str,
    *,
    args: list[str],
    inputs: list[Path],
    link_llvm: bool,
    tree: Path | None = None,
) -> Path:
    """The driver compiled with `args` (sources and flags), cached under the
    hash of the driver, every file in `inputs`, the flags and the toolchain.
    `tree` is a scratch folder whose files are all in `inputs`: its path is
    left out of the key, so a new scratch copy of the same files is a hit."""
    key = hashlib.sha256()
    for part in [DRIVER.read_bytes(), *(p.read_bytes() for p in inputs)]:
        key.update(hashlib.sha256(part).digest())
    identity = [a.replace(str(tree), "<tree>") if tree else a for a in args]
    identity += [_compiler_identity()]
    if link_llvm:
        lib = libllvm().resolve()
        stat = lib.stat()
        identity += [str(lib), str(stat.st_size), str(stat.st_mtime_ns)]
    key.update("\0".join(identity).encode())
    exe = cache_dir / f"{name}-{key.hexdigest()[:20]}"
    if exe.exists():
        return exe
    cache_dir.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(dir=cache_dir)) / name
    command = ["g++", "-std=c++17", "-O1", "-w", *args, str(DRIVER), "-o", str(temp)]
    if link_llvm:
        command += [*llvm_config("--ldflags"), *llvm_config("--libs")]
    built = subprocess.run(command, capture_output=True, text=True, check=False)
    if built.returncode != 0:
        raise RuntimeError(f"building the {name} driver failed:\n{built.stderr[-3000:]}")
    os.replace(temp, exe)
    shutil.rmtree(temp.parent, ignore_errors=True)
    return exe


def llvm_driver(cache_dir: Path) -> Path:
    """LLVM 19's own writers: the installed header, libLLVM-19.so."""
    return build_driver(
        cache_dir,
        "llvm19",
        args=llvm_config("--cxxflags"),
        inputs=[installed_header()],
        link_llvm=True,
    )


def header_driver(cache_dir: Path, generated: Path) -> Path:
    """asmgen's generated C++ header (assertions on: it refuses what it cannot reach)."""
    return build_driver(
        cache_dir,
        "header",
        args=["-DASMGEN_HEADER", "-I", str(generated)],
        inputs=[generated / "orc_resolvers.h"],
        link_llvm=False,
    )


def patched_driver(cache_dir: Path, tree: Path, cpp: str, scratch: bool = False) -> Path:
    """The writers of a patched tree: its header first on the include path, its
    .cpp compiled in, LLVM 19's headers and library for the rest.  NDEBUG as in
    LLVM's release builds: LLVM's range asserts take the symmetric bound,
    narrower than the reach one way (AArch64's ldr reaches -1 MiB, not +1 MiB).
    The export macros of later trees, which LLVM 19's Compiler.h lacks, are
    empty, as in a static build.  A `scratch` tree holds only those two
    files (tests/llvm_trees.py): its binary is cached whatever its folder."""
    header = tree / "llvm" / "include" / HEADER_REL
    include = ["-I", str(tree / "llvm" / "include"), "-DLLVM_ABI=", "-DLLVM_CLASS_ABI="]
    return build_driver(
        cache_dir,
        "patched",
        args=[*include, *llvm_config("--cxxflags"), "-DNDEBUG", str(tree / cpp)],
        inputs=[header, tree / cpp],
        link_llvm=True,
        tree=tree if scratch else None,
    )


def syntax_check(tree: Path, rel: str) -> str:
    """`rel` of `tree` compiled with g++ -fsyntax-only (templates are
    instantiated) against LLVM 19's headers, the tree's header first and the
    later trees' export macros empty (as patched_driver); the errors, or "".
    In the tests a unit that compiled is kept under its preprocessed text
    (tests/gxx_cache.py)."""
    flags = [
        *("-std=c++17", "-w"),
        *("-I", str(tree / "llvm" / "include"), "-DLLVM_ABI=", "-DLLVM_CLASS_ABI="),
        *llvm_config("--cxxflags"),
    ]
    return gxx_cache.syntax_check(flags, tree / rel, scratch=[tree])


def ask(driver: Path, requests: list[str]) -> list[str]:
    ran = subprocess.run(
        [str(driver)], input="".join(requests), capture_output=True, text=True, check=True
    )
    answers = ran.stdout.splitlines()
    if len(answers) != len(requests):
        raise RuntimeError(f"{driver.name}: {len(requests)} requests, {len(answers)} answers")
    return answers


def constants(driver: Path) -> dict[str, dict[str, int]]:
    answers = ask(driver, [f"C {abi}\n" for abi in LLVM_ABIS])
    return {
        abi: {k: int(v, 16) for k, v in (item.split("=") for item in line.split())}
        for abi, line in zip(LLVM_ABIS, answers, strict=True)
    }


# -- the cases --------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    abi: str
    kind: str  # "R" resolver (a = target, b = fn, c = ctx), "T" trampolines, "S" stubs
    a: int
    b: int
    c: int


RESOLVER_VALUES = (
    0,
    1,
    0x7FFF,
    0x8000,
    0xFFFF,
    0x10000,
    0x12345678,
    0x7FFF7FFF,
    0x7FFF8000,
    0x7FFFFFFF,
    0x80000000,
    0xFFFF7FFF,
    0xFFFF8000,
    0xFFFFFFFF,
    0x100000000,
    0x7FFFFFFF8000,
    0x800080008000,
    0x7FFF7FFF7FFF7FFF,
    0x8000000000000000,
    0xFFFFFFFFFFFFFFFF,
)
TRAMPOLINE_COUNTS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 16, 31, 64, 255)
STUB_COUNTS = (1, 2, 3, 4, 5, 8, 17)


def _wide(table) -> bool:
    return table.pointer_size == 8


def _mask(table) -> int:
    return (1 << (8 * table.pointer_size)) - 1


def _pc_relative(unit) -> list:
    return [f for f in unit.fields if f.anchor is not None]


def stub_displacements(table, llvm_reach: int) -> list[int]:
    """Pointer minus stub: small, at and just past each end of the stubs' reach
    (multiples of 8, as pointer blocks are aligned), and LLVM's own bound."""
    out = {8, -8, 0x1000, -0x1000, llvm_reach, -llvm_reach, 1 << 32}
    for f in _pc_relative(table.stub):
        up, down = f.high + f.anchor, f.low + f.anchor
        out |= {up // 8 * 8, up // 8 * 8 + 8, -(-down // 8 * 8), -(-down // 8 * 8) - 8}
    return sorted(out)


def cases(module, llvm: dict[str, dict[str, int]], seed: int = 19) -> list[Case]:
    rng = random.Random(seed)
    out: list[Case] = []
    for abi in LLVM_ABIS:
        table = module.TABLES[abi]
        mask = _mask(table)
        values = [v for v in RESOLVER_VALUES if v <= mask]
        for v in values:
            out += [Case(abi, "R", 0x1000, v, 0x5A5A5A5A), Case(abi, "R", 0x1000, 0x12345678, v)]
        out += [
            Case(abi, "R", 0x1000, rng.randint(0, mask), rng.randint(0, mask)) for _ in range(8)
        ]
        bases = [0x10000, 0x7FFF0000, 0xFFFF0000]
        bases += [0x7FFF12345000, 0xFFFFFFFFFFFF0000] if _wide(table) else []
        for n in TRAMPOLINE_COUNTS:
            for block in bases:
                for rel in (0x10, -0x10, 0x1000, -0x1000, 0x7FFF0000, -0x7FFF0000, 8 * n, -8):
                    out.append(Case(abi, "T", block, (block + rel) & mask, n))
        if _pc_relative(table.stub):
            reach = llvm[abi]["StubToPointerMaxDisplacement"]
            for n in STUB_COUNTS:
                for stubs in (0x100000000, 0x7FFF00000000):
                    for d in stub_displacements(table, reach):
                        out.append(Case(abi, "S", stubs, (stubs + d) & mask, n))
        else:
            pointers = [0x10000, 0x7FFF8000, 0x7FFFFFF0, 0x80000000, 0xFFFF7FF0, 0xFFFFFFF0]
            pointers += [0x7FFFFFFF8000, 0x800080007FF0, 0xFFFFFFFFFFFF7FF0] if _wide(table) else []
            for n in STUB_COUNTS:
                for p in pointers:
                    out.append(Case(abi, "S", 0x7FFF0000 if p < 0x7FFF0000 else 0x1000, p, n))
    # Large blocks: LLVM's x86-64 trampolines compute the displacement in 32 bits.
    for abi in ("X86_64_SysV", "X86_64_Win32"):
        out += [Case(abi, "T", 0x7F0000000000, 0x7F0000400000, n) for n in (8192, 8193)]
    return out


def ours(module, case: Case) -> bytes | None:
    """What the generated Python module writes; None where it refuses."""
    table = module.TABLES[case.abi]
    try:
        if case.kind == "R":
            return table.instantiate(case.b, case.c)
        if case.kind == "T":
            return table.write_trampolines(case.a, case.b, case.c)
        return table.write_stubs(case.a, case.b, case.c)
    except ValueError:
        return None


def request(case: Case, length: int) -> str:
    return f"{case.kind} {case.abi} {case.a:x} {case.b:x} {case.c:x} {length:x}\n"


def shown_length(module, case: Case, theirs: dict[str, int], mine: bytes | None) -> int:
    """Bytes to show: what ours wrote, and at least what the other side's sizes say."""
    table = module.TABLES[case.abi]
    if case.kind == "R":
        own, other = table.size, theirs["ResolverCodeSize"]
    elif case.kind == "T":
        own, other = case.c * table.trampoline_size, case.c * theirs["TrampolineSize"]
    else:
        own, other = case.c * table.stub_size, case.c * theirs["StubSize"]
    return max(len(mine) if mine is not None else own, other)


# -- comparing ----------------------------------------------------------------------


def _element_size(table) -> int:
    return 1 if table.element == "uint8_t" else 4


def their_elements(dump: str, size: int) -> list[str]:
    """A driver's dump (host byte order, `..` unwritten) as elements: bytes, or
    words by value; a word with an unwritten byte keeps its dump."""
    assert sys.byteorder == "little", "the drivers print host-order words"
    width = 2 * size
    chunks = [dump[i : i + width] for i in range(0, len(dump), width)]
    if size == 1:
        return chunks
    return [c if "." in c else f"{int.from_bytes(bytes.fromhex(c), 'little'):08x}" for c in chunks]


def our_elements(data: bytes, size: int, order: str) -> list[str]:
    if size == 1:
        return [f"{b:02x}" for b in data]
    return [f"{int.from_bytes(data[i : i + 4], order):08x}" for i in range(0, len(data), 4)]


@dataclass(frozen=True)
class Difference:
    """A run of differing elements inside one resolver, trampoline or stub."""

    abi: str
    where: str  # resolver, trampoline, stub, after trampolines
    at: int  # byte offset inside it
    llvm: str  # what the compared implementation wrote ("" = nothing there)
    asmgen: str  # what the generated Python module wrote


def _place(module, case: Case, offset: int) -> tuple[str, int, int]:
    table = module.TABLES[case.abi]
    if case.kind == "R":
        return "resolver", 0, offset
    if case.kind == "S":
        return "stub", offset // table.stub_size, offset % table.stub_size
    block = case.c * table.trampoline_size
    if offset < block:
        return "trampoline", offset // table.trampoline_size, offset % table.trampoline_size
    return "after trampolines", 0, offset - block


def differences(module, case: Case, dump: str, mine: bytes) -> list[Difference]:
    table = module.TABLES[case.abi]
    size = _element_size(table)
    theirs = their_elements(dump, size)
    own = our_elements(mine, size, table.byteorder)
    joiner = "" if size == 1 else " "
    runs: list[tuple[tuple[str, int], int, int, list[str], list[str]]] = []
    for index in range(max(len(theirs), len(own))):
        a = theirs[index] if index < len(theirs) else ""
        b = own[index] if index < len(own) else ""
        if a == b:
            continue
        where, unit, at = _place(module, case, index * size)
        last = runs[-1] if runs else None
        if last and last[0] == (where, unit) and last[2] == index:
            runs[-1] = (last[0], last[1], index + 1, [*last[3], a], [*last[4], b])
        else:
            runs.append(((where, unit), at, index + 1, [a], [b]))
    return [
        Difference(
            case.abi,
            key[0],
            at,
            joiner.join(x for x in a if x),
            joiner.join(x for x in b if x),
        )
        for key, at, _, a, b in runs
    ]


@dataclass
class Declarations:
    """tests/llvm19/differences.yaml, indexed for matching."""

    entries: list[dict]
    constants: list[dict]
    index: dict[tuple, str] = field(default_factory=dict)
    constant_index: dict[tuple, str] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path = DIFFERENCES) -> Declarations:
        data = yaml.safe_load(path.read_text())
        out = cls(data["differences"], data["constants"])
        for entry in out.entries:
            for abi in entry["abis"]:
                key = (abi, entry["where"], entry["at"], entry["llvm"], entry["asmgen"])
                out.index[key] = entry["id"]
        for entry in out.constants:
            for abi in entry["abis"]:
                key = (abi, entry["member"], entry["llvm"], entry["asmgen"])
                out.constant_index[key] = entry["id"]
        return out

    def seen_in(self, ident: str) -> set[str]:
        for entry in [*self.entries, *self.constants]:
            if entry["id"] == ident:
                return set(entry["seen_in"])
        raise KeyError(ident)


@dataclass
class Outcome:
    """One backend against the Python module."""

    backend: str
    compared: int = 0
    identical: int = 0
    declared: Counter = field(default_factory=Counter)  # id -> cases showing it
    undeclared: list[tuple[Case, Difference]] = field(default_factory=list)
    overflows: list[Case] = field(default_factory=list)
    constants: dict[str, dict[str, int]] = field(default_factory=dict)

    def stale(self, declarations: Declarations) -> list[str]:
        """Declared for this backend but never seen."""
        ids = [e["id"] for e in [*declarations.entries, *declarations.constants]]
        return [i for i in ids if self.backend in declarations.seen_in(i) and not self.declared[i]]


def our_constants(module, abi: str) -> dict[str, int]:
    table = module.TABLES[abi]
    return {
        "PointerSize": table.pointer_size,
        "TrampolineSize": table.trampoline_size,
        "StubSize": table.stub_size,
        "StubToPointerMaxDisplacement": table.stub_to_pointer_max_displacement,
        "ResolverCodeSize": table.size,
    }


def compare(
    backend: str,
    driver: Path,
    module,
    declarations: Declarations,
    all_cases: list[Case],
    labels: dict[str, str] | None = None,
) -> Outcome:
    """Run every case ours writes and match each difference against the
    declarations of `backend` (or, per ABI, of the backend `labels` names: the
    classes a partial patch left as LLVM wrote them)."""
    outcome = Outcome(backend, constants=constants(driver))

    def known(key: tuple, index: dict, abi: str) -> str | None:
        ident = index.get(key)
        label = (labels or {}).get(abi, backend)
        return ident if ident is not None and label in declarations.seen_in(ident) else None

    for abi, theirs in outcome.constants.items():
        for member, value in our_constants(module, abi).items():
            if theirs[member] == value:
                continue
            ident = known((abi, member, theirs[member], value), declarations.constant_index, abi)
            if ident is None:
                diff = Difference(abi, member, 0, f"{theirs[member]:#x}", f"{value:#x}")
                outcome.undeclared.append((Case(abi, "C", 0, 0, 0), diff))
            else:
                outcome.declared[ident] += 1
    mine = [ours(module, case) for case in all_cases]
    run = [(case, m) for case, m in zip(all_cases, mine, strict=True) if m is not None]
    requests = [
        request(case, shown_length(module, case, outcome.constants[case.abi], m)) for case, m in run
    ]
    for (case, m), dump in zip(run, ask(driver, requests), strict=True):
        outcome.compared += 1
        if dump.endswith(" overflow"):
            outcome.overflows.append(case)
            continue
        found = differences(module, case, dump, m)
        if not found:
            outcome.identical += 1
        seen = set()
        for diff in found:
            key = (diff.abi, diff.where, diff.at, diff.llvm, diff.asmgen)
            ident = known(key, declarations.index, diff.abi)
            if ident is None:
                outcome.undeclared.append((case, diff))
            else:
                seen.add(ident)
        for ident in seen:
            outcome.declared[ident] += 1
    return outcome


# -- where a stub really loads from -------------------------------------------------


def _signed(value: int, bits: int) -> int:
    return value - (1 << bits) if value >> (bits - 1) & 1 else value


def loaded_from(unit, data: bytes, site: int, order: str) -> int | None:
    """The address a PC-relative unit written at `site` reads its pointer from,
    decoded from its bytes with asmgen's field layout (kinds' shifts; a %lo
    partner adds its signed bits); None for absolute units."""
    fields = _pc_relative(unit)
    if not fields:
        return None
    total = 0
    for unit_field in fields:
        f = unit_field.field
        container = int.from_bytes(data[f.offset : f.offset + f.size], order)
        raw = _signed((container >> f.shift) & ((1 << f.bits) - 1), f.bits)
        total += raw << KINDS[f.kind].shift
    return (site + fields[0].anchor + total) & ((1 << 64) - 1)


def stubs_loaded_from(module, case: Case, dump: str) -> list[int | None]:
    table = module.TABLES[case.abi]
    data = bytes.fromhex(dump.replace("..", "00"))
    size = table.stub_size
    return [
        loaded_from(table.stub, data[i * size : (i + 1) * size], case.a + i * size, "little")
        for i in range(case.c)
    ]


def reach_cases(module, llvm: dict[str, dict[str, int]]) -> list[Case]:
    """Stub blocks every stub of which LLVM 19's StubToPointerMaxDisplacement
    allows, but some of which asmgen refuses: out of the instruction's reach."""
    out = []
    for abi in LLVM_ABIS:
        table = module.TABLES[abi]
        if not _pc_relative(table.stub):
            continue
        bound = llvm[abi]["StubToPointerMaxDisplacement"]
        for d in stub_displacements(table, bound):
            for n in (1, 3):
                stubs = 0x100000000
                case = Case(abi, "S", stubs, stubs + d, n)
                spans = [d + i * (table.pointer_size - table.stub_size) for i in range(n)]
                if ours(module, case) is None and all(abs(s) <= bound for s in spans):
                    out.append(case)
    return out
