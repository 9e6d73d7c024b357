"""`asmgen verify`: the contracts hold, the known LLVM defects are found, and
every mutation of a resolver makes verify fail."""

from __future__ import annotations

import dataclasses
import json
import platform
import re
from pathlib import Path

import pytest
from scratch_tree import tree_options

from asmgen.build.pipeline import build, template_for
from asmgen.cli import main
from asmgen.spec.files import select, spec_files
from asmgen.verify import subject_from_table, verify
from asmgen.verify.emulate import CTX
from asmgen.verify.native import run_native
from asmgen.verify.static import frame_check

TEMPLATE = Path("templates/x86_64/resolver.s.j2")
X86 = ["X86_64_SysV", "X86_64_Win32", "X86_64_Win32_seed_initial"]
NATIVE_HOST = (platform.machine(), platform.system()) == ("x86_64", "Linux")


def _verify_json(capsys, *args: str) -> tuple[int, dict]:
    capsys.readouterr()
    code = main(["verify", "--format", "json", *args])
    return code, json.loads(capsys.readouterr().out)["abis"]


def _verify_tree(capsys, tree: Path, *abis: str) -> tuple[int, dict]:
    return _verify_json(capsys, "--build", *tree_options(tree), *abis)


def _built_from(tree: Path, template: Path) -> list[str]:
    """The ABIs whose resolver `template` is: a mutation of it changes their
    tables alone (the others are the generated ones, which verify passes in
    test_generated_tables_keep_their_contracts), so verify runs those."""
    templates = tree / "templates"
    items = spec_files(tree / "abi_specs")
    return [i.spec.abi for i in items if template_for(i, templates) == tree / template]


def _outcomes(abis: dict, abi: str) -> dict[str, str]:
    return {check: r["outcome"] for check, r in abis[abi]["checks"].items()}


def _edit(path: Path, old: str, new: str, count: int = 1) -> None:
    text = path.read_text()
    assert text.count(old) == count, f"mutation anchor {old!r} not found {count}x in {path}"
    path.write_text(text.replace(old, new))


# -- the generated tables ---------------------------------------------------


def test_generated_tables_keep_their_contracts(verified_generated):
    # `asmgen verify --format json` on the generated tables (conftest.py).
    code, document = verified_generated
    assert code == 0
    abis = document["abis"]
    sysv = _outcomes(abis, "X86_64_SysV")
    assert sysv.pop("shadow_space") == "n/a"  # SysV has no home area
    assert sysv.pop("native") == ("ok" if NATIVE_HOST else "n/a")
    # fxsave64 loses the YMM/ZMM upper halves; the spec declares it.
    assert sysv.pop("vector_width") == ("declared" if NATIVE_HOST else "n/a")
    # LLVM's resolver returns by overwriting its return slot (test_shadow_stack.py).
    assert sysv.pop("shadow_stack") == "declared"
    assert set(sysv.values()) == {"ok"}
    win64 = _outcomes(abis, "X86_64_Win32")
    assert win64.pop("native") == "n/a"  # not the host's C convention
    assert win64.pop("vector_width") == ("declared" if NATIVE_HOST else "n/a")
    assert win64.pop("shadow_stack") == "declared"
    assert set(win64.values()) == {"ok"}


def test_seed_defects_are_found_and_declared(verified_generated, llvm_tables):
    code, document = verified_generated
    assert code == 0
    abis = document["abis"]
    outcomes = _outcomes(abis, "X86_64_Win32_seed_initial")
    assert outcomes.pop("shadow_space") == outcomes.pop("fp_control") == "declared"
    assert outcomes.pop("native") == "n/a"
    assert outcomes.pop("vector_width") == ("declared" if NATIVE_HOST else "n/a")
    assert outcomes.pop("shadow_stack") == "declared"
    assert set(outcomes.values()) == {"ok"}
    checks = abis["X86_64_Win32_seed_initial"]["checks"]
    home = checks["shadow_space"]["findings"]
    # The live data is the fxsave64 area, written at 0x21 and read back by fxrstor64.
    assert home[0]["what"] == "home area [0x0, 0x20)"
    assert home[0]["got"].startswith("written at resolver+0x21 (fxsave64")
    assert home[1]["got"].startswith("read at resolver+0x48 (fxrstor64")
    seed_hex = llvm_tables["X86_64_Win32_seed_initial"]["hex"]
    assert seed_hex[0x21 * 2 : 0x26 * 2] == "480fae0424"  # LLVM's fxsave64 (%rsp)
    assert seed_hex[0x48 * 2 : 0x4D * 2] == "480fae0c24"  # LLVM's fxrstor64 (%rsp)
    control = {f["what"]: f for f in checks["fp_control"]["findings"]}
    # The spilled ctx (home slot 0) comes back as the FCW.
    assert control["fcw"]["expected"] == "0x027f"
    assert int(control["fcw"]["got"], 16) == CTX[8] & 0xFFFF
    assert control["mxcsr"]["got"] != control["mxcsr"]["expected"]


