"""The package's shape: every arch fact lives in its home (asmgen/arches/),
and imports run downhill through the stage packages with no loops.

Both checks read the source (tokenize, ast), so each is shown able to fail
on a planted sample.
"""

from __future__ import annotations

import ast
import io
import re
import textwrap
import tokenize
from pathlib import Path

import pytest

from asmgen.arches import ARCHES

PACKAGE = Path(__file__).resolve().parents[1] / "asmgen"
HOME = PACKAGE / "arches"

# Spellings of arches beside the registry's names and aliases: families and
# the arches that come next (a generic module names none of them either).
SPELLINGS = ("ppc", "ppc64", "ppc64le", "powerpc", "s390x", "systemz")


def arch_words() -> set[str]:
    words = set(SPELLINGS)
    for arch in ARCHES.values():
        words |= {arch.name, *arch.aliases}
    return {word.lower() for word in words}


def _pattern(words: set[str]) -> re.Pattern[str]:
    # Longest first, so `x86-64` is reported rather than `x86`; `_` ends a
    # word (`x86_64_regs` names x86_64) but letters and digits do not.
    alternatives = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    return re.compile(rf"(?<![a-z0-9])({alternatives})(?![a-z0-9])", re.IGNORECASE)


def abi_names() -> set[str]:
    """The checked-in specs' ABI and LLVM class names."""
    from asmgen.spec.files import spec_files

    return {name for item in spec_files() for name in (item.spec.abi, item.spec.class_name)}


def _without_abi_names(text: str, abis: set[str]) -> str:
    """`text` with every word that holds an ABI's name blanked: an example
    class name in generated prose (`asmgen::X86_64_SysV_ORCABI`) names that
    ABI, whose name starts with its arch's."""
    return re.sub(r"\w+", lambda m: " " * len(m[0]) if any(a in m[0] for a in abis) else m[0], text)


def arch_names_in(
    source: str, words: set[str], abis: set[str] = frozenset()
) -> list[tuple[int, str, str]]:
    """(line, token kind, arch word) for every arch word in an identifier,
    string literal (docstrings included) or comment of `source`; in string
    literals, words holding one of `abis` are ABI names, not arch names."""
    pattern = _pattern(words)
    found = []
    kinds = {tokenize.NAME: "identifier", tokenize.STRING: "string", tokenize.COMMENT: "comment"}
    kinds |= {
        getattr(tokenize, name): "string"
        for name in ("FSTRING_MIDDLE", "TSTRING_MIDDLE")
        if hasattr(tokenize, name)
    }
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        kind = kinds.get(token.type)
        if kind is None:
            continue
        text = _without_abi_names(token.string, abis) if kind == "string" else token.string
        for match in pattern.finditer(text):
            line = token.start[0] + token.string[: match.start()].count("\n")
            found.append((line, kind, match.group(1)))
    return found


def generic_modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if HOME not in p.parents)


def test_the_scan_finds_arch_names_in_every_kind_of_token():
    planted = textwrap.dedent(
        '''
        """Reads the frame (as on RISC-V)."""
        def x86_64_regs():  # aarch64 pairs
            return "mips" + f"{1}-ppc64le" + 'x86-64'
        ok = "mipsy", "sx86", "riscv640", "amd64x"
        '''
    )
    found = arch_names_in(planted, arch_words())
    assert {(line, kind, word.lower()) for line, kind, word in found} == {
        (2, "string", "risc-v"),
        (3, "identifier", "x86_64"),
        (3, "comment", "aarch64"),
        (4, "string", "mips"),
        (4, "string", "ppc64le"),
        (4, "string", "x86-64"),
    }


def test_abi_names_in_strings_are_not_arch_names():
    planted = 'x = "e.g. asmgen::X86_64_SysV_ORCABI, on x86_64"  # X86_64_SysV\nX86_64_SysV = 1\n'
    found = arch_names_in(planted, arch_words(), {"X86_64_SysV"})
    assert [(line, kind) for line, kind, _ in found] == [
        (1, "string"),
        (1, "comment"),
        (2, "identifier"),
    ]


def test_the_registry_gives_every_arch_its_names():
    words = arch_words()
    assert {"x86_64", "x86", "aarch64", "arm64", "riscv", "loongarch", "mips", "i386"} <= words
    assert set(ARCHES) <= words


def test_no_generic_module_names_an_arch():
    words, abis = arch_words(), abi_names()
    found = [
        f"{path.relative_to(PACKAGE.parent)}:{line}: {kind} names {word!r}"
        for path in generic_modules()
        for line, kind, word in arch_names_in(path.read_text(encoding="utf-8"), words, abis)
    ]
    assert not found, "arch facts belong in asmgen/arches/:\n" + "\n".join(found)


# --- imports run downhill -------------------------------------------------

# Each top-level part of the package and its rank: a module imports only
# from its own part or from parts of lower rank (so never sideways between
# emit/ and verify/, and never upwards).
RANKS = {
    "asmgen": 0,  # the package's __init__ (its version)
    "errors": 0,
    "resources": 0,
    "project": 1,
    "arches": 1,
    "spec": 2,
    "build": 3,
    "emit": 4,
    "verify": 4,
    "patch": 5,
    "docs": 5,
    "review": 6,
    "cli": 7,
    "__main__": 8,
}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path, root: Path, modules: set[str]) -> set[str]:
    """The package's modules `path` imports (at any depth, lazily or not)."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name in modules}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            for alias in node.names:
                if f"{target}.{alias.name}" in modules:
                    found.add(f"{target}.{alias.name}")
                elif target in modules:
                    found.add(target)
    found.discard(name)
    return found


def import_graph(root: Path) -> dict[str, set[str]]:
    paths = sorted(root.rglob("*.py"))
    modules = {module_name(p, root) for p in paths}
    return {module_name(p, root): imports(p, root, modules) for p in paths}


def part(module: str) -> str:
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else pieces[0]


def uphill(graph: dict[str, set[str]]) -> list[str]:
    return [
        f"{module} imports {target}"
        for module, targets in sorted(graph.items())
        for target in sorted(targets)
        if part(module) != part(target) and RANKS[part(target)] >= RANKS[part(module)]
    ]


def loops(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in graph.get(module, ()):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def test_every_part_of_the_package_has_a_rank():
    assert {part(m) for m in import_graph(PACKAGE)} == set(RANKS)


def test_imports_run_downhill_with_no_loops():
    graph = import_graph(PACKAGE)
    assert not uphill(graph)
    assert not loops(graph)


@pytest.mark.parametrize(
    ("files", "uphill_found", "loop_found"),
    [
        (
            {"build/a.py": "from asmgen.emit import b\n", "emit/b.py": ""},
            ["asmgen.build.a imports asmgen.emit.b"],
            [],
        ),
        (
            {"emit/b.py": "import asmgen.verify.c\n", "verify/c.py": ""},
            ["asmgen.emit.b imports asmgen.verify.c"],
            [],
        ),
        (
            {"build/a.py": "from . import b\n", "build/b.py": "def f():\n    from .a import x\n"},
            [],
            [["asmgen.build.a", "asmgen.build.b"]],
        ),
    ],
)
def test_the_import_checks_fail_on_planted_packages(tmp_path, files, uphill_found, loop_found):
    root = tmp_path / "asmgen"
    for name, text in {"__init__.py": "", **files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        (path.parent / "__init__.py").touch()
        path.write_text(text)
    graph = import_graph(root)
    assert uphill(graph) == uphill_found
    assert loops(graph) == loop_found
