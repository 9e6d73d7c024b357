"""s390x against outside oracles.

- LLVM 19 itself: its factory functions, as `asmgen patch` extends them, pick
  OrcSystemZ for an s390x triple, and LLVM's own stub manager, lazy
  call-through manager, compile-callback manager and EPCIndirectionUtils
  (for an executor claiming the triple) write its units (run on this host,
  which only writes the target's bytes).  The bytes are decoded
  with z/Architecture's encodings (Principles of Operation: LGRL is RIL-b
  C4x8 with a signed halfword offset, BASR 0D, BCR 15 07F), not asmgen's.
  Unpatched, LLVM 19 has no s390x case.
- GNU as (binutils, s390x-linux-gnu-as) assembles the trampolines and stubs
  from instructions written here with their real targets.
- qemu-s390x, through `asmgen verify`: a resolver that reserves no register
  save area, or writes a wrong back chain, is caught, and so is a convention
  file without the register save area.
- llvm-mc against keystone, on the spec keystone builds, and GNU as against
  both, on every resolver.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import gxx_cache
import llvm_oracle as oracle
import llvm_trees
import pytest
from scratch_tree import tree_options

from asmgen.build.crosscheck import cross_check, supports_both
from asmgen.build.discover import assemble_template
from asmgen.build.frame import compute_frame
from asmgen.build.patchkinds import KINDS
from asmgen.cli import main
from asmgen.patch import orc_factories
from asmgen.spec import load_spec

ROOT = Path(__file__).resolve().parent.parent
TREE = ROOT / "tests" / "fixtures" / "llvm_tree"
DRIVER = ROOT / "tests" / "llvm19" / "factories.cpp"
TRIPLE = "s390x-unknown-linux-gnu"
STUB_TARGET = 0x1234_5678_9ABC
GAS = "s390x-linux-gnu-as"


def _build(out: Path, sources: list[Path], include: list[str], tree: Path | None = None) -> Path:
    """The driver with `sources`, linked with LLVM 19 (kept by what it
    compiles: tests/gxx_cache.py; `tree` is the scratch tree they are in)."""
    exe, errors = gxx_cache.executable(
        "factories",
        ["-std=c++17", "-O0", "-w", *include, *oracle.llvm_config("--cxxflags")],
        [DRIVER, *sources],
        [*oracle.llvm_config("--ldflags"), *oracle.llvm_config("--libs")],
        libraries=[oracle.libllvm()],
        scratch=[tree] if tree else [],
        out=out,
    )
    assert errors == "", errors
    return exe


def _field(data: bytes) -> int:
    """An LGRL's RI2 as this host's writer stored it (host order: on s390x,
    the instruction's own), in bytes."""
    return int.from_bytes(data[2:6], "little", signed=True) * 2


class Driver:
    def __init__(self, exe: Path, expect: int = 4) -> None:
        self.proc = subprocess.Popen(
            [str(exe), TRIPLE, hex(STUB_TARGET)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.lines: dict[str, tuple[int, bytes]] = {}
        self.errors: list[str] = []
        while len(self.lines) + len(self.errors) < expect:
            line = self.proc.stdout.readline().split(maxsplit=2)
            if line[0] == "error":
                self.errors.append(" ".join(line[1:]))
            else:
                self.lines[line[0]] = (int(line[1], 16), bytes.fromhex(line[2]))

    def word(self, address: int) -> int:
        self.proc.stdin.write(f"{address:#x}\n")
        self.proc.stdin.flush()
        what, at, data = self.proc.stdout.readline().split()
        assert (what, int(at, 16)) == ("word", address)
        return int.from_bytes(bytes.fromhex(data), "little")

    def close(self) -> None:
        self.proc.stdin.close()
        assert self.proc.wait(timeout=60) == 0


@pytest.fixture(scope="module")
def patched(tmp_path_factory) -> Path:
    """The fixture tree patched for SystemZ, as a maintainer applies it."""
    repo = tmp_path_factory.mktemp("s390x") / "llvm-project"
    llvm_trees.patched_tree(repo, llvm_trees.llvm_files(TREE), "SystemZ")
    return repo


def test_llvm_picks_orc_systemz_once_patched(patched, tmp_path):
    sources = [patched / rel for rel in (orc_factories.orc.CPP_PATH, *orc_factories.FACTORY_PATHS)]
    include = ["-I", str(patched / "llvm" / "include"), "-DLLVM_ABI=", "-DLLVM_CLASS_ABI="]
    driver = Driver(_build(tmp_path, sources, include, patched))
    assert driver.errors == []
    # The stub: lgrl %r1, <its pointer>; br %r1; the pointer holds the target.
    at, data = driver.lines["stub"]
    assert (data[0], data[1], data[6:8]) == (0xC4, 0x18, bytes.fromhex("07f1"))
    assert driver.word(at + _field(data)) == STUB_TARGET
    # The same through EPCIndirectionUtils, for an executor with the triple.
    at, data = driver.lines["epcstub"]
    assert (data[0], data[1], data[6:8]) == (0xC4, 0x18, bytes.fromhex("07f1"))
    assert driver.word(at + _field(data)) == STUB_TARGET
    # Both trampolines: lgrl %r1, <resolver pointer>; basr %r1, %r1; the
    # pointer holds a resolver that opens with lay %r15, -N(%r15) (E3F0...71).
    for kind in ("trampoline", "callback"):
        at, data = driver.lines[kind]
        assert (data[0], data[1], data[6:8]) == (0xC4, 0x18, bytes.fromhex("0d11")), kind
        resolver = driver.word(at + _field(data))
        first = driver.word(resolver).to_bytes(8, "little")
        assert (first[:2], first[5]) == (bytes.fromhex("e3f0"), 0x71), (kind, first.hex())
        assert first[4] & 0x80, "lay lowers r15: a negative DH"
    driver.close()


def test_llvm_19_lacks_s390x(tmp_path):
    """Unpatched, LLVM 19's managers refuse an s390x triple."""
    exe = _build(tmp_path, [], [])
    done = subprocess.run(
        [str(exe), TRIPLE, hex(STUB_TARGET), "managers"],
        input="",
        capture_output=True,
        text=True,
        check=True,
    )
    refused = f"No callback manager available for {TRIPLE}"
    assert done.stdout.splitlines() == [
        f"error createLocalLazyCallThroughManager: {refused}",
        f"error createLocalCompileCallbackManager: {refused}",
    ]


def _gas(source: str, tmp_path: Path) -> bytes:
    obj, raw = tmp_path / "u.o", tmp_path / "u.bin"
    done = subprocess.run(
        [GAS, "-march=z13", "-o", str(obj)], input=source, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    objcopy = shutil.which("s390x-linux-gnu-objcopy") or "objcopy"
    subprocess.run([objcopy, "-O", "binary", "-j", ".text", str(obj), str(raw)], check=True)
    return raw.read_bytes()


@pytest.mark.parametrize("abi", ["SystemZ", "SystemZ_NoVector"])
def test_units_match_gnu_as(generated_module, tmp_path, abi):
    table = generated_module.TABLES[abi]
    n, resolver, block = 5, 0x3_0000_0010, 0x2_0000_0000
    source = ".text\n" + "".join(" lgrl %r1, ptr\n basr %r1, %r1\n" for _ in range(n))
    source += f" .balign 8\nptr: .quad {resolver:#x}\n"
    assert table.write_trampolines(block, resolver, n).hex() == _gas(source, tmp_path).hex()
    # Stubs with their pointers after them, then before them (pointers are
    # zero in the gas image; write_stubs leaves them to the JIT).
    for gap in (0x10000, -0x10000):
        ours = table.write_stubs(block, block + gap, n)
        pointers = "".join(f"p{i}: .quad 0\n" for i in range(n))
        stubs = "".join(f" lgrl %r1, p{i}\n br %r1\n" for i in range(n))
        if gap > 0:
            image = _gas(f".text\n{stubs} .org {gap:#x}\n{pointers}", tmp_path)
            assert ours.hex() == image[: len(ours)].hex()
        else:
            image = _gas(f".text\n{pointers} .org {-gap:#x}\n{stubs}", tmp_path)
            assert ours.hex() == image[-gap:].hex()


def _verify(capsys, tree: Path, abi: str) -> dict:
    capsys.readouterr()
    code = main(["verify", "--format", "json", "--build", *tree_options(tree), abi])
    doc = json.loads(capsys.readouterr().out)
    assert code == 1
    return doc["abis"][abi]["checks"]


def _runs(check: dict) -> dict[str, dict]:
    return {run["method"]: run for run in check["runs"]}


def test_a_wrong_back_chain_is_caught(tree, capsys):
    """The back chain must hold the caller's r15: one written 8 bytes off is
    a broken chain, found by unicorn."""
    path = tree / "templates" / "s390x" / "resolver.s.j2"
    text = path.read_text()
    old = "    lay     %{{ call.int_args[0] }}, {{ hex(total) }}(%r15)\n"
    assert text.count(old) == 1
    path.write_text(text.replace(old, old.replace("hex(total)", "hex(total + 0x8)")))
    checks = _verify(capsys, tree, "SystemZ")
    home = _runs(checks["shadow_space"])["unicorn"]
    assert [f["what"] for f in home["findings"]] == ["back chain [sp+0x0]"]


def test_no_register_save_area_is_caught_by_compiled_code(tree, capsys):
    """A resolver that keeps its saves where the re-entry function's
    register save area belongs (resolver.shadow_space 0, declared): the -O0
    re-entry function compiled by gcc stores its own registers over them,
    under qemu-s390x as in unicorn."""
    path = tree / "abi_specs" / "s390x.yaml"
    text = path.read_text()
    old = "  vector_state: {kind: q-regs}\n"
    assert text.count(old) == 1
    text = text.replace(old, old + "  shadow_space: 0x0\n")
    text += (
        "deviations:\n  - field: home_area\n    reason: >-\n"
        "      A test: the saves sit in the callee's register save area.\n"
    )
    path.write_text(text)
    checks = _verify(capsys, tree, "SystemZ")
    # unicorn sees the saves in the home area; under qemu the compiled
    # re-entry function's own stores land on saved r2 and v6 (f6).
    assert _runs(checks["shadow_space"])["unicorn"]["findings"]
    lost = {
        check: [f["what"] for f in _runs(checks[check])["qemu-s390x"]["findings"]]
        for check in ("int_args", "fp_args")
    }
    assert lost == {"int_args": ["r2 (landing_mixed)"], "fp_args": ["v6 (landing_mixed)"]}


def test_a_file_without_the_register_save_area_is_refuted(tree, capsys):
    """s390x_elf with no home area: gcc's -O0 variadic callee stores its
    register arguments into the caller's frame (the 160-byte area), which
    the compiled run reports against the file."""
    path = tree / "abi_specs" / "conventions" / "s390x_elf.yaml"
    text = path.read_text()
    for old, new in (("  home_area: 0xa0\n", "  home_area: 0x0\n"), ("  back_chain: 0x0\n", "")):
        assert text.count(old) == 1
        text = text.replace(old, new)
    text = text.replace(
        '  stack.back_chain: "zabi: 1.2.2 The Stack Frame (the optional back chain at offset 0)"\n',
        "",
    )
    path.write_text(text)
    (tree / "abi_specs" / "s390x_novector.yaml").unlink()
    checks = _verify(capsys, tree, "SystemZ")
    conv = _runs(checks["convention"])["qemu-s390x"]
    assert [f["what"] for f in conv["findings"]] == ["stack.home_area"]
    assert "wrote the caller's frame" in conv["findings"][0]["got"]


def test_keystone_and_llvm_mc_agree_on_the_keystone_spec():
    """keystone builds SystemZ_NoVector; llvm-mc must encode every statement
    alike.  SystemZ stores vector registers, which keystone 0.9.2 cannot
    assemble: llvm-mc builds it alone."""
    specs = ROOT / "abi_specs"
    assert supports_both(load_spec(specs / "s390x_novector.yaml"))
    diffs = cross_check(specs / "s390x_novector.yaml")
    assert diffs == []
    assert not supports_both(load_spec(specs / "s390x.yaml"))


@pytest.mark.parametrize("stem", ["s390x", "s390x_novector"])
def test_gnu_as_assembles_the_resolver_as_llvm_mc_does(generated_module, tmp_path, stem):
    """The resolver's statements, as the template renders them for llvm-mc
    with the generated table's placeholders, assembled by GNU as: the same
    bytes as the table llvm-mc (or keystone) built.  (keystone's rendering
    writes relative-long targets as absolute numbers, which GNU as and
    llvm-mc read as displacements: resolver.s.j2.)"""
    built = load_spec(ROOT / "abi_specs" / f"{stem}.yaml")
    spec = built.model_copy(update={"backend": "llvm-mc"})
    template = ROOT / "templates" / "s390x" / spec.template

    def placeholder(index, use):
        kind = KINDS[use.kind]
        return kind.encode(spec.placeholders.get(use.patch, 0)) if kind.carries_address else 0

    _, assembly = assemble_template(spec, template, compute_frame(spec), placeholder)
    lines = []
    for statement in assembly.statements:
        lines += [f"{label}:" for label in statement.labels]
        lines.append(statement.text)
    table = generated_module.TABLES[built.abi]
    assert _gas(".text\n" + "\n".join(lines) + "\n", tmp_path).hex() == table.code.hex()
