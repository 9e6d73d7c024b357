"""`asmgen docs`: the frame picture and register table agree with the running code,
the SVG is well-formed and renders, and the pages are deterministic and checked."""

from __future__ import annotations

import dataclasses
import io
import re
import xml.etree.ElementTree as ET

import pytest

from asmgen.build.framemap import frame_map
from asmgen.build.pipeline import build
from asmgen.cli import main
from asmgen.docs.pages import abi_doc, render_pages
from asmgen.docs.registers import register_rows
from asmgen.docs.svg import WARN_FILL
from asmgen.resources import SPECS_DIR
from asmgen.spec import parse_spec
from asmgen.spec.files import select, spec_files

ABIS = ("X86_64_SysV", "X86_64_Win32", "X86_64_Win32_seed_initial")
SVG = "{http://www.w3.org/2000/svg}"

# Addresses for the emulated runs.
CODE, FN, LANDING, CTX = 0x10000, 0x20000, 0x30000, 0x5A5A5A5A
CALLER_RET, TRAMP = 0xCA11E400, 0x7AA00
MXCSR = 0x7F80  # valid MXCSR with a distinctive rounding mode
FCW = 0x037F
MXCSR_AT, FCW_AT = 24, 0  # offsets in the FXSAVE image (Intel SDM)
CONTROL_VALUES = {"mxcsr": MXCSR, "fcw": FCW}


@pytest.fixture(scope="module")
def tables():
    found = spec_files(SPECS_DIR)
    return {abi: build(select(found, [abi])[0]) for abi in ABIS}


@pytest.fixture(scope="module")
def all_tables():
    return {item.spec.abi: build(item) for item in spec_files(SPECS_DIR)}


@pytest.fixture(scope="module")
def pages(tables):
    return render_pages(list(tables.values()))


def _word(uc, address: int, size: int = 8) -> int:
    return int.from_bytes(uc.mem_read(address, size), "little")


@pytest.mark.parametrize("abi", ABIS)
def test_return_addresses_and_fxsave_image_are_where_drawn(tables, abi):
    table = tables[abi]
    fmap = abi_doc(table).fmap
    uc, sp, _, _ = _run_to_reentry(table, fmap)
    returns = sorted((r for r in fmap.regions if r.kind == "return"), key=lambda r: r.lo)
    assert [_word(uc, sp + r.lo) for r in returns] == [TRAMP + 6, CALLER_RET]
    vector = fmap.vector_region()
    assert _word(uc, sp + vector.lo + MXCSR_AT, 4) == MXCSR
    assert _word(uc, sp + vector.lo + FCW_AT, 2) == FCW
    assert (sp + vector.lo) % table.spec.resolver.vector_state.align == 0


# Arches unicorn runs (it has no LoongArch); the frame code they share with
# LoongArch64 (store style) is covered through RISC-V and MIPS.
EMULATED = ("AArch64", "I386", "Mips32Be", "Mips32Le", "Mips64", "Riscv64", *ABIS)
ALIGNED = 0x208000  # an address aligned for every convention