def test_text_report_is_a_table_with_a_static_note(capsys):
    capsys.readouterr()
    assert main(["verify"]) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[0].split()
    assert header[:4] == ["ABI", "ctx", "tramp", "align"]
    assert "frame*" in header and "native" in header
    seed = next(line for line in out.splitlines() if line.startswith("X86_64_Win32_seed_initial"))
    assert seed.split()[4] == "xfail"  # home
    assert "STATIC check only" in out
    assert "declared violation" in out


# -- declarations stay true ---------------------------------------------------


def test_undeclared_violation_fails(capsys, tree):
    spec = tree / "abi_specs/x86_64_win64_seed.yaml"
    text = spec.read_text()
    spec.write_text(text[: text.index("expected_violations:")])
    code, abis = _verify_tree(capsys, tree, "X86_64_Win32_seed_initial")
    assert code == 1
    outcomes = _outcomes(abis, "X86_64_Win32_seed_initial")
    assert outcomes["shadow_space"] == outcomes["fp_control"] == "FAIL"


def test_declared_violation_that_does_not_happen_fails(capsys, tree):
    spec = tree / "abi_specs/x86_64_sysv.yaml"
    # The spec ends with its expected_violations list; add one more item.
    spec.write_text(spec.read_text() + "  - {check: stack_align, reason: not true}\n")
    code, abis = _verify_tree(capsys, tree, "X86_64_SysV")
    assert code == 1
    assert _outcomes(abis, "X86_64_SysV")["stack_align"] == "XPASS"


def test_unknown_check_name_is_a_spec_error(capsys, tree):
    spec = tree / "abi_specs/x86_64_sysv.yaml"
    spec.write_text(spec.read_text() + "  - {check: bogus, reason: x}\n")
    capsys.readouterr()
    assert main(["verify", "--specs", str(tree / "abi_specs")]) == 2
    err = capsys.readouterr().err.strip()
    assert re.fullmatch(r".*x86_64_sysv\.yaml:\d+: error: expected_violations\.\d+\.check: .*", err)


# -- mutations: each must make verify fail -------------------------------------


def test_mutation_removed_push(capsys, tree):
    # Push one register fewer than the epilogue pops.
    _edit(
        tree / TEMPLATE,
        "{% for reg in resolver.saves %}",
        "{% for reg in resolver.saves[1:] %}",
    )
    code, abis = _verify_tree(capsys, tree, *_built_from(tree, TEMPLATE))
    assert code == 1
    for abi in X86:
        assert _outcomes(abis, abi)["landing_pc"] == "FAIL"
    if NATIVE_HOST:
        assert _outcomes(abis, "X86_64_SysV")["native"] == "FAIL"


def _verify_past_spec_checks(tree: Path, abi: str, path: str, old: str, new: str):
    """Verify the table of a spec edited past the contract checks, which refuse
    an undeclared unsaved argument register: verify must catch it on its own."""
    _edit(tree / path, old, new)
    items = spec_files(tree / "abi_specs", contract=False)
    (report,) = verify([subject_from_table(build(select(items, [abi])[0], tree / "templates"))])
    return report


def test_mutation_one_register_not_saved_is_caught_by_the_clobbering_hook(tree):
    report = _verify_past_spec_checks(
        tree, "X86_64_SysV", "abi_specs/x86_64_sysv.yaml", "rsi, rdi, r8", "rsi, r8"
    )
    assert report.failed
    result = report.outcomes["int_args"]
    assert result.outcome == "FAIL"
    assert [f.what for f in result.result.findings] == ["rdi"]


def test_mutation_removed_vector_save(capsys, tree):
    _edit(tree / TEMPLATE, "    fxsave64 (%rsp)\n", "")
    code, abis = _verify_tree(capsys, tree, *_built_from(tree, TEMPLATE))
    assert code == 1
    sysv = abis["X86_64_SysV"]["checks"]
    assert sysv["fp_args"]["outcome"] == "FAIL"
    assert [f["what"] for f in sysv["fp_args"]["findings"]] == [f"xmm{i}" for i in range(8)]
    assert sysv["fp_control"]["outcome"] == "FAIL"
    win64 = abis["X86_64_Win32"]["checks"]
    assert win64["callee_saved"]["outcome"] == "FAIL"  # xmm6-xmm15


