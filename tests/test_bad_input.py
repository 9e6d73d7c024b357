"""Bad input: one `path:line[:col]: error: message` line, exit 2, no traceback,
and nothing changed in the output folder.

The inputs are files in tests/bad_inputs/: malformed specs (specs/*.yaml, each
added beside the real specs), malformed convention files (conventions/*.yaml,
each added beside the real ones and named by a copy of a real spec of its
arch), malformed templates (templates/<arch>/*.j2, each replacing that arch's
template) and command lines (cli.yaml).  The first line of every spec,
convention and template says what it must produce: ``expect: LINE: text``
(``expect: spec: text`` for a convention whose fault shows in the spec that
names it, at its `convention:` line).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml
from scratch_tree import generate_args

from asmgen.cli import main

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(__file__).resolve().parent / "bad_inputs"
EXPECT = re.compile(rb"expect: (\d+): (.*?)\s*(#\})?$")

SPECS = sorted(CORPUS.glob("specs/*.yaml"))
CONVENTIONS = sorted(CORPUS.glob("conventions/*.yaml"))
TEMPLATES = sorted(CORPUS.glob("templates/*/*.j2"))
CLI = yaml.safe_load((CORPUS / "cli.yaml").read_text())


def _expectation(path: Path) -> tuple[int, str]:
    first = path.read_bytes().split(b"\n", 1)[0]
    if b"expect: spec: " in first:
        return 0, first.split(b"expect: spec: ", 1)[1].decode().strip()
    match = EXPECT.search(first)
    assert match, f"{path}: first line must say `expect: LINE: text`"
    return int(match.group(1)), match.group(2).decode()


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


@pytest.fixture
def filled(tree: Path) -> Path:
    """The scratch tree with the checked-in outputs in generated/."""
    for path in (ROOT / "generated").iterdir():
        shutil.copy2(path, tree / "generated" / path.name)
    return tree


def _run(tree: Path, argv: list[str], capsys) -> tuple[int, str]:
    before = _snapshot(tree / "generated")
    code = main(argv)
    err = capsys.readouterr().err
    # Nothing written, renamed or left behind in the output folder.
    assert _snapshot(tree / "generated") == before
    return code, err


def _assert_one_clean_line(code: int, err: str, where: str, line: int | None, fragment: str):
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    at = rf":{line}(:\d+)?" if line is not None else ""
    assert re.match(rf"^{re.escape(where)}{at}: error: ", lines[0]), lines[0]
    assert fragment in lines[0], lines[0]


def test_corpus_is_large_and_covers_every_source():
    assert len(SPECS) + len(TEMPLATES) + len(CLI) >= 50
    assert len(SPECS) >= 20 and len(TEMPLATES) >= 20 and len(CLI) >= 5
    assert len(CONVENTIONS) >= 15
    # Templates of both backends are in it.
    assert {p.parent.name for p in TEMPLATES} >= {"x86_64", "riscv64"}


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_bad_spec(filled, capsys, path):
    line, fragment = _expectation(path)
    # Last in sorted order, so a clash with a real spec is reported on it.
    target = filled / "abi_specs" / f"zz_{path.name}"
    shutil.copyfile(path, target)
    code, err = _run(filled, generate_args(filled), capsys)
    _assert_one_clean_line(code, err, str(target), line, fragment)


@pytest.mark.parametrize("path", CONVENTIONS, ids=lambda p: p.stem)
def test_bad_convention(filled, capsys, path):
    line, fragment = _expectation(path)
    specs = filled / "abi_specs"
    shutil.copyfile(path, specs / "conventions" / path.name)
    # A copy of a real spec of the convention's arch names it.
    arch = re.search(r"^arch: (\w+)", path.read_text(), re.M).group(1)
    real = next(p for p in sorted(specs.glob("*.yaml")) if f"\narch: {arch}\n" in p.read_text())
    text = re.sub(r"^abi: .*$", "abi: Bad_Case", real.read_text(), count=1, flags=re.M)
    text = re.sub(r"^convention: .*$", f"convention: {path.stem}", text, count=1, flags=re.M)
    spec = specs / "zz_bad_case.yaml"
    # The real spec's caller conventions are its own convention's.
    text = re.sub(r"^serves: .*\n", "", text, flags=re.M)
    spec.write_text(re.sub(r"^llvm_class: .*\n", "", text, flags=re.M))
    code, err = _run(filled, generate_args(filled), capsys)
    if line:
        _assert_one_clean_line(code, err, str(specs / "conventions" / path.name), line, fragment)
    else:
        at = spec.read_text().split("\nconvention: ")[0].count("\n") + 2
        _assert_one_clean_line(code, err, str(spec), at, fragment)


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: f"{p.parent.name}-{p.stem}")
def test_bad_template(filled, capsys, path):
    line, fragment = _expectation(path)
    target = filled / "templates" / path.parent.name / "resolver.s.j2"
    shutil.copyfile(path, target)
    code, err = _run(filled, generate_args(filled), capsys)
    _assert_one_clean_line(code, err, str(target), line, fragment)


@pytest.mark.parametrize("case", CLI, ids=lambda c: c["name"])
def test_bad_command_line(filled, capsys, monkeypatch, case):
    empty = filled / "empty"
    empty.mkdir()
    names = {
        "tree": filled,
        "specs": filled / "abi_specs",
        "templates": filled / "templates",
        "out": filled / "generated",
        "empty": empty,
    }

    def fill(text: str) -> str:
        return text.format(**names)

    for rel, text in case.get("files", {}).items():
        (filled / rel).parent.mkdir(parents=True, exist_ok=True)
        (filled / rel).write_text(text)
    for name, value in case.get("env", {}).items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, fill(value))
    where = case["where"] if case["where"] == "asmgen" else str(filled / case["where"])
    line = None
    if "at" in case:
        text = Path(where).read_text()
        line = text[: text.index(case["at"])].count("\n") + 1
    try:
        code, err = _run(filled, [fill(a) for a in case["args"]], capsys)
    except SystemExit as exc:  # argparse's exit
        code, err = exc.code, capsys.readouterr().err
    _assert_one_clean_line(code, err, where, line, case["expect"])


def test_bare_decimal_is_refused_not_misassembled(tree, capsys):
    """keystone would read `$16` as 0x16: the check refuses it with file:line instead."""
    import keystone

    ks = keystone.Ks(keystone.KS_ARCH_X86, keystone.KS_MODE_64)
    ks.syntax = keystone.KS_OPT_SYNTAX_ATT
    assert bytes(ks.asm("subq $16, %rsi", 0)[0]) == bytes.fromhex("4883ee16")  # the trap itself
    shutil.copyfile(
        CORPUS / "templates/x86_64/bare_decimal.j2", tree / "templates/x86_64/resolver.s.j2"
    )
    argv = ["explain", "X86_64_SysV", "--specs", str(tree / "abi_specs")]
    assert main([*argv, "--templates", str(tree / "templates")]) == 2
    assert "write it as 0x10" in capsys.readouterr().err
