"""Fuzz the spec fields: every mutated spec gives a clean AsmgenError or a
table that emits and verifies (emulation and a native run keep its contract).

Mutations start from real keystone specs and replace a few fields with
registers of the arch, of other arches, junk names, and sizes across and
beyond their valid ranges.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
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
    for name in ("x86_64_sysv.yaml", "x86_64_win64.yaml", "i386.yaml", "aarch64.yaml")
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

    @settings(
        max_examples=300,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
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
