"""Every table runs against compiled code for its target: natively (x86-64
System V, i386), under wine (Microsoft x64) and under qemu-user (AArch64,
MIPS32 LE/BE, MIPS64, RISC-V 64).  The convention files' facts are confirmed
by the compilers' own code, and the known defects come out with their causes.

`make test` installs the toolchains (`make toolchains`), so these runs must
really happen here: a missing toolchain fails the suite rather than skipping.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import re
from pathlib import Path

import pytest
from scratch_tree import tree_options

from asmgen.arches import ARCHES
from asmgen.cli import main
from asmgen.resources import TEMPLATES_DIR
from asmgen.spec.files import spec_files
from asmgen.verify.compiled import COMPILED_CHECKS, run_compiled
from asmgen.verify.runner import subjects_from_generated, verify

ROOT = Path(__file__).resolve().parent.parent
# How each ABI's tables must run on an x86-64 Debian machine after `make toolchains`.
METHODS = {
    "X86_64_SysV": "native",
    "X86_64_SysV_AVX": "native",
    "X86_64_SysV_AVX_Fixed": "native",
    "X86_64_SysV_CET": "native",
    "X86_64_SysV_Lean": "native",
    "X86_64_SysV_ShadowStack": "native",
    "X86_64_Win32": "wine",
    "X86_64_Win32_AVX": "wine",
    "X86_64_Win32_Lean": "wine",
    "X86_64_Win32_seed_initial": "wine",
    "X86_64_Win32_ShadowStack": "wine",
    "I386": "native",
    "AArch64": "qemu-aarch64",
    "AArch64_BTI": "qemu-aarch64",
    "AArch64_GCS_BTI": "qemu-aarch64",
    "Mips32Le": "qemu-mipsel",
    "Mips32Be": "qemu-mips",
    "Mips64": "qemu-mips64el",
    "Riscv64": "qemu-riscv64",
    "Riscv64_Aligned": "qemu-riscv64",
    # unicorn emulates PowerPC big-endian only: ppc64le runs compiled only.
    "PPC64": "qemu-ppc64le",
    "SystemZ": "qemu-s390x",
    "SystemZ_NoVector": "qemu-s390x",
    # Debian 12 has no LoongArch cross compiler or qemu-user.
    "LoongArch64": "-",
    "LoongArch64_Aligned": "-",
}
pytestmark = pytest.mark.skipif(
    platform.machine() != "x86_64", reason="native and wine runs need an x86-64 host"
)


def _verify_json(capsys, *args: str) -> tuple[int, dict]:
    capsys.readouterr()
    code = main(["verify", "--format", "json", *args])
    return code, json.loads(capsys.readouterr().out)


@pytest.fixture
def document(verified_generated):
    """`asmgen verify --format json` on the generated tables, run once (conftest.py)."""
    code, document = verified_generated
    assert code == 0, json.dumps(document)[-2000:]
    return document


@pytest.fixture(scope="module")
def subjects():
    found = subjects_from_generated(spec_files(), ROOT / "generated" / "orc_resolvers.py")
    return {s.spec.abi: s for s in found}


def test_every_table_ran_against_compiled_code(document):
    abis = document["abis"]
    assert {abi: report["compiled"] for abi, report in abis.items()} == METHODS
    for abi, method in METHODS.items():
        checks = abis[abi]["checks"]
        if method == "-":
            assert checks["convention"]["outcome"] == "n/a"
            assert "no LoongArch cross compiler" in checks["convention"]["note"]
            continue
        assert checks["convention"]["outcome"] == "ok", abi
        assert checks["convention"]["method"] == method
        for check in COMPILED_CHECKS:
            # Every check ran under the compiled method (n/a only where the
            # convention has nothing to check) and, but for `convention`, in
            # unicorn where unicorn runs the arch (not PowerPC little-endian).
            runs = {r["method"]: r for r in checks[check]["runs"]}
            assert method in runs, (abi, check)
            for run in runs.values():
                if run["status"] == "n/a":
                    # Not emulated: the arch (unicorn 2 runs PowerPC big-endian
                    # only) or a register unicorn lacks (EmuFacts.unmodeled: s390x's fpc).
                    unmodeled = run["method"] in ("none", "unicorn") and run["note"].startswith(
                        "not emulated"
                    )
                    assert run["note"].startswith("the convention has") or unmodeled, (
                        abi,
                        check,
                        run,
                    )
            if check != "convention" and checks[check]["outcome"] != "n/a":
                ran = [m for m, r in runs.items() if r["status"] != "n/a"]
                assert checks[check]["method"] == "+".join(ran), (abi, check)
                assert method in ran, (abi, check)


def test_every_convention_is_confirmed_by_its_compiler(document):
    targets = {(t["convention"], t["endian"]): t for t in document["compiled_targets"]}
    expected = {
        ("sysv_amd64", "little"): "native",
        ("ms_x64", "little"): "wine",
        ("i386_sysv", "little"): "native",
        ("aapcs64", "little"): "qemu-aarch64",
        ("mips_o32", "little"): "qemu-mipsel",
        ("mips_o32", "big"): "qemu-mips",
        ("mips_n64", "little"): "qemu-mips64el",
        ("riscv_lp64d", "little"): "qemu-riscv64",
        ("ppc64_elfv2", "little"): "qemu-ppc64le",
        ("s390x_elf", "big"): "qemu-s390x",
        ("s390x_elf_novector", "big"): "qemu-s390x",
        ("loongarch_lp64d", "little"): "none",
    }
    assert {k: t["method"] for k, t in targets.items()} == expected
    facts = {
        "args",
        "callee_saved",
        "returns",
        "stack.home_area",
        "stack.link_area",
        "stack.align",
        "stack.red_zone",
    }
    for key, target in targets.items():
        if target["method"] == "none":
            assert not target["ran"] and not target["facts"]
            continue
        assert target["ran"] and {f["fact"] for f in target["facts"]} == facts, key
        assert all(f["ok"] for f in target["facts"]), target["facts"]
    spilled = {k: f["detail"] for k, t in targets.items() for f in t["facts"]}
    home = {
        k: next(f["detail"] for f in t["facts"] if f["fact"] == "stack.home_area")
        for k, t in targets.items()
        if t["facts"]
    }
    assert spilled and "spilled rcx, rdx, r8, r9 into [sp, sp+0x20)" in home[("ms_x64", "little")]
    assert "spilled a0, a1, a2, a3 into [sp, sp+0x10)" in home[("mips_o32", "big")]
    assert "wrote nothing" in home[("sysv_amd64", "little")]
    link = {
        k: next(f["detail"] for f in t["facts"] if f["fact"] == "stack.link_area")
        for k, t in targets.items()
        if t["facts"]
    }
    # ELFv2: the LR save doubleword of the caller's frame header.
    assert "wrote [sp+0x10, sp+0x18) of its caller's frame" in link[("ppc64_elfv2", "little")]
    assert "wrote nothing" in link[("aapcs64", "little")]


def _run(checks: dict, check: str, method: str) -> dict:
    return next(r for r in checks[check]["runs"] if r["method"] == method)


def test_llvm_defects_come_out_of_compiled_code(document):
    abis = document["abis"]
    for abi, method, regs in (
        ("Mips32Le", "qemu-mipsel", ["f12", "f14"]),
        ("Mips32Be", "qemu-mips", ["f12", "f14"]),
        ("Mips64", "qemu-mips64el", [f"f{i}" for i in range(12, 20)]),
        ("Riscv64", "qemu-riscv64", [f"fa{i}" for i in range(8)]),
    ):
        run = _run(abis[abi]["checks"], "fp_args", method)
        assert run["status"] == "fail"
        assert [f["what"].split()[0] for f in run["findings"]] == regs
        assert abis[abi]["checks"]["fp_args"]["outcome"] == "declared"
    align = _run(abis["Riscv64"]["checks"], "stack_align", "qemu-riscv64")
    assert align["findings"][0]["got"] == "0x8 mod 0x10"
    # The fixed variants pass the same runs.
    for abi in ("Riscv64_Aligned", "X86_64_Win32", "AArch64"):
        assert {c["outcome"] for c in abis[abi]["checks"].values()} <= {"ok", "n/a", "declared"}


def test_the_seed_table_fails_under_wine_and_the_cause_is_named(document):
    checks = document["abis"]["X86_64_Win32_seed_initial"]["checks"]
    control = _run(checks, "fp_control", "wine")
    # LLVM's signature at -O0 spills ctx (a real heap-like address, low 16 bits
    # 0x7000) over the saved FCW; the x87 keeps its defined bits: 0x1040.
    fcw = next(f for f in control["findings"] if f["what"].startswith("fcw"))
    assert (fcw["expected"], fcw["got"]) == ("0xf7f", "0x1040")
    x87 = next(f for f in control["findings"] if "x87" in f["what"])
    assert "EXCEPTION_FLT_INVALID_OPERATION at landing_int+" in x87["got"]
    assert "rcx at sp+0x0 over fxsave64 area bytes 0x0-0x7: FCW (bytes 0x0-0x1)" in control["note"]
    assert "saved by `fxsave64 (%rsp)` at resolver+0x21" in control["note"]
    home = _run(checks, "shadow_space", "wine")
    assert home["status"] == "fail"
    fault = home["findings"][0]["got"]
    assert "EXCEPTION_ACCESS_VIOLATION at resolver+0x48: fxrstor64 (%rsp)" in fault
    # The worst callee's fourth parameter (r9) lands on the saved MXCSR.
    assert (
        "r9 at sp+0x18 over fxsave64 area bytes 0x18-0x1f: MXCSR (bytes 0x18-0x1b)"
        in (home["note"])
    )
    assert checks["shadow_space"]["outcome"] == checks["fp_control"]["outcome"] == "declared"


def _swap_landing_move(subject):
    """LLVM 19's MIPS resolvers: the landing move sits in the delay slot of `jr $t9`."""
    order = subject.spec.endian

    def instantiate(fn: int, ctx: int) -> bytes:
        code = bytearray(subject.instantiate(fn, ctx))
        jr = code.rindex((0x03200008).to_bytes(4, order))  # jr $t9
        code[jr - 4 : jr], code[jr : jr + 4] = code[jr : jr + 4], code[jr - 4 : jr]
        return bytes(code)

    return dataclasses.replace(subject, instantiate=instantiate)


