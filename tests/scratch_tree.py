"""Command-line arguments that point asmgen at a scratch tree (see conftest's `tree`)."""

from __future__ import annotations

from pathlib import Path


def tree_options(tree: Path) -> list[str]:
    return ["--specs", str(tree / "abi_specs"), "--templates", str(tree / "templates")]


def generate_args(tree: Path, *abis: str) -> list[str]:
    return ["generate", *abis, *tree_options(tree), "--out", str(tree / "generated")]
