"""LLVM's newer lazy path (LazyReexportsManager + JITLinkReentryTrampolines)
from the same specs and templates: the reentry routine as an assembly source
with CFI, and the reentry trampoline and jump stub as JITLink blocks.

On that path, JITLink links a block per trampoline whose call reaches the ORC
runtime's reentry routine (`__orc_rt_reenter`) by a relocation edge; the
routine saves the registers, calls `__orc_rt_resolve(trampoline address)` and
lands on the address it returns.  Stubs jump through a pointer the JIT
updates, reached by edges too.  Each arch's three templates have a reentry
mode (`reentry` in their context, build/render.py): the resolver template
renders the routine (with `cfi()` directives), the trampoline and stub
templates render one block each, naming their targets by symbol.  llvm-mc
assembles them to ELF objects; the bytes are `.text`, and each relocation
left becomes the edge LLVM's per-arch builders add (the arch record's
`jitlink_edges`), with its offset, addend and target.

An arch takes part by listing `jitlink_edges` and giving its templates a
reentry mode; nothing here names an arch.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

from asmgen.build.frame import compute_frame
from asmgen.build.gather import parallel
from asmgen.build.llvm_mc import find_llvm_mc, mc_source
from asmgen.build.mc_object import assemble_object
from asmgen.build.render import render
from asmgen.build.units import RETURN_LABEL, TEMPLATES
from asmgen.errors import AsmgenError
from asmgen.spec import Spec
from asmgen.spec.schema import Trampoline

# The ORC runtime's names (JITLinkReentryTrampolines.cpp, compiler-rt/lib/orc).
ROUTINE = "__orc_rt_reenter"
RESOLVE = "__orc_rt_resolve"
# The stub's pointer, as the stub block names its edge target.
POINTER = "__orc_stub_ptr"
FOLDER = "reentry"


@dataclass(frozen=True)
class ReentryNames:
    """What a template sees as `reentry`."""

    routine: str
    resolve: str
    pointer: str
    # The spec's trampoline, with call_size the reentry trampoline's.
    trampoline: Trampoline


@dataclass(frozen=True)
class Edge:
    kind: str  # JITLink's edge kind
    offset: int
    addend: int
    target: str  # a symbol, or `block+0x..` for a place in the block itself
    reloc: str  # the ELF relocation it came from


@dataclass(frozen=True)
class Block:
    code: bytes
    edges: tuple[Edge, ...]
    alignment: int


@dataclass(frozen=True)
class Reentry:
    source: str  # the routine's assembly source (generated/reentry/<ABI>.S), header aside
    routine: Block
    trampoline: Block
    stub: Block
    call_size: int  # the identity the routine subtracts: the trampoline's TrampolineReturn

    def record(self) -> dict:
        def block(b: Block) -> dict:
            return {
                "size": len(b.code),
                "hex": b.code.hex(),
                "alignment": b.alignment,
                "edges": [
                    {
                        "kind": e.kind,
                        "offset": e.offset,
                        "addend": e.addend,
                        "target": e.target,
                        "elf": e.reloc,
                    }
                    for e in b.edges
                ],
            }

        return {
            "source": f"{FOLDER}/<abi>.S",
            "routine_symbol": ROUTINE,
            "resolve_symbol": RESOLVE,
            "trampoline_call_size": self.call_size,
            "routine": block(self.routine),
            "trampoline": block(self.trampoline),
            "stub": block(self.stub),
        }


def supports_reentry(spec: Spec) -> bool:
    return bool(spec.arch_info.jitlink_edges)


def _assemble(spec: Spec, text: str, path: Path) -> dict:
    """What llvm-mc made of `text` (mc_object.py): .text, its symbols and
    relocations, and whether CFI describes it."""
    found = assemble_object(mc_source(spec, text))
    if "error" in found:
        first = found["error"].strip().splitlines()[0] if found["error"].strip() else "no message"
        raise AsmgenError(f"llvm-mc rejects the reentry source: {first}", path)
    return found


def _edges(spec: Spec, found: dict, path: Path) -> tuple[Edge, ...]:
    known = {e.reloc: e for e in spec.arch_info.jitlink_edges}
    edges = []
    for kind, offset, addend, target in found["relocations"]:
        if kind not in known:
            raise AsmgenError(
                f"the reentry code leaves ELF relocation type {kind}, which "
                f"{spec.arch}'s jitlink_edges do not map to a JITLink edge",
                path,
            )
        edge = known[kind]
        edges.append(Edge(edge.kind, offset, addend + edge.addend_delta, target, edge.name))
    return tuple(sorted(edges, key=lambda e: e.offset))


def _render(spec: Spec, template: Path, names: ReentryNames) -> str:
    frame = compute_frame(spec)
    rendered = render(spec, template, frame, lambda index, use: 0, None, names)
    return "\n".join(line.text for line in rendered.lines) + "\n"


def _unit(spec: Spec, templates_dir: Path, role: str, names: ReentryNames) -> tuple[Block, dict]:
    path = templates_dir / spec.arch / TEMPLATES[role]
    found = _assemble(spec, _render(spec, path, names), path)
    block = Block(bytes.fromhex(found["code"]), _edges(spec, found, path), found["alignment"])
    return block, found


def routine_source(spec: Spec, body: str) -> str:
    """The routine as a whole assembly file: one global function with CFI,
    and the GNU property note for the features the spec's code is fit for."""
    return "\n".join(
        [
            "    .text",
            f"    .globl  {ROUTINE}",
            f"    .type   {ROUTINE}, %function",
            "    .p2align 4",
            f"{ROUTINE}:",
            "    .cfi_startproc",
            body.rstrip("\n"),
            "    .cfi_endproc",
            f"    .size   {ROUTINE}, .-{ROUTINE}",
            '    .section .note.GNU-stack,"",%progbits',
            *_property_note(spec),
            "",
        ]
    )