def _uc_setup(spec):
    """(Uc, register name -> unicorn id) for the spec's arch, from unicorn's own tables."""
    import unicorn
    from unicorn import arm64_const, mips_const, riscv_const, x86_const

    arch = spec.arch_info
    big = unicorn.UC_MODE_BIG_ENDIAN if spec.endian == "big" else 0
    gprs = [r.name for r in arch.registers if r.cls == "gpr"]
    fprs = [r.name for r in arch.registers if r.cls == "fpr"]
    if arch.name in ("x86_64", "i386"):
        mode = unicorn.UC_MODE_64 if arch.name == "x86_64" else unicorn.UC_MODE_32
        uc = unicorn.Uc(unicorn.UC_ARCH_X86, mode)
        # unicorn calls the x87 control word FPCW.
        names = {r.name: {"fcw": "FPCW"}.get(r.name, r.name.upper()) for r in arch.registers}
        ids = {n: getattr(x86_const, f"UC_X86_REG_{u}") for n, u in names.items()}
    elif arch.name == "aarch64":
        uc = unicorn.Uc(unicorn.UC_ARCH_ARM64, unicorn.UC_MODE_ARM)
        ids = {
            r.name: getattr(arm64_const, f"UC_ARM64_REG_{r.name.upper()}") for r in arch.registers
        }
    elif arch.name in ("mips32", "mips64"):
        mode = unicorn.UC_MODE_MIPS32 if arch.name == "mips32" else unicorn.UC_MODE_MIPS64
        uc = unicorn.Uc(unicorn.UC_ARCH_MIPS, mode | big)
        # The arch lists the registers in number order ($0..$31, $f0..$f31).
        ids = {n: getattr(mips_const, f"UC_MIPS_REG_{i}") for i, n in enumerate(gprs)}
        ids |= {n: getattr(mips_const, f"UC_MIPS_REG_F{i}") for i, n in enumerate(fprs)}
    else:
        uc = unicorn.Uc(unicorn.UC_ARCH_RISCV, unicorn.UC_MODE_RISCV64)
        ids = {n: getattr(riscv_const, f"UC_RISCV_REG_X{i}") for i, n in enumerate(gprs)}
        ids |= {n: getattr(riscv_const, f"UC_RISCV_REG_F{i}") for i, n in enumerate(fprs)}
        uc.reg_write(riscv_const.UC_RISCV_REG_MSTATUS, 0x6000)  # FS: the FPU is on
    return uc, ids


def _run_to_reentry(table, fmap, callee: bytes = b""):
    """Run the resolver until it reaches the re-entry function.

    sp at the resolver's entry is placed so that the convention's reference
    point is aligned (and, when the resolver realigns, the realignment gap is
    zero, as the picture draws it).  Returns (uc, sp at the call, register
    values at entry, expected sp at the call).  With `callee`, the re-entry
    function runs too, and the run stops at the landing address.
    """
    spec = table.spec
    uc, ids = _uc_setup(spec)
    for base in (CODE, FN, LANDING):
        uc.mem_map(base, 0x1000)
    uc.mem_map(ALIGNED - 0x8000, 0x10000)
    uc.mem_write(FN, callee)
    uc.mem_write(CODE, table.instantiate({"ReentryFnAddr": FN, "ReentryCtxAddr": CTX}))
    at_call = ALIGNED - fmap.ref
    for region in fmap.resolver_regions():
        if region.kind == "return":  # pushed by the caller's and the trampoline's calls
            value = CALLER_RET if region.hi == fmap.top else TRAMP + spec.trampoline.call_size
            uc.mem_write(at_call + region.lo, value.to_bytes(region.size, spec.endian))
    skip = {spec.arch_info.stack_pointer, "zero"}
    for i, reg in enumerate(spec.arch_info.registers):
        if reg.name not in skip and reg.name in ids:
            value = (0x1111 * (i + 1)) << (reg.bits - 16) | 0x9FC0 + i
            # Control registers get valid values (distinct from their defaults).
            uc.reg_write(ids[reg.name], CONTROL_VALUES.get(reg.name, value))
    # Read back: aliases (AArch64 d/q) leave each register with its final value.
    values = {n: uc.reg_read(i) for n, i in ids.items() if n not in skip}
    uc.reg_write(ids[spec.arch_info.stack_pointer], at_call + fmap.entry)
    uc.emu_start(CODE, LANDING if callee else FN, count=10_000)
    sp = uc.reg_read(ids[spec.arch_info.stack_pointer])
    # x86: the call has pushed its return address; RISC calls push nothing.
    return uc, sp + table.frame.return_addresses // 2, values, at_call


