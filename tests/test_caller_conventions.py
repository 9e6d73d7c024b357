"""Caller conventions: the facts (the convention files' `callers`), what each
spec claims to serve (`serves:`), the contract's static reading of a claim,
and verify's `caller_conventions` and `vector_width` checks of it.

The facts are confirmed by LLVM 19 itself: llc-19 compiles probe functions of
every convention and reports where it passes arguments and what a callee's
prologue saves (tests/llc_callers.py).  The lazy-JIT test
(tests/llvm_jit/) shows the same registers in JIT'd callers' code.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from llc_callers import available, probe

from asmgen.build.pipeline import build
from asmgen.errors import AsmgenError
from asmgen.resources import SPECS_DIR
from asmgen.spec import parse_spec
from asmgen.spec.convention import C_CALLER, all_conventions
from asmgen.spec.files import SpecFile, spec_files
from asmgen.spec.serving import beyond_contract, lost_registers
from asmgen.verify.runner import DECLARED, OK, VIOLATION, subject_from_table, verify_subject
from asmgen.verify.vector_harness import cpu_flags

CONVENTIONS = {c.convention: c for c in all_conventions(SPECS_DIR / "conventions")}
SPECS = {f.spec.abi: f for f in spec_files()}
TREE = Path(__file__).resolve().parent / "fixtures" / "llvm_tree"


def _llc_facts(conv):
    from asmgen.arches import ARCHES

    arch = ARCHES[conv.arch]
    facts = arch.emulator
    link = facts.link if facts else None
    clobbers = [
        r.name
        for r in arch.registers
        if r.cls in ("gpr", "fpr", "vec") and r.name not in (arch.stack_pointer, link)
    ]
    features = [feature for feature, _ in arch.wide_vectors]
    found = probe(
        arch.name,
        conv.llvm_triple,
        list(conv.caller_conventions),
        clobbers,
        features,
        conv.llvm_mattr or "",
    )
    unprobed = {name for name, _ in arch.harness.unprobed} if arch.harness else set()
    return found, features, unprobed


@pytest.mark.skipif(
    not available(), reason="llc-19 not found: `make llvm` installs Debian's llvm-19"
)
@pytest.mark.parametrize(
    "name", sorted(n for n, c in CONVENTIONS.items() if c.llvm_triple), ids=str
)
def test_llc_19_confirms_every_caller_convention(name):
    """For every convention of the file, llc-19 passes arguments in exactly
    `args`, a callee's prologue saves exactly `callee_saved` (but registers
    inline asm cannot make it save: AArch64's frame record x29), and with each
    vector feature the widths are `wide`'s."""
    conv = CONVENTIONS[name]
    found, features, unprobed = _llc_facts(conv)
    for cc, caller in conv.caller_conventions.items():
        llc = found[cc]
        assert set(caller.args) == llc.args, (cc, sorted(set(caller.args) ^ llc.args))
        for level in ("", *features):
            saved = llc.callee_saved[level] - unprobed
            assert set(caller.callee_saved) - unprobed == saved, (cc, level)
            upto = set(features[: features.index(level) + 1]) if level else set()
            wider = {reg: bits for reg, bits in llc.bits[level].items() if bits > 128}
            assert caller.widths(upto) == wider, (cc, level)


def test_every_convention_states_its_callers():
    """Every convention file has a `callers` section with its own `ccc`; x86-64
    and AArch64 add the conventions LLVM defines there, each fact cited."""
    for conv in CONVENTIONS.values():
        assert conv.callers and C_CALLER in conv.callers, conv.convention
        for caller in conv.callers.values():
            assert {"args", "callee_saved"} <= set(caller.cite)
    assert set(CONVENTIONS["sysv_amd64"].callers) == {
        "ccc",
        "fastcc",
        "coldcc",
        "preserve_mostcc",
        "preserve_allcc",
        "swiftcc",
        "ghccc",
    }
    assert "x86_vectorcallcc" in CONVENTIONS["ms_x64"].callers
    assert {"preserve_mostcc", "preserve_allcc"} <= set(CONVENTIONS["aapcs64"].callers)


