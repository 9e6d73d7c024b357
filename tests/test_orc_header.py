"""generated/orc_resolvers_llvm.h, the ORC-ready header: one class per ABI,
named <ABI>_ORCABI, with LLVM 19's signatures and constants, writing exactly
what the standalone header's class writes.  Both headers compile together,
warning-free under -Wall -Wextra -pedantic (tests/llvm_jit runs the classes
in LLVM's own lazy JIT).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import gxx_cache
import llvm_oracle as oracle
import pytest

from asmgen.emit.orc_header import orcabi_class
from asmgen.spec.files import spec_files

ROOT = Path(__file__).resolve().parent.parent
GENERATED = ROOT / "generated"
# Addresses every arch's fields can hold (32-bit arches included), close
# enough for every PC-relative field.
FN, CTX, RESOLVER, BLOCK, STUBS, POINTERS = (
    0x12345678,
    0x23456780,
    0x10000000,
    0x10001000,
    0x10002000,
    0x10003000,
)
UNITS = 4


def _program(classes: dict[str, str]) -> str:
    body = ""
    for name, orc in classes.items():
        s, o = f"asmgen::{name}", f"asmgen::{orc}"
        body += f"""  {{
    std::vector<char> A(0x2000), B(0x2000);
    {s}::writeResolverCode(A.data(), {FN:#x}, {CTX:#x});
    {o}::writeResolverCode(B.data(), Addr({RESOLVER:#x}), Addr({FN:#x}), Addr({CTX:#x}));
    bool Resolver = A == B;
    {s}::writeTrampolines(A.data(), {BLOCK:#x}, {RESOLVER:#x}, {UNITS});
    {o}::writeTrampolines(B.data(), Addr({BLOCK:#x}), Addr({RESOLVER:#x}), {UNITS});
    bool Trampolines = A == B;
    {s}::writeIndirectStubsBlock(A.data(), {STUBS:#x}, {POINTERS:#x}, {UNITS});
    {o}::writeIndirectStubsBlock(B.data(), Addr({STUBS:#x}), Addr({POINTERS:#x}), {UNITS});
    bool Stubs = A == B;
    printf("{orc} %u %u %u %u %u %u %d %d %d\\n", {o}::ResolverCodeSize, {o}::PointerSize,
           {o}::TrampolineSize, {o}::StubSize, {o}::StubToPointerMaxDisplacement,
           (unsigned)({s}::StubToPointerMaxDisplacement), Resolver, Trampolines, Stubs);
  }}
"""
    return (
        '#include "orc_resolvers.h"\n'
        '#include "orc_resolvers_llvm.h"\n'
        "#include <cstdio>\n#include <vector>\n"
        "using Addr = llvm::orc::ExecutorAddr;\n"
        f"int main() {{\n{body}}}\n"
    )


@pytest.fixture(scope="module")
def printed(tmp_path_factory, generated_module):
    if not shutil.which("llvm-config-19"):
        pytest.fail("llvm-config-19 not found: `make llvm-dev` installs llvm-19-dev")
    classes = {t.llvm_class: t.abi + "_ORCABI" for t in generated_module.TABLES.values()}
    folder = tmp_path_factory.mktemp("orc_header")
    source = folder / "both.cpp"
    source.write_text(_program(classes))

    def config(*options: str) -> list[str]:
        command = ["llvm-config-19", *options]
        return subprocess.run(command, capture_output=True, text=True, check=True).stdout.split()

    flags = ["-Wall", "-Wextra", "-pedantic", "-Werror", "-O0"]
    # The standalone header leaves the odd address unused, as LLVM's writers do.
    flags.append("-Wno-unused-parameter")
    # Kept by what it compiles (tests/gxx_cache.py).
    binary, errors = gxx_cache.executable(
        "both",
        [*config("--cxxflags"), *flags, f"-I{GENERATED}"],
        [source],
        [*config("--ldflags", "--libs"), f"-Wl,-rpath,{config('--libdir')[0]}"],
        libraries=[oracle.libllvm()],
        scratch=[folder],
        out=folder,
    )
    assert errors == "", errors
    out = subprocess.run([binary], capture_output=True, text=True, check=True).stdout
    return {line.split()[0]: line.split()[1:] for line in out.splitlines()}


def test_one_class_per_abi_named_by_the_scheme(printed):
    assert sorted(printed) == sorted(orcabi_class(f.spec) for f in spec_files())
    assert all(name.endswith("_ORCABI") for name in printed)


def test_constants_are_the_tables(printed):
    abis = json.loads((GENERATED / "tables.json").read_text())["abis"]
    for abi, record in abis.items():
        got = [int(v) for v in printed[f"{abi}_ORCABI"][:6]]
        trampoline, stub = record["trampoline"], record["stub"]
        assert got[:4] == [
            record["size"],
            record["pointer_size"],
            trampoline["size"],
            stub["size"],
        ], abi
        assert got[4] == got[5] == stub["stub_to_pointer_max_displacement"], abi


def test_writes_what_the_standalone_header_writes(printed):
    for name, values in printed.items():
        assert values[6:] == ["1", "1", "1"], name
