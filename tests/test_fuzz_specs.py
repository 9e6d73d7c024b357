"""Fuzz the spec fields: every mutated spec gives a clean AsmgenError or a
table that emits and verifies (emulation and a native run keep its contract).

Mutations start from real keystone specs and replace a few fields with
registers of the arch, of other arches, junk names, and sizes across and
beyond their valid ranges.  Every register role is mutated, the roles whose
lifetimes the templates fix (scratch, landing, links, ...) included.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import yaml
from fuzzing import fuzz_settings
from hypothesis import given
from hypothesis import strategies as st

from asmgen.arches import ARCHES
from asmgen.build.pipeline import build
from asmgen.emit.outputs import render_outputs
from asmgen.errors import AsmgenError
from asmgen.spec import parse_spec
from asmgen.spec.files import SpecFile
from asmgen.verify.runner import subject_from_table, verify_subject

ROOT = Path(__file__).resolve().parent.parent
BASES = {
    name: yaml.safe_load((ROOT / "abi_specs" / name).read_text())
    for name in (
        "x86_64_sysv.yaml",
        "x86_64_win64.yaml",
        "i386.yaml",
        "aarch64.yaml",
        "mips32_le.yaml",
    )
}
OTHER_ARCH_REGS = sorted({r.name for a in ARCHES.values() for r in a.registers})
CONVENTIONS = sorted(p.stem for p in (ROOT / "abi_specs" / "conventions").glob("*.yaml"))
JUNK = ["", "r16", "xmm99", "$t9", "RAX", "rax ", "x31", "%rdi", "0", "ReentryFnAddr"]

SIZES = st.one_of(
    # Plausible: multiples of 8 and powers of two, which most fields accept.
    st.integers(0, 0x50).map(lambda n: n * 8),
    st.sampled_from([0x8, 0x10, 0x20, 0x40, 0x200, 0x400]),
    st.integers(-0x40, 0x240),
    st.sampled_from([0, 4, 8, 0xC, 0x10, 0x18, 0x20, 0x200, 0x1000, 0x10000, 0x10001]),
    st.sampled_from([2**31, 2**32, 2**63, 2**64, 2**70, -1]),
    st.booleans(),
    st.none(),
    st.sampled_from(["0x10", "sixteen", 16.0, [0x10]]),
)


def _register(arch: str):
    own = [r.name for r in ARCHES[arch].registers]
    return st.one_of(
        st.sampled_from(own),
        st.sampled_from(own),
        st.sampled_from(OTHER_ARCH_REGS),
        st.sampled_from(JUNK),
        st.text(max_size=4),
    )


def _register_list(arch: str, base: list[str]):
    return st.one_of(
        # The base list reordered or cut short: mostly valid specs.
        st.permutations(base).flatmap(lambda p: st.integers(0, len(p)).map(lambda n: p[:n])),
        st.lists(_register(arch), max_size=24),
    )


def _mutations(spec: dict) -> dict[tuple, st.SearchStrategy]:
    arch = spec["arch"]
    resolver = spec["resolver"]
    return {
        ("convention",): st.sampled_from([*CONVENTIONS, "sysv", "", "MS_X64", 64]),
        ("resolver", "shadow_space"): SIZES,
        ("resolver", "incoming_align"): SIZES,
        ("resolver", "saves"): _register_list(arch, resolver["saves"]),
        ("resolver", "fp_saves"): _register_list(arch, resolver.get("fp_saves", [])),
        ("resolver", "scratch"): _register(arch),
        # Roles the templates give their own lifetimes (spec/lifetimes.py).
        ("resolver", "temp"): _register(arch),
        ("resolver", "landing"): _register(arch),
        ("resolver", "frame_pointer"): _register(arch),
        ("trampoline", "link"): _register(arch),
        ("trampoline", "saved_link"): _register(arch),
        ("trampoline", "scratch"): _register(arch),
        ("stub", "scratch"): _register(arch),
        ("resolver", "frame_align"): SIZES,
        ("resolver", "vector_state", "kind"): st.sampled_from(
            ["fxsave64", "fxsave", "q-regs", "none", "avx"]
        ),
        ("resolver", "vector_state", "area_size"): SIZES,
        ("resolver", "vector_state", "align"): SIZES,
        ("trampoline", "call_size"): SIZES,
        ("pointer_size",): SIZES,
        ("placeholders", "ReentryCtxAddr"): SIZES,
    }


# Fields that describe the platform's calling convention (or its trampoline),
# rather than choices about the resolver.
CONVENTION = {("convention",), ("trampoline", "call_size")}


def _get(spec: dict, key: tuple):
    for part in key:
        if not isinstance(spec, dict) or part not in spec:
            return None
        spec = spec[part]
    return spec


def _set(spec: dict, key: tuple, value) -> None:
    for part in key[:-1]:
        spec = spec.setdefault(part, {})
    spec[key[-1]] = value


def test_mutated_specs_give_clean_errors_or_tables_that_verify():
    counts: Counter[str] = Counter()

    @fuzz_settings(300)
    @given(st.data())
    def run(data):
        name = data.draw(st.sampled_from(sorted(BASES)), label="base")
        spec = yaml.safe_load(yaml.safe_dump(BASES[name]))  # a deep copy
        mutations = _mutations(spec)
        keys = data.draw(
            st.lists(st.sampled_from(sorted(mutations)), min_size=1, max_size=2, unique=True),
            label="fields",
        )
        for key in keys:
            _set(spec, key, data.draw(mutations[key], label=".".join(key)))
        text = yaml.safe_dump(spec, sort_keys=False)
        path = Path("fuzz") / name
        try:
            table = build(SpecFile(path, parse_spec(text, path)), ROOT / "templates")
            render_outputs([table])
        except AsmgenError as exc:
            # One line that names a file and a line in it.
            assert re.fullmatch(r"\S+:\d+(:\d+)?: error: [^\n]+", str(exc)), str(exc)
            counts["clean error"] += 1
            return
        counts["table"] += 1
        report = verify_subject(subject_from_table(table))
        outcomes = report.outcomes.items()
        failed = {c: o.result.findings[:2] for c, o in outcomes if o.outcome == "FAIL"}
        changed = {k for k in keys if _get(spec, k) != _get(BASES[name], k)}
        # Emulation holds the table to the spec's own contract: it must pass.
        # The native run holds it to the host's real convention, which a
        # changed convention field no longer describes.  call_size describes
        # the trampoline, which verify runs as the arch has it: the resolver
        # then passes a wrong trampoline address, and verify must say so.
        allowed = {"native"} if changed & CONVENTION else set()
        if ("trampoline", "call_size") in changed:
            assert "trampoline_arg" in failed, f"{text}\nverify missed a wrong call_size"
            allowed |= {"trampoline_arg"}
            counts["wrong call_size caught"] += 1
        assert set(failed) <= allowed, f"{text}\nfails verify: {failed}"

    run()
    print(f"fuzzed specs: {sum(counts[k] for k in ('clean error', 'table'))}, {dict(counts)}")
    # Both outcomes happen: the fuzz reaches the assembler, not only the schema.
    assert counts["clean error"] > 20 and counts["table"] > 20, counts


# -- the YAML structure --------------------------------------------------------

SHARED_LISTS = [("serves",), ("resolver", "saves"), ("resolver", "fp_saves")]
TEXT_FIELDS = [
    ("description",),
    ("abi",),
    ("llvm_class",),
    ("convention",),
    ("resolver", "scratch"),
]
TAGS = [
    "!!str",
    "!!int",
    "!!float",
    "!!bool",
    "!!null",
    "!!binary",
    "!!timestamp",
    "!!set",
    "!!omap",
    "!!python/object/apply:os.system",
    "!reg",
    "!<tag:example.com,2024:x>",
]


HUGE = "huge-text-goes-here"


def _bomb(fanout: int, depth: int) -> list:
    """Nested lists that share each level: the YAML has one anchor a level."""
    level: list = ["lol"] * fanout
    for _ in range(depth):
        level = [level] * fanout
    return level


def _nest(value, depth: int):
    for _ in range(depth):
        value = [value]
    return value


# "same" (the spec rewritten in another style) three times in eleven, so that
# specs that must build are as common as broken ones.
KINDS = ("same", "same", "same", "alias", "bomb", "tag", "huge", "nest", "flow", "insert", "repeat")


@st.composite
def _structured(draw, path: Path, lists: list[tuple], texts: list[tuple]) -> tuple[str, str]:
    """(kind, the YAML of file `path` with one structural mutation of that kind);
    `lists` and `texts` are keys of the file's lists and text fields."""
    data = yaml.safe_load(path.read_text())
    kind = draw(st.sampled_from(KINDS), label="kind")
    if kind == "same":  # the same file written another way: it must still load alike
        return kind, draw(_rewritten(data))
    if kind == "alias":
        keys = [k for k in lists if _get(data, k) is not None]
        first, second = draw(st.permutations(keys))[:2]
        _set(data, second, _get(data, first))  # one object twice: an anchor and an alias
    elif kind == "bomb":
        key = draw(st.sampled_from([*lists, texts[0], ("extra",)]), label="key")
        _set(data, key, _bomb(draw(st.integers(2, 20)), draw(st.integers(1, 12))))
    elif kind == "huge":
        key = draw(st.sampled_from(texts), label="key")
        size = draw(st.sampled_from([0x100, 0x1000, 0x11000, 0x100000]), label="size")
        huge = draw(st.text(min_size=1, max_size=8)) * (size // 4)
        # Written in after dumping: a JSON string is a YAML double-quoted
        # scalar, and json writes a megabyte at once (pyyaml takes seconds).
        _set(data, key, HUGE)
    elif kind == "nest":
        key = draw(st.sampled_from([*lists, *texts]), label="key")
        _set(data, key, _nest(_get(data, key), draw(st.integers(1, 40))))
    text = yaml.safe_dump(data, sort_keys=False, width=1 << 20)
    if kind == "huge":
        text = text.replace(HUGE, json.dumps(huge), 1)
    lines = text.split("\n")
    at = draw(st.integers(0, len(lines) - 2), label="line")
    if kind == "tag":
        key, sep, value = lines[at].partition(": ")
        tag = draw(st.sampled_from(TAGS), label="tag")
        lines[at] = f"{key}{sep}{tag} {value}" if sep else f"{lines[at]} {tag}"
    elif kind == "flow":
        depth = draw(st.integers(1, 3000), label="depth")
        lines.insert(at, f"deep: {'[' * depth}{']' * depth}")
    elif kind == "insert":
        col = draw(st.integers(0, len(lines[at])), label="column")
        lines[at] = lines[at][:col] + draw(st.text(max_size=6), label="text") + lines[at][col:]
    elif kind == "repeat":
        lines.insert(at, lines[at])
    return kind, "\n".join(lines)


@st.composite
def _rewritten(draw, data: dict) -> str:
    """`data` in another YAML style: flow collections, explicit `!!str` tags,
    anchors used once, a document marker, a byte-order mark, CRLF line ends,
    comments of any text."""
    flow = draw(st.booleans(), label="flow style")
    text = yaml.safe_dump(data, sort_keys=False, width=1 << 20, default_flow_style=flow)
    lines = text.split("\n")
    if draw(st.booleans(), label="tags"):
        lines = [re.sub(r"^(\s*\w+): ([A-Za-z][\w ,()-]*)$", r"\1: !!str \2", ln) for ln in lines]
    if draw(st.booleans(), label="anchor"):
        lines[0] = re.sub(r"^(\w+): ", r"\1: &once ", lines[0])
    comment = draw(st.text(max_size=20), label="comment")
    # Characters YAML allows in a comment (no line breaks, no C0/C1 controls).
    comment = "# " + re.sub(r"[\x00-\x1f\x7f-\x9f\ufeff\u2028\u2029]", "", comment)
    lines.insert(draw(st.integers(0, len(lines) - 1), label="comment at"), comment)
    text = "\n".join(lines)
    if draw(st.booleans(), label="document marker"):
        text = "---\n" + text + "...\n"
    if draw(st.booleans(), label="crlf"):
        text = text.replace("\n", "\r\n")
    if draw(st.booleans(), label="bom"):
        text = "\ufeff" + text
    return text


def _convention_changed(spec, base) -> bool:
    """A field of CONVENTION differs from the base spec's."""
    return (spec.convention, spec.trampoline.call_size) != (
        base.convention,
        base.trampoline.call_size,
    )


def test_yaml_structure_gives_clean_errors_or_tables_that_verify(tmp_path):
    """Aliases (and alias bombs), tags, huge scalars, deep nesting, arbitrary
    characters and repeated keys, written into real specs: each file loads to a
    clean one-line error, or to a spec whose table verify passes."""
    from asmgen.spec import load_spec

    counts: Counter[str] = Counter()
    # What each distinct spec gave: the YAML is under test here, so a spec
    # read before (most rewrites read back as their base) is built once.
    outcomes: dict[str, set[str] | None] = {}
    bases = {name: load_spec(ROOT / "abi_specs" / name) for name in BASES}

    def clean(exc: AsmgenError, path: Path) -> None:
        assert re.fullmatch(rf"{re.escape(str(path))}:\d+(:\d+)?: error: [^\n]+", str(exc)), str(
            exc
        )
        counts["clean error"] += 1

    @fuzz_settings(150)
    @given(st.data())
    def run(data):
        name = data.draw(st.sampled_from(sorted(BASES)), label="base")
        path = tmp_path / name
        _, text = data.draw(_structured(ROOT / "abi_specs" / name, SHARED_LISTS, TEXT_FIELDS))
        path.write_text(text, encoding="utf-8")
        try:
            spec = load_spec(path)
        except AsmgenError as exc:
            return clean(exc, path)
        key = spec.model_dump_json()
        if key not in outcomes:
            try:
                table = build(SpecFile(path, spec), ROOT / "templates")
                render_outputs([table])
            except AsmgenError as exc:
                outcomes[key] = None
                return clean(exc, path)
            report = verify_subject(subject_from_table(table))
            outcomes[key] = {c for c, o in report.outcomes.items() if o.outcome == "FAIL"}
        if outcomes[key] is None:
            counts["clean error"] += 1
            return
        counts["table"] += 1
        allowed = {"native"} if _convention_changed(spec, bases[name]) else set()
        assert outcomes[key] <= allowed, f"{path.read_text()}\nfails verify: {outcomes[key]}"

    run()
    print(f"fuzzed YAML: {dict(counts)}")
    assert counts["clean error"] > 50 and counts["table"] > 20, counts


CONVENTION_FILES = ("sysv_amd64.yaml", "ms_x64.yaml", "mips_o32.yaml", "riscv_lp64d.yaml")
CONVENTION_LISTS = [("args", "int"), ("args", "fp"), ("callee_saved",), ("returns", "int")]
CONVENTION_TEXTS = [("title",), ("convention",), ("varargs",), ("arch",), ("llvm_triple",)]


def test_convention_yaml_structure_gives_clean_errors_or_the_same_facts(tmp_path):
    """The same mutations in the convention files, which the specs' loader
    reads: each file is a clean one-line error or a convention; written in
    another style, the same convention."""
    from asmgen.spec.convention import load_convention, parse_convention
    from asmgen.spec.yaml_lines import read_text

    folder = ROOT / "abi_specs" / "conventions"
    bases = {name: load_convention(folder / name).model_dump() for name in CONVENTION_FILES}
    counts: Counter[str] = Counter()

    @fuzz_settings(100)
    @given(st.data())
    def run(data):
        name = data.draw(st.sampled_from(CONVENTION_FILES), label="base")
        kind, text = data.draw(_structured(folder / name, CONVENTION_LISTS, CONVENTION_TEXTS))
        path = tmp_path / name  # the file name is the convention's name
        path.write_text(text, encoding="utf-8")
        try:
            # As load_convention reads it, without its cache (keyed by mtime).
            conv = parse_convention(read_text(path, "convention"), path)
        except AsmgenError as exc:
            assert re.fullmatch(
                rf"{re.escape(str(path))}(:\d+(:\d+)?)?: error: [^\n]+", str(exc)
            ), str(exc)
            counts["clean error"] += 1
            return
        counts["convention"] += 1
        if kind == "same":
            assert conv.model_dump() == bases[name], text

    run()
    print(f"fuzzed convention YAML: {dict(counts)}")
    assert counts["clean error"] > 30 and counts["convention"] > 15, counts