def test_facts_the_issue_names():
    """LangRef's and X86CallingConv.td's words, as the files state them."""
    sysv = CONVENTIONS["sysv_amd64"].caller_conventions
    assert "r11" not in sysv["preserve_mostcc"].callee_saved
    assert {"rax", "rcx", "r10"} <= set(sysv["preserve_mostcc"].callee_saved)
    assert {f"xmm{i}" for i in range(16)} <= set(sysv["preserve_allcc"].callee_saved)
    assert sysv["preserve_allcc"].widths({"avx", "avx512f"})["xmm15"] == 256
    assert {"r11", "xmm15"} <= set(sysv["coldcc"].callee_saved)
    assert sysv["coldcc"].widths({"avx"}).get("xmm15") is None
    win = CONVENTIONS["ms_x64"].caller_conventions
    assert {"xmm4", "xmm5"} <= set(win["x86_vectorcallcc"].args)


def test_every_spec_declares_what_it_serves():
    """Every shipped spec names its caller conventions; LLVM's tables and the
    AVX-safe variants all of their convention's, the lean ones fewer."""
    for item in SPECS.values():
        assert item.spec.line_of("serves"), item.spec.abi
        assert C_CALLER in item.spec.serves, item.spec.abi
    every = {name: set(conv.caller_conventions) for name, conv in CONVENTIONS.items()}
    for abi in ("X86_64_SysV", "X86_64_SysV_AVX", "X86_64_Win32", "X86_64_Win32_AVX", "I386"):
        spec = SPECS[abi].spec
        assert set(spec.serves) == every[spec.convention], abi
    assert set(SPECS["X86_64_SysV_Lean"].spec.serves) == every["sysv_amd64"] - {
        "coldcc",
        "preserve_allcc",
    }
    assert set(SPECS["X86_64_Win32_Lean"].spec.serves) == {"ccc", "fastcc", "swiftcc"}


def test_the_static_reading_of_the_lean_classes():
    """What the lean classes lose, convention by convention (spec/serving.py):
    the issue's table."""

    def lost(abi, cc):
        spec = SPECS[abi].spec
        return lost_registers(spec, spec.convention_info.caller_conventions[cc])

    high = [f"xmm{i}" for i in range(8, 16)]
    assert lost("X86_64_SysV_Lean", "coldcc") == ["r11", *high]
    assert lost("X86_64_SysV_Lean", "preserve_allcc") == high
    assert lost("X86_64_SysV_Lean", "preserve_mostcc") == []
    assert lost("X86_64_Win32_Lean", "x86_vectorcallcc") == ["xmm4", "xmm5"]
    assert lost("X86_64_Win32_Lean", "coldcc") == ["r11", "xmm4", "xmm5"]
    for abi in ("X86_64_SysV", "X86_64_Win32", "I386"):
        spec = SPECS[abi].spec
        assert not any(lost(abi, cc) for cc in spec.serves), abi
    # The trampoline's and the stub's own registers are lost whatever the
    # resolver saves: AArch64's x16 and x17 are kept by no convention.
    spec = SPECS["AArch64"].spec
    assert lost("AArch64", "ccc") == ["x18"]
    assert not {"x16", "x17"} & {r for c in spec.served for r in beyond_contract(spec, c)}


def test_a_claim_the_spec_shows_lost_is_refused():
    text = SPECS["X86_64_SysV_Lean"].path.read_text()
    claim = text.replace("serves: [ccc,", "serves: [ccc, coldcc,")
    with pytest.raises(
        AsmgenError, match=r"serves\[1\]: claims coldcc, but the resolver loses r11"
    ):
        parse_spec(claim, SPECS["X86_64_SysV_Lean"].path)
    # Declared as a known loss, the claim loads; verify then proves the loss.
    declared = claim + "  - check: caller_conventions\n    reason: test\n"
    assert "coldcc" in parse_spec(declared, SPECS["X86_64_SysV_Lean"].path).serves


def _verified(abi: str, text: str):
    path = SPECS[abi].path
    spec = parse_spec(text, path, contract=False)
    return verify_subject(subject_from_table(build(SpecFile(path, spec))))