def test_mips_delay_slot_reentry_names_the_jump_and_the_late_write(subjects):
    mutated = [_swap_landing_move(subjects[a]) for a in ("Mips32Le", "Mips32Be", "Mips64")]
    expected = {
        "Mips32Le": ("0xf8", "move $t9, $v0", "0xfc", "lw $t9, 0x5c($sp)` at resolver+0x98"),
        "Mips32Be": ("0xf8", "move $t9, $v1", "0xfc", "lw $t9, 0x5c($sp)` at resolver+0x98"),
        "Mips64": ("0x118", "move $t9, $v0", "0x11c", "ld $t9, 0xb8($sp)` at resolver+0xb4"),
    }
    for report in verify(mutated):
        landing = report.outcomes["landing_pc"]
        assert landing.outcome == "FAIL", report.abi
        assert sorted(r.method for r in landing.runs if r.status == "fail") == sorted(
            ["unicorn", METHODS[report.abi]]
        )
        jump, move, slot, restore = expected[report.abi]
        for run in landing.runs:
            assert f"`jr $t9` at resolver+{jump} reads t9 before `{move}`" in run.note
            assert f"in its delay slot (resolver+{slot}) writes it" in run.note
            assert f"the jump takes t9 as `{restore} left it" in run.note
        # The symptom the issue saw (trampoline_arg) is no longer what is reported.
        assert report.outcomes["trampoline_arg"].outcome == "ok"


