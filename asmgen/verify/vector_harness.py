"""Run a resolver table natively and report which vector state survives.

The arch's record (`Arch.native_vectors`) gives the harness: its assembly,
which loads every vector register, calls a stub and stores them at the
landing, and the registers its CPU has.  This module assembles it with
llvm-mc, places it in one RWX mapping with the table's own stubs,
trampolines and resolver (its write_stubs and write_trampolines: the stub
jumps through its pointer to the trampoline, which calls the resolver), runs
it in this process and compares what the landing saw with what entry loaded.
Callers run it in a child process (asmgen.verify.forked), so a broken table
kills the child, not the caller.
"""

from __future__ import annotations

import ctypes
import mmap
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from asmgen.arches.model import Arch, NativeVectors, VectorShape
from asmgen.errors import AsmgenError
from asmgen.verify.chain import Placement, link

PATTERN_SEED = 0x11
CLOBBER_BYTE = 0xA5
CTX = 0x0C0FFEE0C0FFEE00
# Offsets in the mapping.
HARNESS_AT = 0x0
STUBS_AT, POINTERS_AT, TRAMPOLINES_AT = 0x1000, 0x2000, 0x3000
RESOLVER_AT = 0x4000
MAP_SIZE = 0x8000


def cpu_flags() -> set[str]:
    """Flags the kernel reports (it hides AVX flags when XSAVE is not enabled)."""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def host_shape(native: NativeVectors) -> VectorShape:
    shape = native.shape(cpu_flags())
    if shape is None:
        # A machine without them cannot show what this module proves: say so loudly.
        raise AsmgenError(f"this CPU has no {native.needs}; cannot run natively")
    return shape


def assemble_harness(
    source: str, triple: str, mattr: str | None = None
) -> tuple[bytes, dict[str, int]]:
    """llvm-mc's object for `source`: its .text bytes and its symbols."""
    from elftools.elf.elffile import ELFFile

    from asmgen.build.llvm_mc import find_llvm_mc

    with tempfile.TemporaryDirectory(prefix="asmgen-native-") as tmp:
        out = Path(tmp) / "harness.o"
        result = subprocess.run(
            [
                find_llvm_mc(),
                f"-triple={triple}",
                *([f"-mattr={mattr}"] if mattr else []),
                "-filetype=obj",
                "-o",
                str(out),
            ],
            input=source,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise AsmgenError(f"llvm-mc rejects the native harness: {result.stderr.strip()}")
        with out.open("rb") as handle:
            elf = ELFFile(handle)
            text = elf.get_section_by_name(".text")
            symbols = {
                s.name: s["st_value"]
                for s in elf.get_section_by_name(".symtab").iter_symbols()
                if s.name
            }
            return text.data(), symbols


def patterns(shape: VectorShape) -> bytes:
    """Distinct, non-zero bytes, unlike the clobber byte and unlike zero."""
    data = bytearray()
    for i in range(shape.size):
        value = (PATTERN_SEED + 7 * i) & 0xFF
        data.append(value if value not in (0, CLOBBER_BYTE) else 0x3C)
    return bytes(data)


def run_code(arch: Arch, instantiate, units) -> dict:
    """Run the resolver `instantiate(reentry_fn, ctx)` returns, reached through
    the stubs and trampolines `units` writes, in this process."""
    native = arch.native_vectors
    if native is None:
        raise AsmgenError(f"no native vector harness for arch {arch.name!r}")
    shape = host_shape(native)
    source = native.source(shape, CLOBBER_BYTE)
    code, symbols = assemble_harness(source, arch.llvm_triple, arch.llvm_mattr)
    buf = mmap.mmap(-1, MAP_SIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    base = ctypes.addressof(ctypes.c_char.from_buffer(buf))
    resolver = instantiate(base + symbols["reentry"], CTX)
    at = Placement(*(base + o for o in (STUBS_AT, POINTERS_AT, TRAMPOLINES_AT, RESOLVER_AT)))
    size, order = arch.pointer_size, "little"
    linked = link(units, at, size, order)
    blocks = [("harness", base + HARNESS_AT, code), *linked.blocks]
    blocks.append(("resolver", at.resolver, resolver))
    ends = [at.stubs, at.pointers, at.trampolines, at.resolver, base + MAP_SIZE]
    for (what, address, data), end in zip(blocks, ends, strict=True):
        if address + len(data) > end:
            raise AsmgenError(f"native harness: the {what} do not fit their place")
        buf[address - base : address - base + len(data)] = data
    stub = symbols["stub"]
    buf[stub : stub + size] = linked.stub.to_bytes(size, order)
    given = patterns(shape)
    source = ctypes.create_string_buffer(given, len(given))
    out = ctypes.create_string_buffer(len(given))
    entry = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)(base + symbols["entry"])
    entry(ctypes.addressof(source), ctypes.addressof(out))
    seen = out.raw
    count = len(native.args) + 1
    record = bytes(buf[symbols["record"] : symbols["record"] + count * size])
    words = [int.from_bytes(record[i : i + size], order) for i in range(0, count * size, size)]
    return {
        "shape": {"name": shape.name, "count": shape.count, "width": shape.width},
        "masks": shape.masks,
        "trampoline": linked.trampoline,
        "ctx": CTX,
        "reentry_args": dict(zip(native.args, words[:-1], strict=True)),
        "reentry_sp": words[-1],
        "given": given.hex(),
        "seen": seen.hex(),
    }


@dataclass(frozen=True)
class Survival:
    """Per register lane: did the landing see what entry loaded?"""

    xmm: tuple[bool, ...]  # low 16 bytes of each register
    upper: tuple[bool, ...]  # bytes 16.. (YMM upper half, and ZMM upper 256 bits)
    masks: tuple[bool, ...]
    reentry_args: dict
    trampoline: int
    reentry_sp: int


def survival(result: dict) -> Survival:
    given, seen = bytes.fromhex(result["given"]), bytes.fromhex(result["seen"])
    count, width = result["shape"]["count"], result["shape"]["width"]
    xmm, upper = [], []
    for i in range(count):
        lo = slice(i * width, i * width + 0x10)
        hi = slice(i * width + 0x10, (i + 1) * width)
        xmm.append(given[lo] == seen[lo])
        upper.append(given[hi] == seen[hi])
    base = count * width
    masks = [
        given[base + 8 * i : base + 8 * i + 8] == seen[base + 8 * i : base + 8 * i + 8]
        for i in range(result["masks"])
    ]
    return Survival(
        tuple(xmm),
        tuple(upper),
        tuple(masks),
        result["reentry_args"],
        result["trampoline"],
        result["reentry_sp"],
    )


def kept_bytes(result: dict, index: int, lo: int, hi: int) -> bool:
    """Did bytes [lo, hi) of vector register `index` reach the landing?"""
    given, seen = bytes.fromhex(result["given"]), bytes.fromhex(result["seen"])
    at = index * result["shape"]["width"]
    return given[at + lo : at + hi] == seen[at + lo : at + hi]
