"""Bad input: one `path:line: error:` line, exit 2, no traceback, outputs untouched."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from asmgen.cli import main

SPEC = "abi_specs/x86_64_sysv.yaml"
TEMPLATE = "templates/x86_64/resolver.s.j2"


def _line(rel: str, text: str, after: int = 0) -> int:
    """Line of the first occurrence of `text` in the checked-in file (plus `after`),
    so that the cases survive template edits elsewhere."""
    source = (Path(__file__).resolve().parent.parent / rel).read_text()
    return source[: source.index(text)].count("\n") + 1 + after


def _edit(tree: Path, rel: str, old: str, new: str) -> None:
    path = tree / rel
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


# (file to edit, text, replacement, expected file, expected line, message fragment)
CASES = {
    "missing field": (SPEC, "  return_reg: rax\n", "", SPEC, 8, "call.return_reg: Field required"),
    "wrong type": (SPEC, "stack_align: 0x10", "stack_align: sixteen", SPEC, 13, "stack_align"),
    "unknown register": (SPEC, "[rdi, rsi,", "[rdi, rsx,", SPEC, 9, "'rsx' is not a register"),
    "register of another arch": (SPEC, "scratch: rax", "scratch: x17", SPEC, 18, "'x17'"),
    "duplicate register": (SPEC, "rax, rbx, rcx", "rax, rbx, rbx", SPEC, 17, "listed twice"),
    "duplicate key": (
        SPEC,
        "pointer_size: 8\n",
        "pointer_size: 8\npointer_size: 8\n",
        SPEC,
        8,
        "duplicate key 'pointer_size'",
    ),
    "unknown key": (
        SPEC,
        "pointer_size: 8\n",
        "pointer_size: 8\npointer_bits: 64\n",
        SPEC,
        8,
        "pointer_bits: Extra inputs",
    ),
    "broken yaml": (SPEC, "int_args: [rdi, rsi,", "int_args: [rdi, rsi,,:", SPEC, 9, "YAML syntax"),
    "misaligned shadow space": (
        SPEC,
        "shadow_space: 0x0",
        "shadow_space: 0x3",
        SPEC,
        12,
        "not a multiple",
    ),
    "undefined variable": (
        TEMPLATE,
        "%{{ call.int_args[0] }}",
        "%{{ call.first_arg }}",
        TEMPLATE,
        _line(TEMPLATE, "%{{ call.int_args[0] }}"),
        "first_arg",
    ),
    "jinja syntax": (
        TEMPLATE,
        "{% endfor %}",
        "{% endfro %}",
        TEMPLATE,
        _line(TEMPLATE, "{% endfor %}"),
        "template syntax",
    ),
    "rejected instruction": (
        TEMPLATE,
        "fxsave64 (%rsp)",
        "fxsave64 %rsp, %rax",
        TEMPLATE,
        _line(TEMPLATE, "fxsave64 (%rsp)"),
        "keystone rejects",
    ),
    "bare decimal": (
        TEMPLATE,
        "subq    ${{ hex(trampoline.call_size) }}",
        "subq    $16",
        TEMPLATE,
        _line(TEMPLATE, "subq    ${{ hex(trampoline.call_size) }}"),
        "bare decimal immediate",
    ),
    "missing patch label": (
        TEMPLATE,
        "ReentryFnAddr:\n",
        "",
        TEMPLATE,
        _line(TEMPLATE, "ReentryFnAddr:\n", after=1) - 1,
        "has no label",
    ),
    "duplicate label": (
        TEMPLATE,
        "ReentryFnAddr:\n",
        "ReentryFnAddr:\nReentryFnAddr:\n",
        TEMPLATE,
        _line(TEMPLATE, "ReentryFnAddr:\n", after=1),
        "defined twice",
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_clean_line(tree, capsys, case):
    rel, old, new, where, line, fragment = CASES[case]
    out = tree / "generated"
    (out / "sentinel.txt").write_text("untouched")
    _edit(tree, rel, old, new)
    code = main(
        [
            "generate",
            "--specs",
            str(tree / "abi_specs"),
            "--templates",
            str(tree / "templates"),
            "--out",
            str(out),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert re.match(rf"^{re.escape(str(tree / where))}:{line}(:\d+)?: error: ", lines[0]), lines[0]
    assert fragment in lines[0]
    assert sorted(p.name for p in out.iterdir()) == ["sentinel.txt"]


def test_unknown_abi(capsys):
    assert main(["explain", "NoSuchABI"]) == 2
    err = capsys.readouterr().err
    assert "error: unknown ABI 'NoSuchABI'" in err


def test_bare_decimal_is_refused_not_misassembled(tree, capsys):
    """keystone would read `$16` as 0x16: the check refuses it with file:line instead."""
    import keystone

    ks = keystone.Ks(keystone.KS_ARCH_X86, keystone.KS_MODE_64)
    ks.syntax = keystone.KS_OPT_SYNTAX_ATT
    assert bytes(ks.asm("subq $16, %rsi", 0)[0]) == bytes.fromhex("4883ee16")  # the trap itself
    _edit(tree, TEMPLATE, "subq    ${{ hex(trampoline.call_size) }}", "subq    $16")
    assert (
        main(
            [
                "explain",
                "X86_64_SysV",
                "--specs",
                str(tree / "abi_specs"),
                "--templates",
                str(tree / "templates"),
            ]
        )
        == 2
    )
    assert "write it as 0x10" in capsys.readouterr().err