class _NextPointer:
    """Every stub jumps through its neighbour's pointer slot."""

    def __init__(self, units):
        self._units = units

    def __getattr__(self, name):
        return getattr(self._units, name)

    def write_stubs(self, stubs: int, ptrs: int, n: int) -> bytes:
        return self._units.write_stubs(stubs, ptrs + self._units.pointer_size, n)


def test_a_broken_stub_fails_under_every_compiled_method(subjects):
    broken = [
        dataclasses.replace(s, units=_NextPointer(s.units))
        for abi, s in subjects.items()
        if METHODS[abi] != "-"
    ]
    found = run_compiled(broken, TEMPLATES_DIR)
    for subject, results in zip(broken, found.results, strict=True):
        tramp = results["trampoline_arg"]
        assert (tramp.status, tramp.method) == ("fail", METHODS[subject.spec.abi])
        assert re.search(r"trampolines\+0x[0-9a-f]+", tramp.findings[0].got), tramp.findings


WRONG_CONVENTIONS = {
    # file, edit, the fact the compiled code refutes, the finding's text
    "sysv r12 caller-saved": (
        "sysv_amd64",
        ("rbx, rbp, r12, r13", "rbx, rbp, r13"),
        "callee_saved",
        "r12 is not listed callee-saved, but compiled code kept it",
    ),
    "sysv rsi callee-saved": (
        "sysv_amd64",
        ("rbx, rbp, r12,", "rbx, rbp, rsi, r12,"),
        "callee_saved",
        "rsi is listed callee-saved, but compiled code clobbered it",
    ),
    "sysv rcx and rdx swapped": (
        "sysv_amd64",
        ("rsi, rdx, rcx, r8", "rsi, rcx, rdx, r8"),
        "args",
        "landing_mixed: rcx: sent",
    ),
    "sysv aligned to 8": (
        "sysv_amd64",
        ("  align: 0x10", "  align: 0x8"),
        "stack.align",
        "the compiler assumes more alignment than the file says",
    ),
    "sysv aligned to 32": (
        "sysv_amd64",
        ("  align: 0x10", "  align: 0x20"),
        "stack.align",
        "the compiler guarantees less than the file's 0x20",
    ),
    "sysv without a red zone": (
        "sysv_amd64",
        ("red_zone: 0x80", "red_zone: 0x0"),
        "stack.red_zone",
        "put its local at sp-",
    ),
    "ms_x64 with sysv's callee-saved list": (
        "ms_x64",
        ("[rbx, rbp, rdi, rsi, r12, r13, r14, r15, xmm6,", "[rbx, rbp, r12, r13, r14, r15, xmm6,"),
        "callee_saved",
        "rdi is not listed callee-saved, but compiled code kept it",
    ),
    "elfv2 f14 caller-saved": (
        "ppc64_elfv2",
        ("r31, f14, f15,", "r31, f15,"),
        "callee_saved",
        "vs14 bits 0-63 is not listed callee-saved, but compiled code kept it",
    ),
    "elfv2 v2 and v3 swapped": (
        "ppc64_elfv2",
        ("vec: [v2, v3,", "vec: [v3, v2,"),
        "args",
        "landing_vec: vs35: sent",
    ),
    "ms_x64 without a home area": (
        "ms_x64",
        ("  home_area: 0x20", "  home_area: 0x0"),
        "stack.home_area",
        "the -O0 callee wrote the caller's frame",
    ),
}


