"""The libyaml path of spec/yaml_lines.py reads every file as the pure-Python
path does: the same values, the same key lines, the same error lines."""

from __future__ import annotations

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
    "deep flow": "a: " + "[" * 5000 + "]" * 5000 + "\n",
    "deep compact sequence": "- " * 5000 + "x\n",
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
    assert read(text, True, monkeypatch) == read(text, False, monkeypatch)
