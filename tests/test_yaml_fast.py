"""The libyaml path of spec/yaml_lines.py reads every file as the pure-Python
path does: the same values, the same key lines, the same error lines; only
nesting too deep for the Python composer's recursion is located better."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import asmgen.spec.yaml_lines as yaml_lines
from asmgen.errors import AsmgenError

ROOT = Path(__file__).resolve().parent.parent
CORPUS = sorted(
    p
    for folder in ("abi_specs", "asmgen", "tests")
    for p in (ROOT / folder).rglob("*.yaml")
    if p.is_file()
)
EXTRA = {
    "mapping values in a flow": "abi: [a: b: c]\n",
    "tab indent": "abi: x\n\tarch: y\n",
    "unclosed quote": 'abi: "x\n',
    "two documents": "abi: x\n---\nabi: y\n",
    "control character": "abi: x\x07\n",
    "alias loop": "a: &x [*x]\n",
    "bom": "\ufeffabi: x\n",
    "deep flow": "a: " + "[" * 2100 + "]" * 2100 + "\n",
    "deeper than Python recurses": "a: " + "[" * 600 + "]" * 600 + "\n",
    "long line": "abi: " + "x" * 4096 + "\nlist: [[[[[[[[[[[[[[[[[[[[a]]]]]]]]]]]]]]]]]]]]\n",
    "many brackets": "a: [" + "[], " * 1500 + "]\nb: {c: " + "[" * 20 + "d" + "]" * 20 + "}\n",
    "deep compact sequence": "- " * 2100 + "x\n",
    "deep block": "".join(" " * i + f"k{i}:\n" for i in range(40)),
}


def read(text: str, fast: bool, monkeypatch) -> object:
    if not fast:
        monkeypatch.setattr(yaml_lines, "_FastLoader", None)
    try:
        return yaml_lines.read_yaml(text, Path("f.yaml"), "spec")
    except AsmgenError as exc:
        return str(exc)
    finally:
        monkeypatch.undo()


def test_libyaml_is_there():
    assert yaml_lines._FastLoader is not None  # else every test below compares one path


@pytest.mark.parametrize(
    "text",
    [*(p.read_bytes().decode("utf-8", "replace") for p in CORPUS), *EXTRA.values()],
    ids=[*(p.relative_to(ROOT).as_posix() for p in CORPUS), *EXTRA],
)
def test_both_paths_agree(text, monkeypatch):
    fast, slow = read(text, True, monkeypatch), read(text, False, monkeypatch)
    if slow == "f.yaml:1: error: spec nests too deeply":
        # Python's composer ran out of stack; libyaml's path finds the node past MAX_DEPTH.
        assert re.fullmatch(r"f\.yaml:1:\d+: error: YAML nests deeper than 16 levels", fast)
    else:
        assert fast == slow


def test_text_too_deep_for_libyaml_is_refused_from_its_events(monkeypatch):
    """Deeper than FAST_NESTING, libyaml's C recursion would crash the process:
    its event parser finds the first node past MAX_DEPTH, and nothing composes."""
    calls = []
    monkeypatch.setattr(yaml_lines._FastLoader, "get_single_node", lambda self: calls.append(1))
    monkeypatch.setattr(yaml_lines._LineLoader, "get_single_node", lambda self: calls.append(1))
    levels = yaml_lines.FAST_NESTING + 1
    for deep, where in (
        ("a: 1\nb: " + "[" * levels + "]" * levels + "\n", "2:20"),  # the 17th [
        ("a: 1\nb:\n  " + "- " * levels + "x\n", "3:35"),  # the 17th -
    ):
        with pytest.raises(AsmgenError) as caught:
            yaml_lines.read_yaml(deep, Path("f.yaml"), "spec")
        assert str(caught.value) == f"f.yaml:{where}: error: YAML nests deeper than 16 levels"
    assert not calls