@pytest.mark.parametrize("abi", EMULATED)
def test_every_frame_picture_matches_the_emulated_stack(all_tables, abi):
    table = all_tables[abi]
    doc = abi_doc(table)
    uc, sp, values, at_call = _run_to_reentry(table, doc.fmap)
    assert sp == at_call  # the frame's depth (fmap.entry) is what the code lowers sp by
    assert (sp % doc.fmap.align == 0) == doc.fmap.sp_aligned
    checked = 0
    for region in doc.fmap.resolver_regions():
        if region.reg is not None:
            mask = (1 << 8 * region.size) - 1
            got = int.from_bytes(uc.mem_read(sp + region.lo, region.size), table.spec.endian)
            assert got == values[region.reg] & mask, region
            checked += 1
    # The register table's offsets (fxsave slots included) hold the registers too.
    for row in doc.registers:
        found = re.search(r"at sp\+(0x[0-9a-f]+)", row.resolver)
        if found:
            size = table.spec.arch_info.register(row.name).bits // 8
            got = int.from_bytes(uc.mem_read(sp + int(found[1], 16), size), table.spec.endian)
            assert got == values[row.name] & ((1 << 8 * size) - 1), row
            checked += 1
    saved = set(table.spec.resolver.saves) | set(table.spec.resolver.fp_saves)
    assert checked >= 2 * len(saved)


def test_picture_problems_agree_with_verify(all_tables):
    """What the pages draw as broken is what `asmgen verify` finds by running the code."""
    from asmgen.docs.verdict import verdicts

    found = verdicts(list(all_tables.values()))
    assert sum(bool(d.fmap.problems) for d in map(abi_doc, all_tables.values())) >= 3
    for abi, table in all_tables.items():
        doc, verdict = abi_doc(table), found[abi]

        def failing(check: str, verdict=verdict) -> bool:
            return verdict.outcome(check) in ("FAIL", "declared", "XPASS")

        assert bool(doc.fmap.overlaps) == failing("shadow_space"), abi
        assert (not doc.fmap.sp_aligned) == failing("frame_align"), abi
        unsaved = {r.name for r in doc.registers if r.problem}
        assert bool(unsaved & set(table.spec.call.fp_args)) == failing("fp_args"), abi
        assert bool(unsaved & set(table.spec.call.int_args)) == failing("int_args"), abi


def test_register_roles_come_from_the_spec(tables):
    rows = {r.name: r for r in abi_doc(tables["X86_64_Win32"]).registers}
    assert rows["rcx"].role == "integer argument 1, caller-saved"
    assert "passes the context" in rows["rcx"].resolver
    assert "passes the trampoline address" in rows["rdx"].resolver
    assert rows["rdi"].role == "callee-saved"
    assert rows["xmm3"].role == "FP argument 4, caller-saved"
    assert rows["xmm6"].role == "callee-saved"
    assert rows["rax"].role == "return value, caller-saved"
    assert rows["rsp"].role == "stack pointer"
    sysv = {r.name: r for r in abi_doc(tables["X86_64_SysV"]).registers}
    assert sysv["rdi"].role == "integer argument 1, caller-saved"
    assert sysv["rdi"].resolver.startswith("passes the context")


def test_unsaved_argument_register_is_a_problem(tables):
    # A resolver that keeps no vector state drops the FP argument registers.
    text = (SPECS_DIR / "x86_64_sysv.yaml").read_text()
    text = text.replace("{kind: fxsave64, area_size: 0x200}", "{kind: none}")
    # Past the contract checks, which refuse such a spec for generate.
    spec = parse_spec(text, SPECS_DIR / "x86_64_sysv.yaml", contract=False)
    table = tables["X86_64_SysV"]
    rows = register_rows(spec, frame_map(spec, table.frame))
    flagged = sorted((r.name for r in rows if r.problem), key=lambda n: int(n[3:]))
    assert flagged == [f"xmm{i}" for i in range(8)]


