"""Compose the per-ABI reference pages and the index, as file name -> text.

Everything on a page comes from the built Table (spec, frame, code, patch
points) and the listing `asmgen explain` prints; nothing is typed here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from asmgen.build.assemble import tool_versions
from asmgen.build.framemap import FrameMap, frame_map
from asmgen.build.table import Table
from asmgen.docs.marker import MARKER
from asmgen.docs.registers import RegisterRow, register_rows
from asmgen.docs.svg import render_svg
from asmgen.docs.text import frame_text
from asmgen.docs.verdict import Verdict
from asmgen.emit.explain import explain_text
from asmgen.emit.provenance import relative
from asmgen.spec.serving import lost_registers, register_ranges, serving_lines

# ABI -> verify verdict; None leaves the pages without a verdict section.
Verdicts = Mapping[str, Verdict] | None


@dataclass(frozen=True)
class AbiDoc:
    table: Table
    fmap: FrameMap
    registers: tuple[RegisterRow, ...]

    @property
    def abi(self) -> str:
        return self.table.spec.abi

    @property
    def problems(self) -> list[str]:
        return list(self.fmap.problems) + [
            f"{r.name}: {r.problem}" for r in self.registers if r.problem
        ]


def abi_doc(table: Table) -> AbiDoc:
    fmap = frame_map(table.spec, table.frame)
    return AbiDoc(table, fmap, tuple(register_rows(table.spec, fmap)))


def _header(tables: list[Table], comment: Callable[[str], str]) -> str:
    backends = tuple(sorted({t.spec.backend for t in tables}))
    sources = ", ".join(f"{relative(t.spec_path)} + {relative(t.template_path)}" for t in tables)
    return comment(
        f"{MARKER} from {sources}; edit those, then run `make generate`. "
        f"Tools: {', '.join(tool_versions(backends))}."
    )


def _md_comment(text: str) -> str:
    return f"<!-- {text} -->"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _vector_policy(table: Table) -> str:
    resolver = table.spec.resolver
    state = resolver.vector_state
    if state.area_size:
        return f"{state.kind}, {state.area_size:#x} bytes, {state.align}-byte aligned"
    if resolver.fp_saves:
        return f"{len(resolver.fp_saves)} FP/vector registers stored ({state.kind})"
    return "none"


# How the frame facts name each kind of region, in the order they are listed.
KIND_NAMES = {
    "return": "return addresses",
    "frame_pointer": "frame pointer",
    "saved_sp": "saved sp",
    "save": "saved registers",
    "fp_save": "saved FP/vector registers",
    "padding": "padding",
    "vector": "vector state",
    "arg": "outgoing arguments",
    "shadow": "shadow space",
    "header": "frame header",
}


def _frame_facts(doc: AbiDoc) -> list[str]:
    spec, frame, fmap = doc.table.spec, doc.table.frame, doc.fmap
    sizes: dict[str, int] = {}
    for region in fmap.resolver_regions():
        if region.hi <= fmap.entry:
            sizes[region.kind] = sizes.get(region.kind, 0) + region.size
    parts = ", ".join(f"{KIND_NAMES[k]} {sizes[k]:#x}" for k in KIND_NAMES if k in sizes)
    return [
        f"- The resolver lowers sp by {fmap.entry:#x} bytes below its entry: {parts}.",
        f"- Home (shadow) area the convention gives the callee (`{spec.convention}` "
        f"`stack.home_area`): {spec.call.shadow_space:#x} bytes; the resolver reserves "
        f"{frame.shadow:#x}.",
        *(
            [
                f"- Back chain (`stack.back_chain`): a frame that keeps one holds its caller's "
                f"sp at sp+{spec.call.back_chain:#x}, a word of the home area the callee never "
                "writes; verify checks that the resolver stores its caller's sp there, if it "
                "stores anything."
            ]
            if spec.call.back_chain is not None
            else []
        ),
        *(
            f"- Deviates from `{spec.convention}` on purpose: `{d.field}`: "
            + " ".join(d.reason.split())
            for d in spec.deviations
        ),
        f"- Stack alignment at the call: the convention needs {frame.align} bytes; "
        + (
            "sp keeps it."
            if fmap.sp_aligned
            else f"sp is {fmap.sp_misalignment:#x} bytes past a boundary."
        ),
    ]


def _units_sizes(table: Table) -> str:
    units = table.units
    if not units:
        return ""
    return "".join(
        f"  {unit.role.capitalize()}: {unit.size:#x} bytes, reaches `{unit.unit.target}`."
        for unit in (units.trampoline, units.stub)
    )


def _callers_section(spec) -> list[str]:
    """The caller conventions of the platform, served or not, with what the
    resolver loses for each (spec/serving.py)."""
    out = [
        "## Callers",
        "",
        f"The LLVM calling conventions a caller may use with `{spec.convention}` "
        f"(`callers` in its convention file): the spec serves (`serves:`) those whose "
        "every register, passed or kept live across the call, reaches the lazily compiled "
        "callee; verify's `caller_conventions` and `vector_width` checks prove it.",
        "",
        *(f"- {line}" for line in serving_lines(spec)),
        "",
        "| convention | what | served | registers this resolver loses (to 128 bits) |",
        "|---|---|---|---|",
    ]
    for name, caller in spec.convention_info.caller_conventions.items():
        lost = register_ranges(lost_registers(spec, caller))
        served = "yes" if name in spec.serves else "**no**"
        out.append(f"| `{name}` | {caller.title} | {served} | {lost or '-'} |")
    return out


def abi_page(doc: AbiDoc, verdict: Verdict | None) -> str:
    table, spec = doc.table, doc.table.spec
    out = [
        _header([table], _md_comment),
        "",
        f"# {spec.abi} (`{spec.class_name}`)",
        "",
        f"{spec.description}.  Arch `{spec.arch}`, {spec.endian}-endian, "
        f"assembled with {spec.backend}.  Spec `{relative(table.spec_path)}`, "
        f"template `{relative(table.template_path)}`.",
        "",
        "## Problems",
        "",
    ]
    problems = doc.problems
    out += [f"{i + 1}. {p}" for i, p in enumerate(problems)] or [
        "None found in the frame or the registers."
    ]
    out += [
        "",
        "## Stack frame at the call to the re-entry function",
        "",
        "Offsets are from sp at the call (before a call instruction pushes anything); "
        "addresses grow upwards.  Drawn to scale; problems in red, numbered as above.",
        "",
        f"![{spec.abi} stack frame]({spec.abi}.svg)",
        "",
        *_frame_facts(doc),
        "",
        "Text version:",
        "",
        "```text",
        frame_text(doc.fmap).rstrip("\n"),
        "```",
        "",
        "## Registers",
        "",
        f"Roles from the spec's calling convention (`{doc.table.spec.convention}`, "
        f"`abi_specs/conventions/{doc.table.spec.convention}.yaml`); the resolver column "
        "from `resolver` and the frame above.  Offsets are from sp at the call.",
        "",
        "| register | class | role | resolver |",
        "|---|---|---|---|",
    ]
    for row in doc.registers:
        flag = f" **Problem: {row.problem}.**" if row.problem else ""
        out.append(
            f"| `{row.name}` | {row.cls} | {_cell(row.role)} | {_cell(row.resolver)}{flag} |"
        )
    out += ["", *_callers_section(spec)]
    out += [
        "",
        "## Code",
        "",
        f"Resolver: {len(table.code):#x} ({len(table.code)}) bytes.{_units_sizes(table)}",
        "",
        "Resolver patch points:",
        "",
        "| patch point | offset | bytes | kind |",
        "|---|---|---|---|",
    ]
    for patch in table.patches:
        out.append(f"| `{patch.name}` | {patch.offset:#x} | {patch.size} | {patch.kind} |")
    out += [
        "",
        f"`asmgen explain {spec.abi}` prints:",
        "",
        "```text",
        explain_text(table).rstrip("\n"),
        "```",
    ]
    if verdict is not None:
        out += [
            "",
            "## Verify",
            "",
            f"`asmgen verify` on this table: {verdict.summary}.  The native runs and "
            "the runs against compiled code (wine, qemu-user) are left out here (they "
            "depend on the host's toolchains); `make verify` runs them.",
            "",
            "| check | outcome | method | note |",
            "|---|---|---|---|",
        ]
        out += [
            f"| `{r.check}` | {r.outcome} | {r.method} | {_cell(r.note)} |" for r in verdict.rows
        ]
    return "\n".join(out) + "\n"


def index_page(docs: list[AbiDoc], verdicts: Verdicts) -> str:
    verdict_col = verdicts is not None
    out = [
        _header([d.table for d in docs], _md_comment),
        "",
        "# ABI reference pages",
        "",
        "One page per spec in `abi_specs/`: the stack frame at the call to the re-entry "
        "function, the register roles, and the annotated resolver listing.",
        "",
        "| ABI | arch | resolver bytes | frame bytes | registers saved | vector state "
        "| home area (needed / reserved) | sp aligned at call | problems"
        + (" | verdict |" if verdict_col else " |"),
        "|---|---|---|---|---|---|---|---|---" + ("|---|" if verdict_col else "|"),
    ]
    for doc in docs:
        spec, fmap = doc.table.spec, doc.fmap
        saved = sum(1 for r in fmap.resolver_regions() if r.reg and r.kind != "fp_save")
        row = [
            f"[{spec.abi}]({spec.abi}.md)",
            spec.arch,
            f"{len(doc.table.code):#x}",
            f"{fmap.entry:#x}",
            str(saved),
            _vector_policy(doc.table),
            f"{spec.call.shadow_space:#x} / {doc.table.frame.shadow:#x}",
            "yes" if fmap.sp_aligned else f"no ({fmap.sp_misalignment:#x} off)",
            str(len(doc.problems)),
        ]
        if verdict_col:
            found = verdicts.get(spec.abi)
            row.append(_cell(found.summary) if found else "not run")
        out.append("| " + " | ".join(row) + " |")
    out += [
        "",
        "Frame bytes: how far the resolver lowers sp below its entry before the call.  "
        "Registers saved: general registers saved in the frame, frame pointer included.",
    ]
    return "\n".join(out) + "\n"


def render_pages(tables: list[Table], verdicts: Verdicts = None) -> dict[str, str]:
    """Every docs file's text, computed before anything is written."""
    docs = [abi_doc(t) for t in tables]
    outputs = {"index.md": index_page(docs, verdicts)}
    for doc in docs:
        verdict = verdicts.get(doc.abi) if verdicts is not None else None
        outputs[f"{doc.abi}.md"] = abi_page(doc, verdict)
        title = f"{doc.abi}: stack frame at the call to the re-entry function"
        header = _header([doc.table], lambda text: text)
        outputs[f"{doc.abi}.svg"] = render_svg(title, doc.fmap, header)
    return outputs
