"""Fuzz the templates: text inserted into the real x86-64 and AArch64 resolver
templates, as a line of its own or inside a line.  The text is arbitrary
unicode (control characters, byte-order marks, no-break spaces, asmgen's own
private-use marks), Jinja that nests thousands deep, loops that run for ever,
values of gigabytes, or comments.

Each result is either one `path[:line]: error:` line (an AsmgenError, nothing
else), or a table whose outputs hold: the Python module imports and patches,
tables.json parses, the C++ header compiles, and verify passes wherever the
inserted text left the code as it was.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import types
from collections import Counter
from pathlib import Path

import gxx_cache
from fuzzing import fuzz_settings
from hypothesis import given
from hypothesis import strategies as st

from asmgen.build.pipeline import build
from asmgen.emit.outputs import render_outputs
from asmgen.errors import AsmgenError
from asmgen.spec.files import select, spec_files
from asmgen.verify.runner import subject_from_table, verify_subject

ROOT = Path(__file__).resolve().parent.parent
ABIS = {"x86_64": "X86_64_SysV", "aarch64": "AArch64"}
ONE_LINE = re.compile(r"\S+?(:\d+)?(:\d+)?: error: [^\n]+")

NASTY = ["\ufeff", "\u00a0", "\ue000", "\ue001", "\x00", "\x0b", "\x0c", "\r", "\u2028", "\x1b"]
BIG = st.sampled_from([0, 1, 0x10, 0xFFFF, 0x10000, 0x10001, 10**9, 10**12, 2**64, 10**100])


def _nested(depth: int, kind: str) -> str:
    if kind == "parens":
        return "{{ " + "(" * depth + "1" + ")" * depth + " }}"
    if kind == "lists":
        return "{{ " + "[" * depth + "]" * depth + " }}"
    if kind == "ifs":
        return "{% if 1 %}" * depth + "{% endif %}" * depth
    return "{% for i in [1] %}" * depth + "{% endfor %}" * depth


JINJA = st.one_of(
    st.builds(_nested, st.integers(1, 4000), st.sampled_from(["parens", "lists", "ifs", "fors"])),
    BIG.map(lambda n: f"{{% for i in range({n}) %}}{{% endfor %}}"),
    st.tuples(BIG, BIG).map(
        lambda nm: (
            f"{{% for i in range({nm[0]}) %}}{{% for j in range({nm[1]}) %}}"
            "{% endfor %}{% endfor %}"
        )
    ),
    BIG.map(lambda n: f"{{% set x = 'ab' * {n} %}}"),
    BIG.map(lambda n: f"{{% set x = 7 ** {n} %}}"),
    BIG.map(lambda n: f"{{{{ 'x' | center({n}) }}}}"),
    BIG.map(lambda n: f"{{{{ '%0{n}d' % 1 }}}}"),
    BIG.map(lambda n: f"{{{{ '{{:>{n}}}'.format(1) }}}}"),
    st.just("{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}"),
    st.just(
        "{% set s = namespace(t='x') %}{% for i in range(40) %}{% set s.t = s.t ~ s.t %}"
        "{% endfor %}"
    ),
    st.just("{{ spec.__class__.__mro__ }}"),
    st.just("{{ lipsum(1000000) }}"),
    st.text(max_size=30).map(lambda t: "{# " + t.replace("#}", "") + " #}"),
    st.text(max_size=30).map(lambda t: "    # " + t.replace("{", "").replace("%", "")),
    st.sampled_from(["{{", "{%", "{% endfor %}", "}}", "{% raw %}", "{{ 1 // 0 }}"]),
)
TEXT = st.one_of(
    st.text(max_size=12),
    st.text(st.sampled_from(NASTY + list("movq %rax, ")), max_size=8),
    st.sampled_from(NASTY),
)


def _tree(tmp: Path) -> Path:
    shutil.copytree(ROOT / "templates", tmp / "templates")
    return tmp / "templates"


def _baseline(templates: Path) -> dict:
    found = spec_files(ROOT / "abi_specs")
    items = {arch: select(found, [abi])[0] for arch, abi in ABIS.items()}
    return {arch: (item, build(item, templates)) for arch, item in items.items()}


def _imports(module_text: str, abi: str) -> None:
    name = "fuzzed_orc_resolvers"
    module = types.ModuleType(name)
    sys.modules[name] = module  # dataclasses look their module up
    try:
        exec(compile(module_text, f"{name}.py", "exec"), module.__dict__)
        assert module.TABLES[abi].instantiate(0x1000, 0x2000)
    finally:
        del sys.modules[name]


def test_mutated_templates_give_clean_errors_or_tables_that_hold(tmp_path):
    templates = _tree(tmp_path)
    baseline = _baseline(templates)
    originals = {arch: (templates / arch / "resolver.s.j2").read_text() for arch in ABIS}
    counts: Counter[str] = Counter()
    headers: set[str] = set()
    verdicts: dict[tuple, set[str]] = {}

    @fuzz_settings(200)
    @given(st.data())
    def run(data):
        arch = data.draw(st.sampled_from(sorted(ABIS)), label="arch")
        item, base = baseline[arch]
        lines = originals[arch].split("\n")
        at = data.draw(st.integers(0, len(lines) - 1), label="line")
        snippet = data.draw(st.one_of(JINJA, TEXT), label="text")
        if data.draw(st.booleans(), label="own line"):
            lines.insert(at, snippet)
        else:
            col = data.draw(st.integers(0, len(lines[at])), label="column")
            lines[at] = lines[at][:col] + snippet + lines[at][col:]
        path = templates / arch / "resolver.s.j2"
        path.write_text("\n".join(lines), encoding="utf-8", newline="")
        try:
            table = build(item, templates)
            # Each distinct table is emitted and verified once: most successes
            # leave the code (and so every output) as it was.
            key = (item.spec.abi, table.code, table.patches, tuple(map(str, table.statements)))
            if key not in verdicts:
                outputs = render_outputs([table])
                _imports(outputs["orc_resolvers.py"], item.spec.abi)
                assert item.spec.abi in json.loads(outputs["tables.json"])["abis"]
                headers.add(outputs["orc_resolvers.h"])
                report = verify_subject(subject_from_table(table))
                verdicts[key] = {c for c, o in report.outcomes.items() if o.outcome == "FAIL"}
        except AsmgenError as exc:
            assert ONE_LINE.fullmatch(str(exc)), str(exc)
            counts["clean error"] += 1
            return
        finally:
            path.write_text(originals[arch])
        failed = verdicts[key]
        if table.code == base.code:
            assert not failed, (snippet, failed)
            counts["same code"] += 1
        else:
            counts["other code"] += 1  # the template's author changed it; verify says how

    run()
    # Each distinct header compiles (one translation unit each; kept by what
    # it compiles: tests/gxx_cache.py).
    for index, header in enumerate(sorted(headers)):
        path = tmp_path / f"fuzzed_{index}.h"
        path.write_text(header)
        flags = ["-std=c++17", "-Wall", "-Werror", "-x", "c++"]
        assert gxx_cache.syntax_check(flags, path, scratch=[tmp_path]) == ""
    print(f"fuzzed templates: {dict(counts)}, {len(headers)} distinct headers compiled")
    assert counts["clean error"] > 50 and counts["same code"] > 20, counts