def _edit_own_facts(source: str, old: str, new: str) -> str:
    """`old` -> `new` in the file's facts and in its own caller convention
    (`ccc`, which must agree with them); the other callers stay."""
    head, sep, callers = source.partition("\ncallers:\n")
    assert head.count(old) == 1, old
    lines = callers.split("\n")
    end = next((i for i, ln in enumerate(lines[1:], 1) if re.match(r"  \S", ln)), len(lines))
    own, rest = "\n".join(lines[:end]), "\n".join(lines[end:])
    return head.replace(old, new) + sep + own.replace(old, new) + ("\n" + rest if rest else "")


@pytest.mark.parametrize("case", sorted(WRONG_CONVENTIONS))
def test_a_wrong_convention_file_is_caught_by_compiled_code(tree, capsys, case):
    name, (old, new), fact, text = WRONG_CONVENTIONS[case]
    path = tree / "abi_specs" / "conventions" / f"{name}.yaml"
    path.write_text(_edit_own_facts(path.read_text(), old, new))
    # (The seed declares the home area it drops; without one, it drops nothing.
    # The lean specs' claims rest on the callee-saved lists the wrong files
    # change: the contract refuses them before anything runs.)
    for spec in ("x86_64_win64_seed", "x86_64_sysv_lean", "x86_64_win64_lean"):
        (tree / "abi_specs" / f"{spec}.yaml").unlink()
    # PPC64's fastcc and coldcc claims rest on C's list as well (the edit
    # changes `ccc` only): it claims C alone here.
    ppc = tree / "abi_specs" / "ppc64le.yaml"
    ppc.write_text(ppc.read_text().replace("serves: [ccc, fastcc, coldcc]", "serves: [ccc]"))
    abi = {"sysv_amd64": "X86_64_SysV", "ms_x64": "X86_64_Win32", "ppc64_elfv2": "PPC64"}[name]
    code, doc = _verify_json(capsys, "--build", *tree_options(tree), abi)
    assert code == 1
    checks = doc["abis"][abi]["checks"]
    conv = checks["convention"]
    assert (conv["outcome"], conv["method"]) == ("FAIL", METHODS[abi])
    assert [f["what"] for f in conv["findings"]] == [fact]
    assert text in conv["findings"][0]["got"]
    if case == "sysv r12 caller-saved":
        # The spec and the emulation cannot tell: only compiled code refutes the file.
        # (The spec's declared violations aside: LLVM's shadow-stack return.)
        unicorn = [
            r
            for c in checks.values()
            if c["outcome"] != "declared"
            for r in c["runs"]
            if r["method"] == "unicorn"
        ]
        assert unicorn and {r["status"] for r in unicorn} <= {"pass", "n/a"}


