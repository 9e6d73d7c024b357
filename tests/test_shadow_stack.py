"""verify's `shadow_stack` check: LLVM's x86-64 and AArch64 resolvers return
to an address no call pushed (declared in their specs), the shadow-stack-safe
variants keep every call matched by its return, and a variant broken back to
a call or a `ret` fails.

The facts the findings must name come from LLVM's design, not from asmgen:
LLVM's trampoline calls the resolver, so the top of the shadow stack at the
resolver's return is the trampoline's return address (trampoline + 6 on
x86-64: `callq *disp(%rip)` is 6 bytes; trampoline + 0xc on AArch64: mov,
ldr, blr), and the resolver returns to the landing instead.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from scratch_tree import tree_options

from asmgen.cli import main

# (return offset in a trampoline, LLVM's TrampolineSize)
LLVM_X86 = {"X86_64_SysV": (6, 8), "X86_64_Win32": (6, 8)}  # callq *disp(%rip)
LLVM_AARCH64 = {"AArch64": (0xC, 0xC)}  # mov x17, x30; ldr x16, ptr; blr x16
SAFE = ["X86_64_SysV_ShadowStack", "X86_64_Win32_ShadowStack", "AArch64_GCS_BTI"]
# The first return the hardware refuses, as verify names it.
RETURN = re.compile(r"return at resolver\+0x[0-9a-f]+ \((retq|ret x17)\)")


def _verify(capsys, *args: str) -> tuple[int, dict]:
    capsys.readouterr()
    code = main(["verify", "--no-compiled", "--format", "json", *args])
    return code, json.loads(capsys.readouterr().out)["abis"]


@pytest.fixture(scope="module")
def generated(request):
    # One verify run of the generated tables for the tests that only read it.
    from asmgen.spec.files import select, spec_files
    from asmgen.verify.report import format_json
    from asmgen.verify.runner import subjects_from_generated, verify

    root = Path(__file__).resolve().parent.parent
    wanted = [*LLVM_X86, *LLVM_AARCH64, "AArch64_BTI", *SAFE, "Riscv64", "Mips64"]
    items = select(spec_files(), wanted)
    reports = verify(subjects_from_generated(items, root / "generated/orc_resolvers.py"), False)
    return json.loads(format_json(reports))["abis"]


@pytest.mark.parametrize("abi", sorted({**LLVM_X86, **LLVM_AARCH64}))
def test_llvm_tables_fail_as_declared(generated, abi):
    check = generated[abi]["checks"]["shadow_stack"]
    assert check["outcome"] == "declared"
    (finding,) = check["findings"]
    assert RETURN.fullmatch(finding["what"]), finding
    # The top is the trampoline's return address; the return goes to the landing.
    call_size, size = {**LLVM_X86, **LLVM_AARCH64}[abi]
    offset = int(re.search(r"\(trampolines\+(0x[0-9a-f]+)\)", finding["expected"])[1], 16)
    assert offset >= call_size and (offset - call_size) % size == 0
    assert "(landing+0x0)" in finding["got"]


@pytest.mark.parametrize("abi", SAFE)
def test_safe_variants_pass(generated, abi):
    checks = generated[abi]["checks"]
    assert checks["shadow_stack"]["outcome"] == "ok"
    assert checks["landing_pc"]["outcome"] == "ok"
    assert checks["return_address"]["outcome"] == "ok"
    assert checks["trampoline_arg"]["outcome"] == "ok"


def test_bti_variant_has_no_shadow_stack_safety(generated):
    # bti c guards the branches, not the returns: AArch64_BTI still uses ret x17.
    assert generated["AArch64_BTI"]["checks"]["shadow_stack"]["outcome"] == "declared"


@pytest.mark.parametrize("abi", ["Riscv64", "Mips64"])
def test_not_applicable_where_no_shadow_stack_exists(generated, abi):
    check = generated[abi]["checks"]["shadow_stack"]
    assert check["outcome"] == "n/a"
    assert "no hardware shadow stack" in check["note"]


def test_the_native_run_says_why_it_did_not_run(generated):
    runs = generated["X86_64_SysV_ShadowStack"]["checks"]["shadow_stack"]["runs"]
    native = [r for r in runs if r["method"] == "native"]
    assert len(native) == 1 and native[0]["status"] == "n/a"
    flags = Path("/proc/cpuinfo").read_text()
    if "user_shstk" not in flags.split():
        assert "/proc/cpuinfo has no `user_shstk`" in native[0]["note"]


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"mutation anchor {old!r} not found once in {path}"
    path.write_text(text.replace(old, new))


def test_mutation_aarch64_resolver_returns_again(capsys, tree):
    # `br x17` broken back to LLVM's `ret x17`: GCS's top is the caller's `bl`.
    _edit(
        tree / "templates/aarch64/resolver.s.j2",
        "    br      {{ resolver.landing }}",
        "    ret     {{ resolver.landing }}",
    )
    code, abis = _verify(capsys, "--build", *tree_options(tree), "AArch64_GCS_BTI")
    assert code == 1
    checks = abis["AArch64_GCS_BTI"]["checks"]
    assert checks["shadow_stack"]["outcome"] == "FAIL"
    assert checks["landing_pc"]["outcome"] == "ok"  # only the shadow stack sees it
    finding = checks["shadow_stack"]["findings"][0]
    assert RETURN.fullmatch(finding["what"])
    assert "(caller+0x4)" in finding["expected"] and "(landing+0x0)" in finding["got"]


def test_mutation_x86_resolver_returns_again(capsys, tree):
    # The safe resolver's tail jump broken back to a `ret` (after pushing the
    # landing): a return to an address no call pushed.
    _edit(
        tree / "templates/x86_64/resolver.s.j2",
        "    jmpq    *%{{ resolver.landing }}",
        "    pushq   %{{ resolver.landing }}\n    retq",
    )
    code, abis = _verify(capsys, "--build", *tree_options(tree), "X86_64_SysV_ShadowStack")
    assert code == 1
    check = abis["X86_64_SysV_ShadowStack"]["checks"]["shadow_stack"]
    assert check["outcome"] == "FAIL"
    assert RETURN.fullmatch(check["findings"][0]["what"])