def property_features(spec: Spec) -> int:
    """The GNU property bits the spec's code earns: landing pads when it puts
    them on every indirect-branch target, shadow stack when verify does not
    expect its `shadow_stack` check to fail.  A linker marks the program with
    the AND of its objects' bits, so an unearned bit is a fault at run time."""
    prop = spec.arch_info.gnu_property
    if prop is None:
        return 0
    bits = prop.landing_pad if spec.landing_pad else 0
    declared = {violation.check for violation in spec.expected_violations}
    if spec.arch_info.shadow_stack is not None and "shadow_stack" not in declared:
        bits |= prop.shadow_stack
    return bits


def _property_note(spec: Spec) -> list[str]:
    bits = property_features(spec)
    if not bits:
        return []
    prop = spec.arch_info.gnu_property
    align = spec.arch_info.pointer_size
    return [
        '    .section .note.gnu.property,"a",%note',
        f"    .p2align {align.bit_length() - 1}",
        "    .long 4  /* name size */",
        f"    .long {align * 2:#x}  /* descriptor size */",
        "    .long 5  /* NT_GNU_PROPERTY_TYPE_0 */",
        '    .asciz "GNU"',
        f"    .long {prop.pr_type:#x}  /* feature word */",
        "    .long 4  /* its size */",
        f"    .long {bits:#x}",
        f"    .p2align {align.bit_length() - 1}",
    ]


def build_reentry(spec: Spec, templates_dir: Path) -> Reentry | None:
    """The spec's reentry outputs, or None where its arch has none."""
    if not supports_reentry(spec):
        return None
    find_llvm_mc()
    names = ReentryNames(ROUTINE, RESOLVE, POINTER, spec.trampoline)
    trampoline, found = _unit(spec, templates_dir, "trampoline", names)
    path = templates_dir / spec.arch / TEMPLATES["trampoline"]
    if RETURN_LABEL not in found["symbols"]:
        raise AsmgenError(f"the reentry trampoline marks its return with `{RETURN_LABEL}:`", path)
    call_size = found["symbols"][RETURN_LABEL]
    names = ReentryNames(
        ROUTINE, RESOLVE, POINTER, spec.trampoline.model_copy(update={"call_size": call_size})
    )
    # The stub and the routine side by side: their runs go out together (gather.py).
    (stub, _), (routine, source) = parallel(
        [
            partial(_unit, spec, templates_dir, "stub", names),
            partial(_routine, spec, templates_dir, names),
        ]
    )
    return Reentry(source, routine, trampoline, stub, call_size)


def _routine(spec: Spec, templates_dir: Path, names: ReentryNames) -> tuple[Block, str]:
    """The reentry routine, and its whole assembly source."""
    resolver = templates_dir / spec.arch / spec.template
    source = routine_source(spec, _render(spec, resolver, names))
    found = _assemble(spec, source, resolver)
    if not found["eh_frame"]:
        raise AsmgenError("no CFI (.eh_frame entry) describes the reentry routine", resolver)
    start, size = found["symbols"][ROUTINE], found["sizes"][ROUTINE]
    code = bytes.fromhex(found["code"])[start : start + size]
    return Block(code, _edges(spec, found, resolver), found["alignment"]), source