def test_a_missing_toolchain_is_reported_with_the_reason(subjects, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    found = run_compiled([subjects["AArch64"], subjects["X86_64_Win32"]], TEMPLATES_DIR)
    aarch64, win64 = found.results
    assert {r.status for r in aarch64.values()} == {"n/a"}
    note = aarch64["convention"].note
    assert "aarch64-linux-gnu-gcc and qemu-aarch64-static not found" in note
    assert "gcc-aarch64-linux-gnu" in note and "make toolchains" in note
    assert "x86_64-w64-mingw32-gcc and wine not found" in win64["landing_pc"].note


def test_another_host_says_why(subjects, monkeypatch):
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    (found,) = run_compiled([subjects["X86_64_SysV"]], TEMPLATES_DIR).results
    assert found["convention"].note == "native runs on x86_64 hosts, not on aarch64"


def test_every_harness_target_has_its_scaffold():
    for arch in ARCHES.values():
        if arch.harness is None:
            assert arch.no_harness, arch.name
            continue
        for name in ("harness_scaffold.S.j2", "harness_clobber.c.j2"):
            assert (TEMPLATES_DIR / arch.name / name).is_file(), (arch.name, name)


def _looping(subject, loop: bytes):
    """The resolver's first instruction jumps to itself."""

    def instantiate(fn: int, ctx: int) -> bytes:
        code = bytearray(subject.instantiate(fn, ctx))
        code[: len(loop)] = loop
        return bytes(code)

    return dataclasses.replace(subject, instantiate=instantiate)


def test_a_resolver_that_hangs_is_stopped_and_located(subjects):
    """wine's watchdog thread and qemu's SIGALRM move a hung run to the exit."""
    hung = [
        _looping(subjects["X86_64_Win32"], b"\xeb\xfe"),  # jmp .
        _looping(subjects["Riscv64"], (0x0000006F).to_bytes(4, "little")),  # j .
        _looping(subjects["PPC64"], (0x48000000).to_bytes(4, "little")),  # b .
    ]
    found = run_compiled(hung, TEMPLATES_DIR)
    for results, text in zip(found.results, ("jmp 0", "j 0", "b 0"), strict=True):
        landing = results["landing_pc"]
        assert landing.status == "fail"
        assert f"timed out: stopped by the run's watchdog at resolver+0x0: {text}" in (
            landing.findings[0].got
        )
