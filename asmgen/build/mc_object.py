"""Assemble sources to ELF objects with llvm-mc, many in one process, and read
back what each source made: its `.text` bytes and alignment, the symbols it
defines there, the relocations left in it, and whether CFI describes it.

llvm-mc takes one source per run, and a run costs some 15 ms of start-up
(loading libLLVM) for well under one of assembling.  Sources for the same
command are therefore joined into one: source k goes into sections of its
own (`.text` becomes `.text__asmgen_jk`, `.section X` becomes
`X__asmgen_jk`), and every name it defines gets the same suffix, so that
no two sources share a name.  Code, offsets, alignment and relocations are
per section, and the suffixes come off when each source's part is read, so a
joined run gives each source what a run of its own would; the one
difference, the initial `.text`'s alignment, which a `.section` does not
get, is taken from the joined object's own (empty) `.text`.
tests/test_mc_object.py compares the two ways for every source a build
assembles.

A source is joined only when nothing in it can reach another: no symbol
assignment, no label named like one of the arch's registers (renaming it
could turn a register operand into a symbol), and no directive but those
known to act within the source's own sections; one source that sets the
assembler's state for what follows (`.option`, `.machine`) may go last.  A
joined run that prints any diagnostic is repeated source by source, so that
errors name the source's own lines.  Results are kept in asmgen's tool cache
(toolcache.py) per source, whichever way they were made.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass

from asmgen.build import gather
from asmgen.build.elf_object import ElfObject, Symbol
from asmgen.build.source import LABEL
from asmgen.build.toolcache import cached

# Bump when what `_read` returns changes: the cache key names it.
FORMAT = "llvm-mc-object-2"
_SUFFIX = "__asmgen_j{}"
# ELF's prefix of assembler-private names.
PRIVATE = ".L"

# Directives whose effect stays inside the source's own sections and names.
_LOCAL_DIRECTIVE = re.compile(
    r"\.(p2align|balign|align|org|zero|space|skip|fill|byte|short|hword|half|word|long|int|quad"
    r"|dword|[248]byte|ascii|asciz|string|globl|global|type|size|hidden|local|weak|text|section"
    r"|cfi_(?!sections)\w+)"
)
# Directives that set the assembler's state for the statements after them
# (and nothing before them, nor the file as a whole).
_STATE_DIRECTIVES = frozenset({".option", ".machine"})
# llvm-mc's diagnostics name the input `<stdin>` and its line.
DIAGNOSTIC = re.compile(r"^<stdin>:(\d+):(\d+): (error|warning): (.*)$", re.MULTILINE)
_ASSIGNMENT = re.compile(r"^\s*[A-Za-z_.$][\w.$]*\s*=")


@dataclass(frozen=True)
class Source:
    """One llvm-mc run's input: the command (without `-o` and the input file),
    the text, and names the arch gives its registers (see the module's doc)."""

    command: tuple[str, ...]
    version: str
    text: str
    registers: frozenset[str] = frozenset()


def assemble_object(source: Source) -> dict:
    """What assembling `source` made (see `_read`), or `{"error": stderr}`."""
    key = [FORMAT, source.version, *source.command, source.text]
    return cached(key, lambda: gather.submit(source.command, _assemble_all, source))


def _assemble_all(sources: list[Source]) -> list[dict]:
    """Each source's object: the joinable ones in one llvm-mc run, the rest alone."""
    results: dict[str, dict] = {}
    plain: dict[str, tuple[Source, list[str]]] = {}
    setting: dict[str, tuple[Source, list[str]]] = {}
    for source in sources:
        found = _joinable(source)
        if found is not None:
            defined, sets_state = found
            (setting if sets_state else plain).setdefault(source.text, (source, defined))
    # A source that sets assembler state goes last: the state reaches only
    # what follows it, and it starts from the state it would start from alone.
    joined = [*plain.values(), *list(setting.values())[:1]]
    if len(joined) > 1:
        results.update(_run_joined(joined))
    for source in sources:
        if source.text not in results:
            results[source.text] = _run(source.text, source.command)
    return [results[source.text] for source in sources]


def _joinable(source: Source) -> tuple[list[str], bool] | None:
    """The names the source's labels define, and whether it sets assembler state
    for what follows it; None if it cannot be joined."""
    defined = []
    sets_state = False
    for line in source.text.splitlines():
        while match := LABEL.match(line):
            defined.append(match.group(1))
            line = line[match.end() :]
        if _ASSIGNMENT.match(line):
            return None
        for statement in line.split(";"):
            word = statement.split(maxsplit=1)[0].lower() if statement.strip() else ""
            if not word.startswith(".") or _LOCAL_DIRECTIVE.fullmatch(word):
                continue
            if word not in _STATE_DIRECTIVES:
                return None
            sets_state = True
    if source.registers & set(defined):
        return None
    return defined, sets_state


def _joined_text(text: str, defined: list[str], suffix: str) -> str:
    """`text` in sections of its own, its names renamed (see the module's doc)."""
    rename = None
    if defined:
        names = "|".join(re.escape(name) for name in sorted(defined, key=len, reverse=True))
        rename = re.compile(rf"(?<![\w.$%@])({names})(?![\w.$])")
    lines = [f'.section .text{suffix},"ax",%progbits']
    for line in text.splitlines():
        if rename is not None:
            line = rename.sub(lambda m: m.group(1) + suffix, line)
        word, _, rest = line.strip().partition(" ")
        if word == ".text" and not rest.strip():
            line = f'.section .text{suffix},"ax",%progbits'
        elif word == ".section":
            name, comma, flags = rest.strip().partition(",")
            line = f".section {name.strip()}{suffix}{comma}{flags}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def _run_joined(joinable: list[tuple[Source, list[str]]]) -> dict[str, dict]:
    """Source text -> its object, from one run; empty if that run fails."""
    suffixes = [_SUFFIX.format(k) for k in range(len(joinable))]
    text = "".join(
        _joined_text(source.text, defined, suffix)
        for (source, defined), suffix in zip(joinable, suffixes, strict=True)
    )
    found = _run(text, joinable[0][0].command, suffixes)
    if "error" in found:
        return {}
    return {source.text: part for (source, _), part in zip(joinable, found["parts"], strict=True)}


def _run(text: str, command: tuple[str, ...], suffixes: list[str] | None = None) -> dict:
    """llvm-mc on `text`, the object on its stdout; a diagnostic, a warning
    too, is the run's error."""
    done = subprocess.run(
        [*command, "-o", "-"], input=text.encode(), capture_output=True, check=False
    )
    stderr = done.stderr.decode("utf-8", "replace")
    if done.returncode != 0 or DIAGNOSTIC.search(stderr):
        return {"error": stderr}
    if suffixes is None:
        return _read(done.stdout, [""])[0]
    return {"parts": _read(done.stdout, suffixes)}


def _read(data: bytes, suffixes: list[str]) -> list[dict]:
    """Each suffix's part of the object `data` ("" is a source's own object):
    `code` (hex) and `alignment` of its `.text`, the `symbols` and `sizes` defined
    there, its `relocations` ([ELF type, offset, addend, target]; a target in
    the part's own `.text` is written `block+0x..`, an assembler-private one
    elsewhere `<section>+0x..`), whether an `.eh_frame` entry covers it, and
    the object's `endian`.  Private symbols (`.Ltmp3`) are left out: the
    assembler numbers them across the whole file."""
    elf = ElfObject(data)
    index_of = {section.name: i for i, section in enumerate(elf.sections)}
    initial = elf.sections[index_of[".text"]].addralign
    symbols = elf.symbols()
    by_section: dict[int, list[Symbol]] = {}
    for symbol in symbols:
        if symbol.name and not symbol.name.startswith(PRIVATE):
            by_section.setdefault(symbol.shndx, []).append(symbol)
    relocations = elf.relocations()
    eh_frame = relocations.get(index_of.get(".eh_frame", -1), [])
    covered = {symbols[reloc.symbol].shndx for reloc in eh_frame}
    parts = []
    for suffix in suffixes:
        text = index_of[f".text{suffix}"]

        def own(name: str, suffix: str = suffix) -> str:
            return name[: -len(suffix)] if suffix and name.endswith(suffix) else name

        mine = by_section.get(text, [])
        edges = []
        for reloc in relocations.get(text, []):
            symbol = symbols[reloc.symbol]
            if symbol.shndx == text:
                target, addend = f"block+{symbol.value + reloc.addend:#x}", 0
            elif symbol.name.startswith(PRIVATE) and symbol.shndx:
                where = own(elf.sections[symbol.shndx].name)
                target, addend = f"{where}+{symbol.value + reloc.addend:#x}", 0
            else:
                target, addend = own(symbol.name), reloc.addend
            edges.append([reloc.type, reloc.offset, addend, target])
        parts.append(
            {
                "code": elf.section_data(text).hex(),
                "alignment": max(elf.sections[text].addralign, initial),
                "symbols": {own(s.name): s.value for s in mine},
                "sizes": {own(s.name): s.size for s in mine},
                "relocations": edges,
                "eh_frame": text in covered,
                "endian": "little" if elf.little_endian else "big",
            }
        )
    return parts
