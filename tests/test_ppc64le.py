"""PowerPC64 LE (ELFv2): the generated PPC64 table in a real process.

unicorn emulates PowerPC big-endian only, so the table runs under
qemu-ppc64le-static in a static program powerpc64le-linux-gnu-gcc builds.
The program's own code stands where asmgen verify's harness cannot look:

- its caller (assembly) loads r2 with a sentinel that is no TOC pointer and
  calls stub 2 through ctr;
- the re-entry function is C, entered at its global entry point, which sets
  r2 to the program's TOC pointer;
- the landing function (assembly, no TOC of its own) records the r2 and r12
  it is entered with and its first two arguments.

ELFv2 needs the landing entered with r12 holding its address (a global entry
point computes its TOC pointer from it) and r2 as the caller left it (a
function without a global entry point runs on its caller's TOC).  The same
run with the resolver's `ld r2, 0x18(r1)` turned into a nop must see the
re-entry function's TOC pointer instead: the check can fail.  The words
compared come from GNU as (powerpc64le-linux-gnu-as), not from asmgen.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import gxx_cache
import llvm_oracle as oracle
import llvm_trees
import pytest
from assembled import assemble_with_addresses
from unit_oracles import assembled_stubs, assembled_trampolines

from asmgen.build.crosscheck import cross_check, supports_both, unexplained
from asmgen.build.pipeline import build, template_for
from asmgen.cli import main
from asmgen.patch import orc_factories
from asmgen.patch import orc_source as orc
from asmgen.spec.files import spec_files

BASE = 0x2_0000_0000  # the mapping the program puts the table's code at
RESOLVER, TRAMPOLINES, STUBS, POINTERS = BASE, BASE + 0x1000, BASE + 0x2000, BASE + 0x3000
UNITS, USED = 4, 2
SENTINEL = 0x5AFE_70C5_AFE7_0C00
# A condition register with every field distinct; CR2-CR4 are bits 23-12.
CR, CR2_4 = 0x1234_5678, 0x00FF_F000
CC = "powerpc64le-linux-gnu-gcc"
PREFIX = "powerpc64le-linux-gnu-"
ROOT = Path(__file__).resolve().parent.parent
TREE = ROOT / "tests" / "fixtures" / "llvm_tree"

PROGRAM_C = r"""
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#include <string.h>

struct { uint64_t r2, r12, r3, r4, cr; } land_obs;
uint64_t cr_after;
void *re_ctx, *re_tramp;
int re_calls;
unsigned char ctx_obj[16];
void landing(void);
uint64_t call_stub(uint64_t stub, uint64_t r2, uint64_t cr);
uint64_t call_cr(void (*fn)(void), uint64_t cr);

/* Writes every CR field; gcc keeps what ELFv2 makes nonvolatile. */
void cr_clobber(void)
{
    __asm__ volatile("li 9, 0\n\tmtcrf 255, 9"
                     : : : "r9", "cr0", "cr1", "cr2", "cr3", "cr4", "cr5", "cr6", "cr7");
}

uint64_t reentry(void *ctx, void *tramp)
{
    re_ctx = ctx;
    re_tramp = tramp;
    re_calls++;
    return (uint64_t)(uintptr_t)&landing;
}