def test_verify_names_the_register_and_the_convention_it_broke():
    """The lean SysV table made to claim coldcc and preserve_allcc: unicorn
    finds every register it loses, per convention, as does the static
    reading; natively, the upper halves of ymm0-15 that preserve_allcc keeps."""
    text = SPECS["X86_64_SysV_Lean"].path.read_text()
    report = _verified(
        "X86_64_SysV_Lean", text.replace("serves: [ccc,", "serves: [ccc, coldcc, preserve_allcc,")
    )
    outcome = report.outcomes["caller_conventions"]
    assert outcome.outcome == VIOLATION
    runs = {r.method: r for r in outcome.runs}
    for method in ("unicorn", "static"):
        broke = {f.what for f in runs[method].findings}
        assert broke == {"r11 broke coldcc"} | {
            f"xmm{i} broke {cc}" for i in range(8, 16) for cc in ("coldcc", "preserve_allcc")
        }, method
    finding = next(f for f in runs["unicorn"].findings if f.what == "r11 broke coldcc")
    assert "(kept by coldcc)" in finding.expected and "(lost by the resolver)" in finding.got
    if "avx" in cpu_flags():
        native = report.outcomes["vector_width"].result
        wide = "zmm" if "avx512f" in cpu_flags() else "ymm"
        assert f"{wide}15 bits 128-255 broke preserve_allcc" in {f.what for f in native.findings}


def test_the_win64_lean_table_breaks_vectorcall():
    """Made to claim __vectorcall, the Win64 lean table fails: unicorn finds
    xmm4 and xmm5 (arguments 5 and 6) lost, and, natively, their upper parts."""
    text = SPECS["X86_64_Win32_Lean"].path.read_text()
    report = _verified(
        "X86_64_Win32_Lean", text.replace("serves: [ccc,", "serves: [ccc, x86_vectorcallcc,")
    )
    unicorn = next(r for r in report.outcomes["caller_conventions"].runs if r.method == "unicorn")
    assert {f.what for f in unicorn.findings} == {
        "xmm4 broke x86_vectorcallcc",
        "xmm5 broke x86_vectorcallcc",
    }
    if "avx" in cpu_flags():
        native = report.outcomes["vector_width"].result
        assert {f.what.split(" ")[0][3:] for f in native.findings} >= {"0", "5"}
        assert all(f.what.endswith("broke x86_vectorcallcc") for f in native.findings)


def test_claims_that_hold_pass_and_the_declared_loss_is_found():
    """LLVM's SysV table serves every SysV convention by unicorn; AArch64's
    declared loss of x18 (the static chain) is found by unicorn."""
    report = verify_subject(subject_from_table(build(SPECS["X86_64_SysV"])), native=False)
    assert report.outcomes["caller_conventions"].outcome == OK
    report = verify_subject(subject_from_table(build(SPECS["AArch64"])), native=False)
    outcome = report.outcomes["caller_conventions"]
    assert outcome.outcome == DECLARED
    unicorn = next(r for r in outcome.runs if r.method == "unicorn")
    assert {f.what for f in unicorn.findings} == {
        f"x18 broke {cc}" for cc in SPECS["AArch64"].spec.serves
    }


@pytest.mark.skipif("avx" not in cpu_flags(), reason="the CPU has no AVX: nothing wider to keep")
def test_vector_width_checks_each_served_conventions_width():
    """Natively: LLVM's SysV table loses the bytes beyond 16 of every register
    a served convention passes or keeps wide (C's __m256/__m512 arguments,
    preserve_allcc's ymm0-15), named by convention; the Win64 lean table
    serves no convention with wide registers and passes."""
    report = verify_subject(subject_from_table(build(SPECS["X86_64_SysV"])))
    native = report.outcomes["vector_width"].result
    wide = "zmm" if "avx512f" in cpu_flags() else "ymm"
    whats = {f.what for f in native.findings}
    assert any(w.startswith(f"{wide}0 bits 128-") and "ccc" in w for w in whats)
    assert f"{wide}8 bits 128-255 broke preserve_allcc" in whats
    report = verify_subject(subject_from_table(build(SPECS["X86_64_Win32_Lean"])))
    assert report.outcomes["vector_width"].outcome == OK


