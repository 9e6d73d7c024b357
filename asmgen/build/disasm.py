"""The annotated listing: offset, bytes, instruction text and patch points.

Instruction text comes from a disassembler (capstone) reading the assembled
bytes, never from the template, so a comment cannot disagree with its bytes.
Data statements (directives such as `.quad`) are shown as data.
"""

from __future__ import annotations

from asmgen.arches import Arch
from asmgen.build.source import ListingLine
from asmgen.build.table import Table
from asmgen.errors import AsmgenError


def capstone_for(arch: Arch, byteorder: str, syntax: str | None = None, detail: bool = False):
    """A capstone decoder for `arch`, or None where capstone has no backend."""
    if arch.capstone is None:
        return None
    import capstone

    cs_arch, cs_mode = arch.capstone
    mode = getattr(capstone, cs_mode)
    mode |= capstone.CS_MODE_BIG_ENDIAN if byteorder == "big" else 0
    cs = capstone.Cs(getattr(capstone, cs_arch), mode)
    if syntax == "att":
        cs.syntax = capstone.CS_OPT_SYNTAX_ATT
    cs.detail = detail
    return cs


def _capstone(table: Table):
    cs = capstone_for(table.spec.arch_info, table.byteorder, table.spec.syntax)
    if cs is None:
        raise AsmgenError(f"no disassembler for arch {table.spec.arch!r}", table.spec_path)
    return cs


def _data_text(data: bytes, unit: int, byteorder: str) -> str:
    directive = {1: ".byte", 2: ".short", 4: ".long", 8: ".quad"}[unit]
    words = [int.from_bytes(data[i : i + unit], byteorder) for i in range(0, len(data), unit)]
    return f"{directive} " + ", ".join(f"{w:#0{2 + 2 * unit}x}" for w in words)


def _text(arch: Arch, insn) -> str:
    return f"{insn.mnemonic} {arch.disasm_operands(insn.op_str)}".strip()


def _decode(cs, arch: Arch, data: bytes, offset: int) -> list[tuple[int, bytes, str]]:
    out, pos = [], 0
    for insn in cs.disasm(data, offset):
        text = _text(arch, insn)
        out.append((insn.address, bytes(insn.bytes), text))
        pos = insn.address + insn.size - offset
    if pos != len(data):
        return []
    return out


def decode_all(
    cs, arch: Arch, code: bytes, byteorder: str, base: int = 0
) -> list[tuple[int, bytes, str]]:
    """Decode a whole table with no statement boundaries (as read from tables.json).

    Where the decoder stops (a data word it cannot read), one element becomes
    a data line and decoding resumes after it.  `base` is the first byte's address.
    """
    out: list[tuple[int, bytes, str]] = []
    pos = 0
    while pos < len(code):
        start = pos
        for insn in cs.disasm(code[pos:], base + pos):
            out.append((insn.address, bytes(insn.bytes), _text(arch, insn)))
            pos = insn.address + insn.size - base
        if pos == start:
            width = arch.element_size if len(code) - pos >= arch.element_size else 1
            data = code[pos : pos + width]
            out.append((base + pos, data, _data_text(data, width, byteorder)))
            pos += width
    return out


def _llvm_mc_words(arch: Arch, code: bytes, byteorder: str, base: int):
    """Fixed-width arches capstone lacks: llvm-mc's disassembler; a word it
    cannot decode becomes a data word."""
    from asmgen.build.llvm_mc import decode_words

    unit = arch.element_size
    words = [code[i : i + unit] for i in range(0, len(code) - len(code) % unit, unit)]
    texts = decode_words(arch, byteorder, words)
    return [
        (base + index * unit, word, text or _data_text(word, unit, byteorder))
        for index, (word, text) in enumerate(zip(words, texts, strict=True))
    ]


def decode_code(
    arch: Arch, byteorder: str, syntax: str | None, code: bytes, base: int = 0
) -> list[tuple[int, bytes, str]]:
    """Decode a table from its bytes alone, with the arch's disassembler."""
    if arch.disassembler == "llvm-mc":
        return _llvm_mc_words(arch, code, byteorder, base)
    return decode_all(capstone_for(arch, byteorder, syntax), arch, code, byteorder, base)


def listing(table, disassemble=None) -> list[ListingLine]:
    """One line per instruction (or data item) of a Table or UnitTable.
    `disassemble` may replace the arch's disassembler.  build.pipeline
    computes it once per table (`Table.listing`); the emitters format it."""
    notes: dict[int, list[str]] = {}
    for patch in table.patches:
        for field in patch.fields:
            stmt = next(s for s in table.statements if s.offset <= field.offset < s.offset + s.size)
            notes.setdefault(stmt.offset, []).append(
                f"{patch.name}: {field.kind} at {field.offset:#x}"
                + (f" bits {field.shift}..{field.shift + field.bits - 1}" if field.shift else "")
            )
    if disassemble is None and table.spec.arch_info.disassembler == "llvm-mc":
        from asmgen.build.llvm_mc import llvm_mc_disassembler

        disassemble = llvm_mc_disassembler(table)
    if disassemble is None:
        cs = _capstone(table)

        def disassemble(data: bytes, offset: int) -> list[tuple[int, bytes, str]]:
            return _decode(cs, table.spec.arch_info, data, offset)

    unit = table.spec.arch_info.element_size
    lines = []
    for stmt in table.statements:
        data = table.code[stmt.offset : stmt.offset + stmt.size]
        if not data:
            continue
        decoded = [] if stmt.is_data else disassemble(data, stmt.offset)
        if not decoded:
            width = 8 if stmt.size % 8 == 0 and stmt.text.lstrip().startswith(".quad") else unit
            width = width if stmt.size % width == 0 else 1
            decoded = [(stmt.offset, data, _data_text(data, width, table.byteorder))]
        for index, (offset, raw, text) in enumerate(decoded):
            lines.append(
                ListingLine(
                    offset,
                    raw,
                    text,
                    stmt.labels if index == 0 else (),
                    tuple(notes.get(stmt.offset, ())) if index == 0 else (),
                )
            )
    return lines