int main(int argc, char **argv)
{
    if (!strcmp(argv[1], "cr")) {
        printf("%llx\n", (unsigned long long)call_cr(cr_clobber, strtoull(argv[2], 0, 0)));
        return 0;
    }
    char *at = mmap((void *)BASE, 0x10000, PROT_READ | PROT_WRITE | PROT_EXEC,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    FILE *f = fopen(argv[1], "rb");
    size_t n = fread(at, 1, 0x10000, f);
    __builtin___clear_cache(at, at + n);
    uint64_t r = call_stub(strtoull(argv[2], 0, 0), strtoull(argv[3], 0, 0),
                           strtoull(argv[4], 0, 0));
    printf("%llx %llx %llx %llx %llx %llx %llx %d %llx %llx\n", (unsigned long long)r,
           (unsigned long long)land_obs.r2, (unsigned long long)land_obs.r12,
           (unsigned long long)land_obs.r3, (unsigned long long)land_obs.r4,
           (unsigned long long)(uintptr_t)re_ctx, (unsigned long long)(uintptr_t)re_tramp,
           re_calls, (unsigned long long)land_obs.cr, (unsigned long long)cr_after);
    return 0;
}
"""

# A re-entry function declared variadic, built at -O0: it stores its
# register arguments r3-r10 in the parameter save area of its caller's frame
# (0x20-0x5f above sp), as ELFv2 lets a variadic callee.
PROGRAM_O0_C = r"""
#include <stdarg.h>
#include <stdint.h>
extern void *re_ctx, *re_tramp;
extern int re_calls;
void landing(void);

uint64_t reentry_va(void *ctx, ...)
{
    va_list ap;
    va_start(ap, ctx);
    re_tramp = va_arg(ap, void *);
    va_end(ap);
    re_ctx = ctx;
    re_calls++;
    return (uint64_t)(uintptr_t)&landing;
}
"""

PROGRAM_S = r"""
    .abiversion 2
    .text
    .globl call_stub
    .type call_stub, @function
call_stub:
    mflr 0
    std 0, 16(1)
    stdu 1, -32(1)
    std 2, 24(1)
    mr 12, 3
    mtctr 12
    mr 2, 4
    li 3, 0x33
    li 4, 0x44
    mtcrf 255, 5
    bctrl
    ld 2, 24(1)
    mfcr 5
    bcl 20, 31, 2f
2:  mflr 11
    addis 11, 11, (cr_after - 2b)@ha
    addi 11, 11, (cr_after - 2b)@l
    std 5, 0(11)
    addi 1, 1, 32
    ld 0, 16(1)
    mtlr 0
    blr
    .size call_stub, . - call_stub

    .globl landing
    .type landing, @function
landing:
    mflr 0
    bcl 20, 31, 1f
1:  mflr 11
    mtlr 0
    addis 11, 11, (land_obs - 1b)@ha
    addi 11, 11, (land_obs - 1b)@l
    std 2, 0(11)
    std 12, 8(11)
    std 3, 16(11)
    std 4, 24(11)
    mfcr 4
    std 4, 32(11)
    lis 3, 0x600d
    blr
    .size landing, . - landing

    .globl call_cr
    .type call_cr, @function
call_cr:
    mflr 0
    std 0, 16(1)
    stdu 1, -32(1)
    std 2, 24(1)
    mr 12, 3
    mtctr 12
    mtcrf 255, 4
    bctrl
    ld 2, 24(1)
    mfcr 3
    addi 1, 1, 32
    ld 0, 16(1)
    mtlr 0
    blr
    .size call_cr, . - call_cr
    .section .note.GNU-stack,"",@progbits
"""


def _gas_word(text: str, tmp: Path) -> bytes:
    """One instruction as GNU as encodes it (little-endian)."""
    (tmp / "one.s").write_text(f"    .text\n    {text}\n")
    subprocess.run([PREFIX + "as", "-o", tmp / "one.o", tmp / "one.s"], check=True)
    subprocess.run(
        [PREFIX + "objcopy", "-O", "binary", "-j", ".text", tmp / "one.o", tmp / "one.bin"],
        check=True,
    )
    return (tmp / "one.bin").read_bytes()


@pytest.fixture(scope="module")
def program(tmp_path_factory) -> tuple[Path, dict[str, int]]:
    tmp = tmp_path_factory.mktemp("ppc64le")
    (tmp / "p.c").write_text(PROGRAM_C.replace("BASE", hex(BASE)))
    (tmp / "p.S").write_text(PROGRAM_S)
    (tmp / "p0.c").write_text(PROGRAM_O0_C)
    subprocess.run([CC, "-O0", "-c", "-o", tmp / "p0.o", tmp / "p0.c"], check=True)
    exe = tmp / "p"
    subprocess.run(
        [CC, "-O2", "-static", "-o", exe, tmp / "p.c", tmp / "p.S", tmp / "p0.o"], check=True
    )
    nm = subprocess.run([PREFIX + "nm", exe], capture_output=True, text=True, check=True)
    symbols = {}
    for line in nm.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3:
            symbols[parts[2]] = int(parts[0], 16)
    return exe, symbols


def _run(program, code: bytes, tmp: Path) -> dict[str, int]:
    exe, _ = program
    (tmp / "code.bin").write_bytes(code)
    stub = STUBS + USED * 32
    done = subprocess.run(
        ["qemu-ppc64le-static", exe, tmp / "code.bin", hex(stub), hex(SENTINEL), hex(CR)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    values = done.stdout.split()
    names = ("result", "r2", "r12", "r3", "r4", "ctx", "tramp", "calls", "cr", "cr_after")
    return {
        name: int(v, 16 if name != "calls" else 10) for name, v in zip(names, values, strict=True)
    }


def _image(table, symbols: dict[str, int], resolver: bytes | None = None) -> bytes:
    code = resolver or table.instantiate(symbols["reentry"], symbols["ctx_obj"])
    tramps = table.write_trampolines(TRAMPOLINES, RESOLVER, UNITS)
    stubs = table.write_stubs(STUBS, POINTERS, UNITS)
    pointers = b"".join(
        (TRAMPOLINES + i * table.trampoline_size).to_bytes(8, "little") for i in range(UNITS)
    )
    image = bytearray(0x4000)
    for at, data in ((RESOLVER, code), (TRAMPOLINES, tramps), (STUBS, stubs), (POINTERS, pointers)):
        image[at - BASE : at - BASE + len(data)] = data
    return bytes(image)


def test_the_chain_keeps_r2_and_enters_the_landing_with_r12(generated_module, program, tmp_path):
    table = generated_module.PPC64
    _, symbols = program
    assert table.trampoline_size == table.stub_size == 32
    got = _run(program, _image(table, symbols), tmp_path)
    assert got["calls"] == 1
    assert got["ctx"] == symbols["ctx_obj"]
    assert got["tramp"] == TRAMPOLINES + USED * table.trampoline_size
    assert (got["r3"], got["r4"]) == (0x33, 0x44)
    assert got["r12"] == symbols["landing"]
    assert got["r2"] == SENTINEL
    assert got["result"] == 0x600D0000
    # Nothing of the chain writes the nonvolatile CR fields; at the landing
    # and back in the caller they are the caller's.
    assert got["cr"] & CR2_4 == got["cr_after"] & CR2_4 == CR & CR2_4


def test_gcc_keeps_exactly_cr2_to_cr4(program):
    """ELFv2's nonvolatile CR fields, from gcc: a function whose inline asm
    clears all eight fields returns with CR2-CR4 as its caller set them and
    the others cleared."""
    exe, _ = program
    done = subprocess.run(
        ["qemu-ppc64le-static", exe, "cr", hex(CR)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert int(done.stdout, 16) == CR & CR2_4


def test_without_the_toc_restore_the_landing_sees_the_reentry_functions_toc(
    generated_module, program, tmp_path
):
    table = generated_module.PPC64
    _, symbols = program
    code = bytearray(table.instantiate(symbols["reentry"], symbols["ctx_obj"]))
    restore, nop = _gas_word("ld 2, 24(1)", tmp_path), _gas_word("nop", tmp_path)
    words = [bytes(code[i : i + 4]) for i in range(0, len(code), 4)]
    assert words.count(restore) == 1, "the resolver restores r2 from the TOC save slot once"
    # ...after saving it there, before the call through ctr.
    assert words.count(_gas_word("std 2, 24(1)", tmp_path)) == 1
    at = words.index(restore) * 4
    code[at : at + 4] = nop
    got = _run(program, _image(table, symbols, bytes(code)), tmp_path)
    assert got["calls"] == 1 and got["result"] == 0x600D0000
    assert got["r2"] != SENTINEL
    # What the re-entry function's global entry point computed: the program's TOC.
    assert got["r2"] == symbols[".TOC."]


def test_a_convention_without_the_frame_header_is_refuted_by_gcc(tree, capsys):
    """ELFv2's 32-byte frame header (stack.link_area), as a convention file
    without it would have it: gcc's code saves its LR at sp+0x10 of the
    caller's frame (the convention check), and the compiled re-entry
    function does so over the register the resolver then keeps there (the
    chain: an argument comes back wrong, once the resolver reserves no more
    than the convention gives: no header, and no parameter save area)."""
    path = tree / "abi_specs" / "conventions" / "ppc64_elfv2.yaml"
    text = path.read_text()
    assert "  home_area: 0x60\n" in text
    text = text.replace("  link_area: 0x20\n", "").replace(
        "  home_area: 0x60\n", "  home_area: 0x0\n"
    )
    text = "\n".join(ln for ln in text.splitlines() if "stack.link_area:" not in ln) + "\n"
    path.write_text(text)
    capsys.readouterr()
    code = main(["verify", "--build", "--project", str(tree), "--format", "json", "PPC64"])
    checks = json.loads(capsys.readouterr().out)["abis"]["PPC64"]["checks"]
    assert code == 1
    findings = {f["what"]: f["got"] for f in checks["convention"]["findings"]}
    assert "[sp+0x10, sp+0x18)" in findings["stack.link_area"]
    assert checks["int_args"]["status"] == "fail"


def test_gnu_as_encodes_every_statement_as_the_table_holds_it(tmp_path):
    """keystone assembles PPC64 (llvm-mc cross-checks it: `asmgen
    cross-check`); GNU as, a third assembler, agrees on every statement of
    the resolver, the trampoline and the stub, placeholders included."""
    (item,) = [f for f in spec_files() if f.spec.abi == "PPC64"]
    table = build(item)
    parts = [
        (table.statements, table.code),
        (table.units.trampoline.statements, table.units.trampoline.unit.code),
        (table.units.stub.statements, table.units.stub.unit.code),
    ]
    checked = 0
    for statements, code in parts:
        lines = [s for s in statements if s.size]
        source = "".join(f"    {s.text.strip()}\n" for s in lines)
        (tmp_path / "all.s").write_text("    .text\n" + source)
        subprocess.run([PREFIX + "as", "-o", tmp_path / "all.o", tmp_path / "all.s"], check=True)
        subprocess.run(
            [PREFIX + "objcopy", "-O", "binary", "-j", ".text", tmp_path / "all.o", tmp_path / "b"],
            check=True,
        )
        gas = (tmp_path / "b").read_bytes()
        ours = b"".join(code[s.offset : s.offset + s.size] for s in lines)
        assert gas == ours
        checked += len(lines)
    assert checked > 100


def _ppc64():
    (item,) = [f for f in spec_files() if f.spec.abi == "PPC64"]
    return item


def test_keystone_and_llvm_mc_agree_on_ppc64():
    item = _ppc64()
    assert supports_both(item.spec)
    assert unexplained(cross_check(item.path)) == []


def test_instantiate_equals_assembling_the_real_addresses():
    """The lis/ori/sldi/oris/ori chains carry nothing between their 16-bit
    pieces: addresses with every piece's top bit set and clear, assembled
    into the template by keystone, equal the patched table."""
    item = _ppc64()
    table = build(item)
    template = template_for(item)
    pieces = [0x0000, 0x7FFF, 0x8000, 0xFFFF]
    # Each piece value in each of the four 16-bit positions.
    values = [sum(pieces[(r + k) % 4] << (16 * k) for k in range(4)) for r in range(4)] + [
        0x1122_3344_5566_7788,
        0xFFFF_FFFF_FFFF_FFFF,
    ]
    for i, ctx in enumerate(values):
        addresses = {"ReentryCtxAddr": ctx, "ReentryFnAddr": values[(i + 1) % len(values)]}
        assembled = assemble_with_addresses(item.spec, template, addresses)
        assert table.instantiate(addresses) == assembled, {k: hex(v) for k, v in addresses.items()}


# (block or stubs, resolver or pointers, count), addresses whose 16-bit pieces
# have their top bits set and clear.
UNIT_CASES = [(0x10000, 0x7F0000, 1), (0x7FFF12345000, 0x7FFF9ABC8888, 3), (0xFFFF8000, 0x8000, 2)]


def test_trampolines_and_stubs_equal_llvm_mc():
    """Every trampoline and stub as llvm-mc encodes the concrete instructions
    (written in tests/unit_oracles.py with PowerPC's @highest/@higher/@h/@l
    operators, not taken from the templates)."""
    table = build(_ppc64())
    for first, second, n in UNIT_CASES:
        got = table.write_trampolines(first, second, n)
        assert got.hex() == assembled_trampolines("PPC64", first, second, n).hex()
        got = table.write_stubs(first, second, n)
        assert got.hex() == assembled_stubs("PPC64", first, second, n).hex()


DRIVER_CPP = r"""
#include "llvm/ExecutionEngine/Orc/OrcABISupport.h"
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>
using namespace llvm::orc;

int main(int argc, char **argv) {
  uint64_t Base = strtoull(argv[1], 0, 0), Fn = strtoull(argv[2], 0, 0),
           Ctx = strtoull(argv[3], 0, 0);
  uint64_t R = Base, T = Base + 0x1000, S = Base + 0x2000, P = Base + 0x3000;
  std::vector<char> Image(0x4000, 0);
  OrcPPC64::writeResolverCode(Image.data(), ExecutorAddr(R), ExecutorAddr(Fn),
                              ExecutorAddr(Ctx));
  OrcPPC64::writeTrampolines(Image.data() + 0x1000, ExecutorAddr(T),
                             ExecutorAddr(R), 4);
  OrcPPC64::writeIndirectStubsBlock(Image.data() + 0x2000, ExecutorAddr(S),
                                    ExecutorAddr(P), 4);
  for (uint64_t I = 0; I != 4; ++I) {
    uint64_t Tramp = T + I * OrcPPC64::TrampolineSize;
    memcpy(Image.data() + 0x3000 + 8 * I, &Tramp, 8);
  }
  fwrite(Image.data(), 1, Image.size(), stdout);
  return 0;
}
"""


def test_asmgen_patchs_llvm_writers_run_on_ppc64le(capsys, generated_module, program, tmp_path):
    """`asmgen patch` on the stand-in LLVM tree adds OrcPPC64 and the
    Triple::ppc64le cases (in the four factory functions); the patched
    OrcABISupport.cpp, compiled on the host against LLVM 19, writes the
    resolver, trampolines and stubs that the ppc64le program then runs (and
    the Python module's bytes)."""
    repo = llvm_trees.scratch_tree(tmp_path / "llvm", llvm_trees.llvm_files(TREE))
    assert main(["patch", "--llvm-root", str(repo), "PPC64", "-o", str(tmp_path / "p.diff")]) == 0
    diff = (tmp_path / "p.diff").read_text()
    assert "+class LLVM_CLASS_ABI OrcPPC64 {" in diff
    assert diff.count("+    case Triple::ppc64le:") + diff.count("+  case Triple::ppc64le:") == 4
    assert llvm_trees.apply(repo, tmp_path / "p.diff") == ""
    for rel in orc_factories.FACTORY_PATHS:
        assert oracle.syntax_check(repo, rel) == ""
    capsys.readouterr()
    (tmp_path / "driver.cpp").write_text(DRIVER_CPP)
    include = ["-I", str(repo / "llvm" / "include"), "-DLLVM_ABI=", "-DLLVM_CLASS_ABI="]
    driver, errors = gxx_cache.executable(
        "driver",
        ["-std=c++17", "-O1", "-w", *include, *oracle.llvm_config("--cxxflags"), "-DNDEBUG"],
        [repo / orc.CPP_PATH, tmp_path / "driver.cpp"],
        [*oracle.llvm_config("--ldflags"), *oracle.llvm_config("--libs")],
        libraries=[oracle.libllvm()],
        scratch=[tmp_path],
        out=tmp_path,
    )
    assert errors == "", errors
    _, symbols = program
    written = subprocess.run(
        [driver, hex(BASE), hex(symbols["reentry"]), hex(symbols["ctx_obj"])],
        capture_output=True,
        check=True,
    ).stdout
    assert written == _image(generated_module.PPC64, symbols)
    got = _run(program, written, tmp_path)
    assert got["calls"] == 1 and got["ctx"] == symbols["ctx_obj"]
    assert got["tramp"] == TRAMPOLINES + USED * 32
    assert (got["r2"], got["r12"], got["result"]) == (SENTINEL, symbols["landing"], 0x600D0000)


def test_a_register_without_percent_is_one_line_on_stderr(tree):
    """keystone's PowerPC parser reads `r1` as no register (it wants `%r1`),
    prints its own diagnostic and loops; the command's whole stderr is still
    one `file:line: error:` line (tests/bad_inputs has the template)."""
    bad = ROOT / "tests" / "bad_inputs" / "templates" / "ppc64le" / "register_without_percent.j2"
    target = tree / "templates" / "ppc64le" / "resolver.s.j2"
    target.write_text(bad.read_text())
    done = subprocess.run(
        [sys.executable, "-m", "asmgen", "generate", "PPC64", "--project", str(tree)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"{target}:55: error: keystone does not finish on 'std     r0,")


def test_a_variadic_reentry_function_writes_only_the_parameter_save_area(program, tree, tmp_path):
    """The resolver's 0x60 bytes below its saves (the convention's home
    area: the frame header and the parameter save area) are where a variadic
    re-entry function stores r3-r10: the chain keeps every argument.  The
    same resolver built from a convention without them keeps its saves
    there, and the callee overwrites them (the saved return address among
    them)."""
    exe, symbols = program
    addresses = {"ReentryFnAddr": symbols["reentry_va"], "ReentryCtxAddr": symbols["ctx_obj"]}
    conv = tree / "abi_specs" / "conventions" / "ppc64_elfv2.yaml"
    original = conv.read_text()
    assert "  home_area: 0x60\n" in original
    without = original.replace("  home_area: 0x60\n", "  home_area: 0x0\n")
    results = []
    for text in (original, without):
        conv.write_text(text)
        (item,) = [f for f in spec_files(tree / "abi_specs") if f.spec.abi == "PPC64"]
        table = build(item, tree / "templates")
        (tmp_path / "code.bin").write_bytes(_image(table, symbols, table.instantiate(addresses)))
        stub = hex(STUBS + USED * 32)
        done = subprocess.run(
            ["qemu-ppc64le-static", exe, tmp_path / "code.bin", stub, hex(SENTINEL), hex(CR)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        results.append(done)
    kept, lost = results
    assert kept.returncode == 0, kept.stderr
    values = kept.stdout.split()
    assert int(values[0], 16) == 0x600D0000
    assert (int(values[3], 16), int(values[4], 16)) == (0x33, 0x44)
    assert int(values[6], 16) == TRAMPOLINES + USED * 32
    # Without the area, the process dies (qemu: SIGSEGV) or the landing gets
    # the callee's spills.
    assert lost.returncode != 0 or lost.stdout.split()[3:5] != values[3:5], lost.stdout