# -- asmgen patch ----------------------------------------------------------------


def _patch(capsys, *argv: str) -> tuple[int, str, str]:
    from asmgen.cli import main

    code = main(["patch", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_patch_says_what_a_narrow_class_does_not_serve(capsys, tmp_path):
    """A lean class goes into LLVM as a new class whose comment names what it
    serves and what it loses for the other callers, with a warning line."""
    import llvm_trees

    llvm = llvm_trees.scratch_tree(tmp_path / "llvm", llvm_trees.llvm_files(TREE))
    capsys.readouterr()
    code, diff, err = _patch(capsys, "--llvm-root", str(llvm), "X86_64_SysV_Lean", "X86_64_SysV")
    assert code == 0
    comment = " ".join(
        line.removeprefix("+/// ") for line in diff.splitlines() if line.startswith("+/// ")
    )
    assert "Serves callers of: ccc, fastcc, preserve_mostcc, swiftcc, ghccc." in comment
    assert "NARROW: it loses what callers of other conventions keep across the call: " in comment
    assert "coldcc (r11, xmm8-15); preserve_allcc (xmm8-15)" in comment
    lean = SPECS["X86_64_SysV_Lean"]
    assert err.splitlines() == [
        f"{lean.path}:{lean.spec.line_of('serves')}: warning: not for callers of coldcc, "
        "preserve_allcc: the patch adds OrcX86_64_SysV_Lean, whose class comment says so"
    ]


def test_patch_refuses_a_narrow_table_in_place_of_llvms(capsys, tmp_path):
    """The lean spec named as LLVM's OrcX86_64_SysV: refused with one line (no
    patch written), unless --allow-narrow, which warns."""
    import shutil

    import llvm_trees

    llvm = llvm_trees.scratch_tree(tmp_path / "llvm", llvm_trees.llvm_files(TREE))
    specs = tmp_path / "specs"
    shutil.copytree(SPECS_DIR, specs)
    # The class is one spec's (spec/files.py): the lean spec takes SysV's place.
    (specs / "x86_64_sysv.yaml").unlink()
    path = specs / "x86_64_sysv_lean.yaml"
    path.write_text(
        path.read_text().replace(
            "abi: X86_64_SysV_Lean\n", "abi: X86_64_SysV_Lean\nllvm_class: OrcX86_64_SysV\n"
        )
    )
    out = tmp_path / "lean.patch"
    args = ["--llvm-root", str(llvm), "--specs", str(specs), "-o", str(out), "X86_64_SysV_Lean"]
    capsys.readouterr()
    code, _, err = _patch(capsys, *args)
    assert code == 2 and not out.exists()
    line = parse_spec(path.read_text(), path).line_of("serves")
    assert err.startswith(f"{path}:{line}: error: serves: X86_64_SysV_Lean would replace ")
    assert "does not serve coldcc (r11, xmm8-15); preserve_allcc (xmm8-15)" in err
    assert err.count("\n") == 1
    code, _, err = _patch(capsys, *args, "--allow-narrow")
    assert code == 0 and out.exists()
    assert "warning: not for callers of coldcc, preserve_allcc: the patch replaces" in err


def test_the_headers_name_what_each_class_serves():
    """Both generated headers open every class with the conventions it serves;
    exactly the classes that do not serve every convention of their platform
    say NARROW and what they lose."""
    from itertools import takewhile

    from asmgen.spec.serving import not_served

    generated = Path(__file__).resolve().parent.parent / "generated"
    for header in ("orc_resolvers.h", "orc_resolvers_llvm.h"):
        text = generated / header
        lines = text.read_text().splitlines()
        for abi, item in SPECS.items():
            at = lines.index(next(ln for ln in lines if ln.startswith(f"/// {abi}: ")))
            comment = " ".join(
                ln.removeprefix("/// ")
                for ln in takewhile(lambda ln: ln.startswith("///"), lines[at:])
            )
            assert f"Serves callers of: {', '.join(item.spec.serves)}." in comment, (header, abi)
            assert ("NARROW" in comment) == bool(not_served(item.spec)), (header, abi)
