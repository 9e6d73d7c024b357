"""x86-64's native vector harness (the record's `native_vectors`): unicorn 2
models no AVX, so the upper parts of YMM/ZMM and the AVX-512 mask registers
are checked on the real CPU (asmgen.verify.vector_harness runs it).

The harness, in one RWX mapping beside the table:

    entry(patterns, out)  keeps `out`, loads every vector (and mask)
                          register from `patterns` and calls a stub
    re-entry              records its arguments and sp, overwrites every
                          vector and mask register and the caller-saved
                          GPRs, returns the landing address
    landing               the "compiled function": stores every vector and
                          mask register into `out`, returns to entry

It is assembled by llvm-mc (keystone drops `kmovq` silently).  It calls only
its own code, so Win64 tables run on a Linux host too.
"""

from __future__ import annotations

from asmgen.arches.model import NativeVectors, VectorShape

SAVED = ("rbx", "rbp", "r12", "r13", "r14", "r15")
# The re-entry function records these (both conventions' first two
# arguments) and then sp.
ARGS = ("rdi", "rsi", "rcx", "rdx")
SCRATCH = ("rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11")


def shape(flags: set[str]) -> VectorShape | None:
    """ZMM0-31 and k0-7 with AVX-512F, YMM0-15 with AVX."""
    if "avx512f" in flags:
        return VectorShape("zmm", 0x20, 0x40, 8)
    if "avx" in flags:
        return VectorShape("ymm", 0x10, 0x20, 0)
    return None


def source(shape: VectorShape, clobber: int) -> str:
    move = "vmovdqu64" if shape.width == 0x40 else "vmovdqu"
    regs = [f"%{shape.name}{i}" for i in range(shape.count)]
    masks_at = shape.count * shape.width
    lines = [
        ".text",
        "entry:",
        *(f"    pushq %{r}" for r in SAVED),
        "    subq $8, %rsp",  # sp = 0 mod 16 at the call, as a caller leaves it
        *(f"    {move} {i * shape.width}(%rdi), {r}" for i, r in enumerate(regs)),
        *(f"    kmovq {masks_at + 8 * i}(%rdi), %k{i}" for i in range(shape.masks)),
        # `out` in memory: the re-entry function may clobber any register the
        # resolver's convention lets it, and a Win64 resolver keeps no rsi/rdi.
        "    movq %rsi, out(%rip)",
        "    callq *stub(%rip)",
        "    vzeroupper",
        "    addq $8, %rsp",
        *(f"    popq %{r}" for r in reversed(SAVED)),
        "    retq",
        "reentry:",
        *(f"    movq %{r}, record+{8 * i}(%rip)" for i, r in enumerate((*ARGS, "rsp"))),
        *(f"    {move} clobber(%rip), {r}" for r in regs),
        *(f"    kxnorq %k0, %k0, %k{i}" for i in range(shape.masks)),
        *(f"    movabsq ${hex(0x5A5A5A5A5A5A5A00 + i)}, %{r}" for i, r in enumerate(SCRATCH)),
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
        f"clobber: .fill 64, 1, {clobber}",
    ]
    return "\n".join(lines) + "\n"


NATIVE_VECTORS = NativeVectors(
    shape=shape,
    source=source,
    args=ARGS,
    needs="AVX (no 'avx' in /proc/cpuinfo)",
)
