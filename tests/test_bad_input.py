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

import json
import os
import re
import shutil
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from scratch_tree import generate_args, tree_options

from asmgen.cli import main
from asmgen.errors import AsmgenError
from asmgen.spec.convention import all_conventions
from asmgen.spec.files import spec_files

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(__file__).resolve().parent / "bad_inputs"
LLVM_TREE = ROOT / "tests" / "fixtures" / "llvm_tree"
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
    files = sorted(p for p in folder.rglob("*") if p.is_file())  # generated/reentry/ too
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns) for p in files}


@pytest.fixture
def filled(tree: Path) -> Path:
    """The scratch tree with the checked-in outputs in generated/."""
    shutil.copytree(ROOT / "generated", tree / "generated", dirs_exist_ok=True)
    return tree


def _files(tree: Path) -> dict[str, bytes]:
    return {
        p.relative_to(tree).as_posix(): p.read_bytes()
        for p in sorted(tree.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


@pytest.fixture(scope="module")
def _one_tree(tmp_path_factory) -> tuple[Path, dict[str, bytes]]:
    tree = tmp_path_factory.mktemp("bad-inputs")
    for name in ("abi_specs", "templates", "generated"):
        shutil.copytree(ROOT / name, tree / name)
    return tree, _files(tree)


@pytest.fixture
def refilled(_one_tree) -> Path:
    """`filled`, one tree for the module: for the corpus tests, which add one
    file or replace one template.  Each starts from the checked-in files (the
    tree is checked), and what it changed is put back afterwards, with a new
    modification time (the conventions a command read are kept in the process
    by path and modification time; those of an untouched tree are read once)."""
    tree, pristine = _one_tree
    assert _files(tree) == pristine and not [p for p in tree.rglob("*") if p.is_symlink()]
    yield tree
    for path in sorted(tree.rglob("*"), reverse=True):
        rel = path.relative_to(tree).as_posix()
        if path.is_symlink() or (not path.is_dir() and rel not in pristine):
            path.unlink()
        elif path.is_dir() and not any(name.startswith(f"{rel}/") for name in pristine):
            shutil.rmtree(path)
    for rel, data in pristine.items():
        path = tree / rel
        if not path.is_file() or path.read_bytes() != data:
            before = path.stat().st_mtime_ns if path.exists() else 0
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            stamp = max(time.time_ns(), before + 1_000_000)
            os.utime(path, ns=(stamp, stamp))


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
def test_bad_spec(refilled, capsys, path):
    line, fragment = _expectation(path)
    # Last in sorted order, so a clash with a real spec is reported on it.
    target = refilled / "abi_specs" / f"zz_{path.name}"
    shutil.copyfile(path, target)
    code, err = _run(refilled, generate_args(refilled), capsys)
    _assert_one_clean_line(code, err, str(target), line, fragment)


def _add_bad_convention(tree: Path, path: Path) -> tuple[Path, int | None, str]:
    """Put convention file `path` into tree/abi_specs/conventions/ beside a copy
    of a real spec of its arch that names it: (where the error must point, its
    line, the fragment)."""
    line, fragment = _expectation(path)
    specs = tree / "abi_specs"
    (specs / "conventions").mkdir(exist_ok=True)
    shutil.copyfile(path, specs / "conventions" / path.name)
    arch = re.search(r"^arch: (\w+)", path.read_text(), re.M).group(1)
    real = next(
        p
        for p in sorted((ROOT / "abi_specs").glob("*.yaml"))
        if f"\narch: {arch}\n" in p.read_text()
    )
    text = re.sub(r"^abi: .*$", "abi: Bad_Case", real.read_text(), count=1, flags=re.M)
    text = re.sub(r"^convention: .*$", f"convention: {path.stem}", text, count=1, flags=re.M)
    spec = specs / "zz_bad_case.yaml"
    # The real spec's caller conventions are its own convention's.
    text = re.sub(r"^serves: .*\n", "", text, flags=re.M)
    text = re.sub(r"^llvm_class: .*\n", "", text, flags=re.M)
    spec.write_text(text)
    if line:
        return specs / "conventions" / path.name, line, fragment
    return spec, text.split("\nconvention: ")[0].count("\n") + 2, fragment


@pytest.mark.parametrize("path", CONVENTIONS, ids=lambda p: p.stem)
def test_bad_convention(refilled, capsys, path):
    where, line, fragment = _add_bad_convention(refilled, path)
    code, err = _run(refilled, generate_args(refilled), capsys)
    _assert_one_clean_line(code, err, str(where), line, fragment)


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: f"{p.parent.name}-{p.stem}")
def test_bad_template(refilled, capsys, path):
    line, fragment = _expectation(path)
    arch = path.parent.name
    target = refilled / "templates" / arch / "resolver.s.j2"
    shutil.copyfile(path, target)
    # The ABIs of that arch: the others would build first, and fine.
    abis = [f.spec.abi for f in spec_files(refilled / "abi_specs") if f.spec.arch == arch]
    code, err = _run(refilled, generate_args(refilled, *abis), capsys)
    _assert_one_clean_line(code, err, str(target), line, fragment)


@pytest.mark.parametrize("case", CLI, ids=lambda c: c["name"])
def test_bad_command_line(filled, capsys, monkeypatch, tmp_path_factory, case):
    empty = filled / "empty"
    empty.mkdir()
    names = {
        "tree": filled,
        "specs": filled / "abi_specs",
        "templates": filled / "templates",
        "out": filled / "generated",
        "empty": empty,
        "outside": tmp_path_factory.mktemp("outside"),  # in no project
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
    if "cwd" in case:
        monkeypatch.chdir(fill(case["cwd"]))
    where = case["where"]
    if where != "asmgen":
        where = fill(where) if "{" in where else str(filled / where)
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


def test_inputs_past_their_size_limit_stop_at_once(filled, capsys):
    """A 1 MiB description or template is refused from its first 64/256 KiB,
    before YAML or Jinja read it (a 100 MB one took 42 s and 664 MB)."""
    spec = filled / "abi_specs" / "zz_huge.yaml"
    text = (ROOT / "abi_specs" / "x86_64_sysv.yaml").read_text()
    spec.write_text(text.replace("abi: X86_64_SysV", "abi: Huge\ndescription: " + "x" * 0x100000))
    code, err = _run(filled, generate_args(filled), capsys)
    _assert_one_clean_line(code, err, str(spec), 1, "spec is larger than 64 KiB")
    spec.unlink()
    convention = filled / "abi_specs" / "conventions" / "sysv_amd64.yaml"
    convention.write_text(convention.read_text() + "# " + "x" * 0x100000 + "\n")
    code, err = _run(filled, generate_args(filled, "X86_64_SysV"), capsys)
    _assert_one_clean_line(code, err, str(convention), 1, "convention is larger than 64 KiB")
    shutil.copyfile(ROOT / "abi_specs" / "conventions" / "sysv_amd64.yaml", convention)
    template = filled / "templates" / "x86_64" / "resolver.s.j2"
    template.write_text(template.read_text() + "{#" + "x" * 0x100000 + "#}\n")
    code, err = _run(filled, generate_args(filled, "X86_64_SysV"), capsys)
    _assert_one_clean_line(code, err, str(template), 1, "template is larger than 256 KiB")


def test_byte_order_marks_are_skipped(filled, capsys):
    """Editors that write a UTF-8 byte-order mark give the same tables."""
    for path in (
        filled / "abi_specs" / "x86_64_sysv.yaml",
        filled / "abi_specs" / "conventions" / "sysv_amd64.yaml",
        filled / "templates" / "x86_64" / "resolver.s.j2",
    ):
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    out = filled / "bom"
    argv = ["generate", "X86_64_SysV", *tree_options(filled), "--out", str(out)]
    assert main(argv) == 0, capsys.readouterr().err
    fresh = json.loads((out / "tables.json").read_text())["abis"]["X86_64_SysV"]
    assert (
        fresh == json.loads((ROOT / "generated" / "tables.json").read_text())["abis"]["X86_64_SysV"]
    )


def test_editor_files_and_odd_entries_in_abi_specs_are_skipped(filled, capsys):
    """An Emacs lock (a dangling symlink named .#x.yaml), a vim swap file, a
    dangling symlink, a FIFO (reading it would block) and a folder: none is a spec."""
    specs = filled / "abi_specs"
    (specs / ".#x86_64_sysv.yaml").symlink_to("root@host.1234:1700000000")
    (specs / ".x86_64_sysv.yaml.swp").write_bytes(b"\x00vim swap")
    (specs / ".hidden.yaml").write_text("not: a spec\n")
    (specs / "moved.yaml").symlink_to(filled / "nowhere.yaml")
    os.mkfifo(specs / "pipe.yaml")
    (specs / "folder.yaml").mkdir()
    # Beside the convention files too (verify and review list them all).
    (specs / "conventions" / ".#sysv_amd64.yaml").symlink_to("root@host.1234:1700000000")
    os.mkfifo(specs / "conventions" / "pipe.yaml")
    assert main(generate_args(filled)) == 0, capsys.readouterr().err
    assert (filled / "generated" / "tables.json").read_text() == (
        ROOT / "generated" / "tables.json"
    ).read_text()
    assert "pipe" not in {c.convention for c in all_conventions(specs / "conventions")}


def test_a_convention_file_that_cannot_be_read_is_one_line(filled, capsys):
    """The file a spec names is read as it is: a FIFO is refused (not read,
    which would block), a dangling symlink is reported, never skipped in favour
    of asmgen's own convention of that name."""
    convention = filled / "abi_specs" / "conventions" / "sysv_amd64.yaml"
    convention.unlink()
    os.mkfifo(convention)
    code, err = _run(filled, generate_args(filled, "X86_64_SysV"), capsys)
    _assert_one_clean_line(code, err, str(convention), None, "convention is not a regular file")
    convention.unlink()
    convention.symlink_to(filled / "moved.yaml")
    code, err = _run(filled, generate_args(filled, "X86_64_SysV"), capsys)
    _assert_one_clean_line(code, err, str(convention), None, "a dangling symlink")


def test_unwind_the_templates_frame_cannot_give_names_the_spec(filled, capsys):
    """`unwind: eh_frame` describes a push %rbp / mov %rsp,%rbp frame; a template
    without one is reported at the spec's `unwind` line, not with a traceback."""
    template = filled / "templates" / "x86_64" / "resolver.s.j2"
    text = template.read_text()
    template.write_text(text.replace("    pushq   %rbp\n", "", 1).replace("    popq    %rbp\n", ""))
    spec = filled / "abi_specs" / "x86_64_sysv.yaml"
    line = spec.read_text().splitlines().index("unwind: eh_frame") + 1
    code, err = _run(filled, generate_args(filled, "X86_64_SysV"), capsys)
    _assert_one_clean_line(code, err, str(spec), line, "unwind: the resolver has no `push %rbp")


# Commands that load specs, each run against a folder holding one bad spec.
COMMANDS = {
    "generate": lambda tree: generate_args(tree),
    "check": lambda tree: ["check", *tree_options(tree), "--out", str(tree / "generated")],
    "verify --build": lambda tree: ["verify", "--build", *tree_options(tree)],
    "docs --check": lambda tree: ["docs", "--check", *tree_options(tree), "--out", str(tree)],
    "patch": lambda tree: ["patch", "--llvm-root", str(LLVM_TREE), *tree_options(tree)],
}


def _every_command_alike(tree: Path, capsys, where: Path, line: int | None, fragment: str):
    for command, argv in COMMANDS.items():
        try:
            code, err = _run(tree, argv(tree), capsys)
        except SystemExit as exc:
            code, err = exc.code, capsys.readouterr().err
        assert err.startswith(f"{where}:"), (command, err)
        _assert_one_clean_line(code, err, str(where), line, fragment)


def _bare_tree(tree: Path) -> Path:
    shutil.copytree(ROOT / "templates", tree / "templates")
    (tree / "abi_specs").mkdir()
    (tree / "generated").mkdir()
    return tree


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_every_command_refuses_a_bad_spec_alike(tmp_path, capsys, path):
    """generate, check, verify --build, docs and patch load specs the same way:
    a spec one refuses, all refuse, with the same line."""
    tree = _bare_tree(tmp_path)
    if "clash" in path.stem:  # the spec it clashes with
        shutil.copy(ROOT / "abi_specs" / "x86_64_sysv.yaml", tree / "abi_specs")
    target = tree / "abi_specs" / f"zz_{path.name}"
    shutil.copyfile(path, target)
    _every_command_alike(tree, capsys, target, *_expectation(path))


@pytest.mark.parametrize("path", CONVENTIONS, ids=lambda p: p.stem)
def test_every_command_refuses_a_bad_convention_alike(tmp_path, capsys, path):
    """A convention file one command refuses, all refuse, with the same line."""
    tree = _bare_tree(tmp_path)
    _every_command_alike(tree, capsys, *_add_bad_convention(tree, path))


@pytest.mark.parametrize("name", ["patch_not_an_orc_address", "loop_for_ever"])
def test_every_command_refuses_a_bad_template_alike(tmp_path, capsys, name):
    """A template generate refuses, verify --build, check, docs and patch refuse
    with the same line (a patch point writeResolverCode cannot fill was once
    refused by the C++ emitter only)."""
    tree = _bare_tree(tmp_path)
    shutil.copy(ROOT / "abi_specs" / "x86_64_sysv.yaml", tree / "abi_specs")
    path = CORPUS / "templates" / "x86_64" / f"{name}.j2"
    target = tree / "templates" / "x86_64" / "resolver.s.j2"
    shutil.copyfile(path, target)
    _every_command_alike(tree, capsys, target, *_expectation(path))


def test_the_identifier_checks_know_every_name_the_outputs_define():
    """An ABI id becomes a global of the generated module and a class name a C++
    struct: spec/names.py refuses the names the outputs already use.  Read from
    the checked-in outputs, so an emitter that adds a name fails here first."""
    import ast

    from asmgen.spec.names import CPP_HEADER_NAMES, ORCABI_SUFFIX, PYTHON_MODULE_NAMES

    found = spec_files(ROOT / "abi_specs")
    module = ast.parse((ROOT / "generated" / "orc_resolvers.py").read_text())
    defined = set()
    for node in module.body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            defined.add(node.name)
        for target in getattr(node, "targets", [getattr(node, "target", None)]):
            if isinstance(target, ast.Name):
                defined.add(target.id)
        if isinstance(node, ast.Import | ast.ImportFrom):
            defined.update((a.asname or a.name).split(".")[0] for a in node.names)
    abis = {f.spec.abi for f in found}
    assert defined - abis - {n for n in defined if n.startswith("_")} <= PYTHON_MODULE_NAMES

    classes = {f.spec.class_name for f in found} | {f"{abi}{ORCABI_SUFFIX}" for abi in abis}
    for name in ("orc_resolvers.h", "orc_resolvers_llvm.h"):
        # Comments dropped: they name classes in prose ("LLVM's class where ...").
        code = re.sub(r"//[^\n]*", "", (ROOT / "generated" / name).read_text())
        # Declarations at namespace scope start a line (the headers are
        # clang-formatted): namespaces, classes, functions.
        start = r"^(?:template <[^>]*>\s*)?"
        declared = set(re.findall(start + r"(?:namespace|struct|class)\s+(\w+)", code, re.M))
        declared |= set(re.findall(start + r"(?:inline\s+)?[\w:<>\[\]]+\s+(\w+)\(", code, re.M))
        # The namespaces names are qualified with (not template parameters).
        parameters = set(re.findall(r"\btypename (\w+)", code))
        declared |= set(re.findall(r"(?<!::)\b(\w+)::", code)) - parameters
        assert declared - classes <= CPP_HEADER_NAMES, (name, declared - classes)


def test_a_render_past_its_time_limit_stops_at_the_next_step(filled, capsys, monkeypatch):
    """The time limit backs up the step and size counts (a body of slow steps);
    with no time at all, the first loop step or call of a real template stops it."""
    import asmgen.build.sandbox

    monkeypatch.setattr(asmgen.build.sandbox, "MAX_SECONDS", 0.0)
    monkeypatch.setenv("ASMGEN_CACHE", "0")  # the build cache cannot see a patched limit
    template = filled / "templates" / "x86_64" / "resolver.s.j2"
    # The first step: a loop, or a call (the `cfi()` of the frame's first push).
    lines = template.read_text().splitlines()
    line = next(i for i, t in enumerate(lines, 1) if "{% for " in t or "cfi(" in t)
    code, err = _run(filled, generate_args(filled, "X86_64_SysV"), capsys)
    _assert_one_clean_line(code, err, str(template), line, "one render takes more than 0 seconds")


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="ab \t\r\n\x0b\x0c\u2028\u00a0", max_size=16))
def test_an_error_is_one_line_with_each_line_break_one_space(message):
    """What the message held between its line breaks stays; each run of white
    space that breaks a line is one space (a simple pattern, run on short text)."""
    expected = re.sub(r"\s*[\r\n]+\s*", " ", f"f:1: error: {message}")
    assert str(AsmgenError(message, "f", 1)) == expected
