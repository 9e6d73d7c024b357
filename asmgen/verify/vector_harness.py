"""Run an x86-64 resolver table natively and report which vector state survives.

The emulator (unicorn 2) models no AVX, so the upper halves of YMM/ZMM and the
AVX-512 mask registers can only be checked on real hardware.  This module
builds a small harness around an instantiated table, in one RWX mapping:

    entry(patterns, out)  keeps `out`, loads every vector (and mask)
                          register from `patterns` and calls a stub
    stub, trampoline      the table's own (its write_stubs and
                          write_trampolines): the stub jumps through its
                          pointer to the trampoline, which calls the resolver
    re-entry              records its arguments and sp, overwrites every
                          vector and mask register and the caller-saved
                          GPRs, returns the landing address
    landing               the "compiled function": stores every vector and
                          mask register into `out`, returns to entry

The harness is assembled by llvm-mc (keystone drops `kmovq` silently).  The
run happens in a child process (`python -m asmgen.verify.vector_harness ABI`), so a broken
table kills the child, not the caller.  The harness is ABI-neutral: it calls
only its own code, so Win64 tables run on this Linux host too.
"""

from __future__ import annotations

import ctypes
import json
import mmap
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from asmgen.build.table import Table
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


@dataclass(frozen=True)
class VectorShape:
    """The vector registers the harness sets: ZMM0-31 and k0-7 with AVX-512F,
    YMM0-15 with AVX."""

    count: int
    width: int  # bytes per register
    masks: int  # number of k registers

    @property
    def name(self) -> str:
        return "zmm" if self.width == 0x40 else "ymm"

    @property
    def size(self) -> int:
        return self.count * self.width + self.masks * 8


def host_shape() -> VectorShape:
    flags = cpu_flags()
    if "avx512f" in flags:
        return VectorShape(0x20, 0x40, 8)
    if "avx" in flags:
        return VectorShape(0x10, 0x20, 0)
    # A machine without AVX cannot show what this module proves: say so loudly.
    raise AsmgenError("this CPU has no AVX (no 'avx' in /proc/cpuinfo); cannot run natively")


def harness_source(shape: VectorShape) -> str:
    move = "vmovdqu64" if shape.width == 0x40 else "vmovdqu"
    regs = [f"%{shape.name}{i}" for i in range(shape.count)]
    masks_at = shape.count * shape.width
    lines = [
        ".text",
        "entry:",
        *(f"    pushq %{r}" for r in ("rbx", "rbp", "r12", "r13", "r14", "r15")),
        "    subq $8, %rsp",  # sp = 0 mod 16 at the call, as a caller leaves it
        *(f"    {move} {i * shape.width}(%rdi), {r}" for i, r in enumerate(regs)),
        *(f"    kmovq {masks_at + 8 * i}(%rdi), %k{i}" for i in range(shape.masks)),
        # `out` in memory: the re-entry function may clobber any register the
        # resolver's convention lets it, and a Win64 resolver keeps no rsi/rdi.
        "    movq %rsi, out(%rip)",
        "    callq *stub(%rip)",
        "    vzeroupper",
        "    addq $8, %rsp",
        *(f"    popq %{r}" for r in ("r15", "r14", "r13", "r12", "rbp", "rbx")),
        "    retq",
        "reentry:",
        *(
            f"    movq %{r}, record+{8 * i}(%rip)"
            for i, r in enumerate(("rdi", "rsi", "rcx", "rdx", "rsp"))
        ),
        *(f"    {move} clobber(%rip), {r}" for r in regs),
        *(f"    kxnorq %k0, %k0, %k{i}" for i in range(shape.masks)),
        *(
            f"    movabsq ${hex(0x5A5A5A5A5A5A5A00 + i)}, %{r}"
            for i, r in enumerate(("rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11"))
        ),
        "    leaq landing(%rip), %rax",
        "    retq",
        "landing:",
        "    movq out(%rip), %rax",
        *(f"    {move} {r}, {i * shape.width}(%rax)" for i, r in enumerate(regs)),
        *(f"    kmovq %k{i}, {masks_at + 8 * i}(%rax)" for i in range(shape.masks)),
        "    retq",
        ".p2align 6",
        "stub: .quad 0",
        "out: .quad 0",
        "record: .zero 64",
        f"clobber: .fill 64, 1, {CLOBBER_BYTE}",
    ]
    return "\n".join(lines) + "\n"


def assemble_harness(
    source: str, triple: str = "x86_64", mattr: str | None = None
) -> tuple[bytes, dict[str, int]]:
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


def run(table: Table) -> dict:
    """Run `table` natively in this process; return what survived."""
    return run_code(
        lambda fn, ctx: table.instantiate({"ReentryFnAddr": fn, "ReentryCtxAddr": ctx}), table
    )


def run_code(instantiate, units) -> dict:
    """Run the resolver `instantiate(reentry_fn, ctx)` returns, reached through
    the stubs and trampolines `units` writes, in this process."""
    shape = host_shape()
    code, symbols = assemble_harness(harness_source(shape))
    buf = mmap.mmap(-1, MAP_SIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    base = ctypes.addressof(ctypes.c_char.from_buffer(buf))
    resolver = instantiate(base + symbols["reentry"], CTX)
    at = Placement(*(base + o for o in (STUBS_AT, POINTERS_AT, TRAMPOLINES_AT, RESOLVER_AT)))
    linked = link(units, at, 8, "little")
    blocks = [("harness", base + HARNESS_AT, code), *linked.blocks]
    blocks.append(("resolver", at.resolver, resolver))
    ends = [at.stubs, at.pointers, at.trampolines, at.resolver, base + MAP_SIZE]
    for (what, address, data), end in zip(blocks, ends, strict=True):
        if address + len(data) > end:
            raise AsmgenError(f"native harness: the {what} do not fit their place")
        buf[address - base : address - base + len(data)] = data
    stub = symbols["stub"]
    buf[stub : stub + 8] = linked.stub.to_bytes(8, "little")
    given = patterns(shape)
    source = ctypes.create_string_buffer(given, len(given))
    out = ctypes.create_string_buffer(len(given))
    entry = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)(base + symbols["entry"])
    entry(ctypes.addressof(source), ctypes.addressof(out))
    seen = out.raw
    record = bytes(buf[symbols["record"] : symbols["record"] + 40])
    words = [int.from_bytes(record[i : i + 8], "little") for i in range(0, 40, 8)]
    return {
        "shape": {"name": shape.name, "count": shape.count, "width": shape.width},
        "masks": shape.masks,
        "trampoline": linked.trampoline,
        "ctx": CTX,
        "reentry_args": dict(zip(("rdi", "rsi", "rcx", "rdx"), words[:4], strict=True)),
        "reentry_sp": words[4],
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


def run_isolated(abi: str, timeout: float = 60) -> Survival:
    """Run `python -m asmgen.verify.vector_harness ABI` in a child process (a crash stays there)."""
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [sys.executable, "-m", "asmgen.verify.vector_harness", abi],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=root,
        check=False,
    )
    if proc.returncode != 0:
        raise AsmgenError(
            f"native run of {abi} failed (exit {proc.returncode}): "
            f"{(proc.stderr.strip().splitlines() or ['no message'])[-1]}"
        )
    return survival(json.loads(proc.stdout))


def main(argv: list[str]) -> int:
    from asmgen.build.pipeline import build
    from asmgen.spec.files import select, spec_files

    try:
        (item,) = select(spec_files(), argv[:1])
        print(json.dumps(run(build(item))))
    except AsmgenError as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