def test_seed_shows_its_overlap_and_the_others_do_not(tables):
    seed = abi_doc(tables["X86_64_Win32_seed_initial"]).fmap
    (overlap,) = seed.overlaps
    assert (overlap.lo, overlap.hi) == (0, 0x20)
    (problem,) = seed.problems
    assert "home area" in problem
    assert "MXCSR" in problem
    assert "[sp+0x0, sp+0x20)" in problem
    vector = seed.vector_region()
    assert vector.problem == overlap.problem == 0
    for abi in ("X86_64_SysV", "X86_64_Win32"):
        fmap = abi_doc(tables[abi]).fmap
        assert fmap.problems == () and fmap.overlaps == ()


def test_the_drawn_overlap_is_real(tables):
    """A callee that spills its four register arguments into its home area."""
    from keystone import KS_ARCH_X86, KS_MODE_64, KS_OPT_SYNTAX_ATT, Ks

    ks = Ks(KS_ARCH_X86, KS_MODE_64)
    ks.syntax = KS_OPT_SYNTAX_ATT
    spill = "; ".join(
        f"movq %{reg}, 0x{8 * (i + 1):x}(%rsp)" for i, reg in enumerate(["rcx", "rdx", "r8", "r9"])
    )
    callee, _ = ks.asm(f"{spill}; movabsq $0x{LANDING:x}, %rax; retq", FN)
    restored = {}
    for abi in ("X86_64_Win32", "X86_64_Win32_seed_initial"):
        from unicorn import x86_const as X

        uc, _, values, _ = _run_to_reentry(tables[abi], abi_doc(tables[abi]).fmap, bytes(callee))
        restored[abi] = uc.reg_read(X.UC_X86_REG_MXCSR)
    assert restored["X86_64_Win32"] == MXCSR
    # The seed's fxrstor64 reloads MXCSR from the home slot where the callee
    # spilled its fourth argument, r9 (hardware would fault on the reserved bits).
    assert restored["X86_64_Win32_seed_initial"] == values["r9"] & 0xFFFFFFFF


def test_misaligned_frame_is_flagged(tables):
    table = tables["X86_64_SysV"]
    frame = dataclasses.replace(table.frame, padding=0)
    fmap = frame_map(table.spec, frame)
    assert not fmap.sp_aligned
    assert fmap.sp_misalignment == 8
    assert any("past a 16-byte boundary" in p for p in fmap.problems)


def _svg(pages, abi) -> ET.Element:
    return ET.fromstring(pages[f"{abi}.svg"])


def _texts(root) -> list[str]:
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]


@pytest.mark.parametrize("abi", ABIS)
def test_svg_is_well_formed_with_the_expected_labels(tables, pages, abi):
    root = _svg(pages, abi)
    assert root.tag == f"{SVG}svg"
    texts = _texts(root)
    fmap = abi_doc(tables[abi]).fmap
    for label in (
        "caller's return address",
        "trampoline's return address",
        "saved rbp (frame pointer)",
        *(f"saved {r}" for r in tables[abi].spec.resolver.saves),
        "alignment padding",
        "FCW FSW FTW FOP FIP FDP MXCSR",
        "xmm15",
        "sp at the call: 16-byte aligned",
        f"sp+{fmap.top:#x}",
    ):
        assert label in texts, label
    assert any(t.startswith("vector state (fxsave64)") for t in texts)
    assert ("callee's home area" in texts) == bool(tables[abi].spec.call.shadow_space)
    assert ("shadow space" in texts) == bool(tables[abi].frame.shadow)


def _rect(root, css_class: str) -> tuple[float, float, float, float]:
    group = next(g for g in root.iter(f"{SVG}g") if g.get("class") == css_class)
    rect = group.find(f"{SVG}rect")
    return tuple(float(rect.get(k)) for k in ("x", "y", "width", "height"))


def _png(svg_text: str):
    import cairosvg
    from PIL import Image

    return Image.open(io.BytesIO(cairosvg.svg2png(bytestring=svg_text.encode()))).convert("RGB")


def _hex_rgb(colour: str) -> tuple[int, int, int]:
    return tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))