def test_mutation_frame_size_changed_by_8(capsys, tree):
    _edit(tree / TEMPLATE, "hex(frame.vector_alloc)", "hex(frame.vector_alloc + 0x8)", count=2)
    code, abis = _verify_tree(capsys, tree, *_built_from(tree, TEMPLATE))
    assert code == 1
    for abi in X86:
        checks = abis[abi]["checks"]
        # fxsave64 faults on the misaligned area before the call is reached.
        assert checks["stack_align"]["outcome"] == "FAIL"
        assert "fxsave64" in checks["stack_align"]["findings"][0]["got"]
    if NATIVE_HOST:
        native = abis["X86_64_SysV"]["checks"]["native"]
        assert native["findings"][0]["got"] == "killed by SIGSEGV"


def test_mutation_stack_misaligned_at_the_call(capsys, tree):
    # Keep fxsave64's area aligned but move the call: the alignment check itself must see it.
    _edit(tree / TEMPLATE, "    callq   *%", "    pushq   %rax\n    callq   *%")
    _edit(
        tree / TEMPLATE,
        "    movq    %{{ call.return_reg }}, 0x8(%rbp)",
        "    popq %rcx\n    movq    %{{ call.return_reg }}, 0x8(%rbp)",
    )
    code, abis = _verify_tree(capsys, tree, "X86_64_SysV")
    assert code == 1
    align = abis["X86_64_SysV"]["checks"]["stack_align"]
    assert align["outcome"] == "FAIL"
    assert align["findings"][0]["what"] == "sp at the call"


def test_mutation_dropped_shadow_space(capsys, tree):
    text = (tree / TEMPLATE).read_text()
    mutated = re.sub(r"\{% if frame\.shadow %\}.*?\{% endif %\}\n", "", text, flags=re.S)
    assert mutated.count("frame.shadow") == 0 and text.count("frame.shadow") == 4
    (tree / TEMPLATE).write_text(mutated)
    code, abis = _verify_tree(capsys, tree, *_built_from(tree, TEMPLATE))
    assert code == 1
    win64 = _outcomes(abis, "X86_64_Win32")
    assert win64["shadow_space"] == win64["fp_control"] == "FAIL"
    assert "FAIL" not in _outcomes(abis, "X86_64_SysV").values()


# -- native run and static check, directly ---------------------------------------


def _subject(tree: Path, abi: str):
    return subject_from_table(
        build(select(spec_files(tree / "abi_specs"), [abi])[0], tree / "templates")
    )


def test_native_run_sees_a_wrong_trampoline_address(tree):
    _edit(tree / "abi_specs/x86_64_sysv.yaml", "call_size: 0x6", "call_size: 0x5")
    from asmgen.arches import ARCHES
    from asmgen.build.layout import build_table
    from asmgen.errors import AsmgenError

    # The generator refuses the spec: its trampoline template returns at 0x6.
    with pytest.raises(AsmgenError, match="returns at offset 0x6"):
        _subject(tree, "X86_64_SysV")
    # The resolver alone still builds; with the original trampolines and stubs
    # around it, running it shows the harm.
    item = select(spec_files(tree / "abi_specs"), ["X86_64_SysV"])[0]
    resolver = build_table(item.spec, item.path, template_for(item, tree / "templates"))
    units = build(select(spec_files(), ["X86_64_SysV"])[0]).units
    resolver = dataclasses.replace(resolver, units=units)
    result = run_native(subject_from_table(resolver), ARCHES["x86_64"].emulator)
    if not NATIVE_HOST:
        assert result.status == "n/a"
        return
    assert result.status == "fail"
    assert result.findings[0].what == "re-entry(ctx, trampoline)"
    # The landing still runs with the caller's arguments intact.
    assert len(result.findings) == 1


def test_static_frame_check_flags_a_misaligned_frame(tree):
    subject = _subject(tree, "X86_64_SysV")
    assert frame_check(subject).status == "pass"
    frame = dataclasses.replace(subject.frame, padding=subject.frame.padding + 8)
    result = frame_check(dataclasses.replace(subject, frame=frame))
    assert result.status == "fail"
    assert result.findings[0].got.endswith("(sp off by 0x8)")


def test_in_memory_tables_verify_like_the_generated_module(tree):
    reports = verify([_subject(tree, abi) for abi in X86])
    assert [r.failed for r in reports] == [False, False, False]


# -- every arch: LLVM's known defects are found -----------------------------------

# (ABI, check) -> the registers or quantity the finding must name.  The defects
# are the ones DESIGN.md lists for LLVM's tables.
KNOWN_DEFECTS = {
    ("Mips32Le", "fp_args"): ["f12", "f14"],
    ("Mips32Be", "fp_args"): ["f12", "f14"],
    ("Mips64", "fp_args"): [f"f{i}" for i in range(12, 20)],
    ("Riscv64", "fp_args"): [f"fa{i}" for i in range(8)],
    ("Riscv64", "stack_align"): ["sp at the call"],
    ("Riscv64", "frame_align"): ["frame size at the call"],
    ("LoongArch64", "frame_align"): ["frame size at the call"],
}