def test_svgs_render_to_png(pages):
    seed = _svg(pages, "X86_64_Win32_seed_initial")
    image = _png(pages["X86_64_Win32_seed_initial.svg"])
    assert image.size == (int(seed.get("width")), int(seed.get("height")))
    assert 600 <= image.width <= 1000 and 1000 <= image.height <= 3000
    # The overlap band is drawn in the warning colour, where the SVG says it is.
    x, y, w, h = _rect(seed, "overlap problem")
    assert image.getpixel((int(x + w * 0.8), int(y + h / 2))) == _hex_rgb(WARN_FILL)
    # The same place on the corrected Win64 page is the shadow space, not a warning.
    win = _png(pages["X86_64_Win32.svg"])
    assert win.getpixel((int(x + w * 0.8), int(y + h / 2))) != _hex_rgb(WARN_FILL)
    # Every saved register's box has ink (its label) and fill, not only background.
    for group in seed.iter(f"{SVG}g"):
        if group.get("class") != "region save":
            continue
        rect = group.find(f"{SVG}rect")
        box = [int(float(rect.get(k))) for k in ("x", "y", "width", "height")]
        crop = image.crop((box[0] + 2, box[1] + 2, box[0] + box[2] - 2, box[1] + box[3] - 2))
        colours = {c for _, c in crop.getcolors(maxcolors=4096)}
        assert (255, 255, 255) not in colours
        assert len(colours) > 2  # fill, text and antialiasing


def test_pages_are_deterministic_and_listing_matches_explain(tables, pages, capsys):
    assert render_pages(list(tables.values())) == pages
    assert main(["explain", "X86_64_Win32"]) == 0
    explained = capsys.readouterr().out
    assert "resolver_entry:" in explained
    assert f"```text\n{explained}```" in pages["X86_64_Win32.md"]
    index = pages["index.md"]
    for abi in ABIS:
        assert f"[{abi}]({abi}.md)" in index
    assert "| 0x20 / 0x0 |" in index  # the seed: needed 0x20, reserved 0


def test_checked_in_pages_are_fresh(capsys):
    code = main(["docs", "--check"])
    out = capsys.readouterr().out
    assert code == 0, out
    # The project is found from the current folder: the checkout.
    assert out.strip() == f"{SPECS_DIR.parent / 'docs' / 'abi'}: up to date"


def test_docs_writes_checks_and_prunes(tree, capsys):
    # Three specs are enough to show writing, checking and pruning, and fast.
    for path in (tree / "abi_specs").glob("*.yaml"):
        if path.stem not in ("x86_64_sysv", "x86_64_win64", "x86_64_win64_seed"):
            path.unlink()
    out = tree / "docs" / "abi"
    args = ["--specs", str(tree / "abi_specs"), "--templates", str(tree / "templates")]
    args += ["--out", str(out)]
    assert main(["docs", "--check", *args]) == 1
    assert main(["docs", *args]) == 0
    written = sorted(p.name for p in out.iterdir())
    abis = [item.spec.abi for item in spec_files(tree / "abi_specs")]
    assert sorted(abis) == sorted(ABIS)
    assert written == sorted(["index.md", *(f"{a}.md" for a in abis), *(f"{a}.svg" for a in abis)])
    stamp = {p: p.stat().st_mtime_ns for p in out.iterdir()}
    assert main(["docs", *args]) == 0
    assert {p: p.stat().st_mtime_ns for p in out.iterdir()} == stamp
    assert main(["docs", "--check", *args]) == 0
    # A spec change makes the pages stale; a removed spec's pages are pruned.
    (tree / "abi_specs" / "x86_64_win64_seed.yaml").unlink()
    capsys.readouterr()
    assert main(["docs", "--check", *args]) == 1
    assert "X86_64_Win32_seed_initial.md: no spec generates it" in capsys.readouterr().out
    assert main(["docs", *args]) == 0
    assert not (out / "X86_64_Win32_seed_initial.svg").exists()
    (out / "notes.md").write_text("hand-written\n")
    assert main(["docs", *args]) == 0
    assert (out / "notes.md").exists()