@pytest.fixture
def all_abis(verified_generated):
    """Every generated table's report (conftest.py: `asmgen verify --format json`)."""
    return verified_generated[1]["abis"]


@pytest.mark.parametrize(("abi", "check"), sorted(KNOWN_DEFECTS))
def test_llvm_defect_is_found(all_abis, abi, check):
    result = all_abis[abi]["checks"][check]
    assert result["outcome"] == "declared"
    assert [f["what"] for f in result["findings"]] == KNOWN_DEFECTS[(abi, check)]


def test_riscv64_sp_is_8_mod_16_at_the_call(all_abis):
    got = all_abis["Riscv64"]["checks"]["stack_align"]["findings"][0]["got"]
    assert int(got, 16) % 0x10 == 0x8


def test_every_other_check_passes_on_every_emulated_abi(all_abis):
    for abi, report in all_abis.items():
        for check, result in report["checks"].items():
            if (abi, check) in KNOWN_DEFECTS or result["outcome"] == "declared":
                continue
            assert result["outcome"] in ("ok", "n/a"), (abi, check, result)
        if report["emulated"]:
            # The chain really ran: the landing was reached.
            assert report["checks"]["landing_pc"]["outcome"] == "ok", abi


def test_loongarch_is_static_only_and_says_so(capsys):
    capsys.readouterr()
    assert main(["verify", "LoongArch64"]) == 0
    out = capsys.readouterr().out
    assert "LoongArch64: not emulated (unicorn has no loongarch64); only the static frame" in out
    assert "STATIC check only" in out


def test_fixing_riscv64_frame_makes_its_declarations_stale(capsys, tree):
    # A 16-byte-rounded frame keeps the call aligned: the declared stack_align
    # and frame_align violations no longer happen, and verify says so.
    # (and the spec no longer deviates from riscv_lp64d's stack alignment).
    spec = tree / "abi_specs/riscv64.yaml"
    _edit(spec, "  frame_align: 0x8\n", "")
    text = spec.read_text()
    start = text.index("  - field: stack_align\n")
    spec.write_text(text[:start] + text[text.index("  - field: fp_args\n") :])
    code, abis = _verify_tree(capsys, tree, "Riscv64")
    assert code == 1
    outcomes = _outcomes(abis, "Riscv64")
    assert outcomes["stack_align"] == outcomes["frame_align"] == "XPASS"
    assert outcomes["fp_args"] == "declared"


def test_aarch64_mutation_removed_vector_saves(tree):
    report = _verify_past_spec_checks(
        tree, "AArch64", "abi_specs/aarch64.yaml", "fp_saves: [q0, q1, q2,", "fp_saves: [q2,"
    )
    fp_args = report.outcomes["fp_args"]
    assert fp_args.outcome == "FAIL"
    assert [f.what for f in fp_args.result.findings] == ["q0", "q1"]


def test_aarch64_upper_lanes_of_callee_saved_vectors_are_clobbered(tree):
    # AAPCS64 keeps only d8-d15: the hook clobbers the upper 64 bits of q8-q15,
    # so a resolver that did not save them would still pass callee_saved, but
    # the full registers do change across the call.
    from asmgen.arches import ARCHES
    from asmgen.verify.emulate import Emulation

    subject = _subject(tree, "AArch64")
    emu = Emulation(subject, ARCHES["aarch64"].emulator)
    assert emu.regs["q8"].keep == (1 << 64) - 1
    assert emu.regs["q0"].keep == 0
    assert "d8" not in emu.regs


def test_a_resolver_that_resets_the_fp_control_state_fails_by_every_method(capsys, tree):
    """The lean resolver keeps no FP control state: a conforming callee keeps
    the control bits itself.  One that resets them after the call (`fninit`:
    FCW back to 0x37f, rounding to nearest) breaks the caller's rounding mode."""
    _edit(
        tree / TEMPLATE,
        "    callq   *%{{ resolver.scratch }}\n",
        "    callq   *%{{ resolver.scratch }}\n    fninit\n",
    )
    code, abis = _verify_tree(capsys, tree, "X86_64_SysV_Lean")
    assert code == 1
    control = abis["X86_64_SysV_Lean"]["checks"]["fp_control"]
    assert control["outcome"] == "FAIL"
    runs = {r["method"]: r for r in control["runs"] if r["status"] != "n/a"}
    assert set(runs) == ({"unicorn", "native"} if NATIVE_HOST else {"unicorn"})
    assert [f["what"] for f in runs["unicorn"]["findings"]] == ["fcw"]
    if NATIVE_HOST:
        # The compiled caller set round-toward-zero (0xf7f); fninit leaves 0x37f.
        fcw = runs["native"]["findings"][0]
        assert fcw["what"].startswith("fcw") and (fcw["expected"], fcw["got"]) == ("0xf7f", "0x37f")
