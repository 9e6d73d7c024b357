"""The parts of an ELF relocatable object asmgen reads back from llvm-mc:
section headers, symbols and relocations, each table unpacked in one pass.

pyelftools builds its parsers anew for every file it opens (some 10 ms),
which costs more than llvm-mc's assembling; a cold build reads dozens of
objects.  The layouts are the ELF gABI's: r_info is split as the gABI packs
it (sym above type), which is right for every arch whose relocations asmgen
turns into edges; others only have theirs counted.  tests/test_elf_object.py
reads objects of every arch both ways, and with pyelftools as the reference.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

SHT_SYMTAB, SHT_RELA, SHT_REL = 2, 4, 9

# Per ELF class: the header after e_ident, a section header, a symbol (with
# where value, size and shndx sit in it), a RELA and a REL entry, and how
# r_info splits into (symbol, type).
_LAYOUT = {
    1: ("HHIIIIIHHHHHH", "IIIIIIIIII", ("IIIBBH", 1, 2, 5), "IIi", "II", 8),
    2: ("HHIQQQIHHHHHH", "IIQQQQIIQQ", ("IBBHQQ", 4, 5, 3), "QQq", "QQ", 32),
}


class Section(NamedTuple):
    name: str
    type: int
    offset: int
    size: int
    link: int
    info: int
    addralign: int


class Symbol(NamedTuple):
    name: str
    value: int
    size: int
    shndx: int


class Relocation(NamedTuple):
    offset: int
    symbol: int  # index into symbols()
    type: int
    addend: int  # 0 for REL entries


def _cstring(table: bytes, start: int) -> str:
    return table[start : table.index(b"\0", start)].decode("utf-8", "replace")


class ElfObject:
    def __init__(self, data: bytes) -> None:
        if data[:4] != b"\x7fELF" or data[4] not in _LAYOUT or data[5] not in (1, 2):
            raise ValueError("not an ELF object")
        self.data = data
        self.little_endian = data[5] == 1
        self._order = "<" if self.little_endian else ">"
        self._layout = _LAYOUT[data[4]]
        header = struct.unpack_from(self._order + self._layout[0], data, 16)
        shoff, shentsize, shnum, shstrndx = header[5], header[10], header[11], header[12]
        if shnum == 0 and shoff:
            raise ValueError("extended section numbering is not read")
        entry = struct.Struct(self._order + self._layout[1])
        raw = [entry.unpack_from(data, shoff + i * shentsize) for i in range(shnum)]
        names_at = raw[shstrndx][4] if shnum else 0
        names = data[names_at : names_at + raw[shstrndx][5]] if shnum else b""
        self.sections = [
            Section(_cstring(names, h[0]), h[1], h[4], h[5], h[6], h[7], h[8]) for h in raw
        ]

    def section_data(self, index: int) -> bytes:
        section = self.sections[index]
        return self.data[section.offset : section.offset + section.size]

    def symbols(self) -> list[Symbol]:
        """The symbol table (.symtab), in index order; empty if there is none."""
        tables = [i for i, s in enumerate(self.sections) if s.type == SHT_SYMTAB]
        if not tables:
            return []
        fields, value, size, shndx = self._layout[2]
        names = self.section_data(self.sections[tables[0]].link)
        entry = struct.Struct(self._order + fields)
        return [
            Symbol(_cstring(names, raw[0]), raw[value], raw[size], raw[shndx])
            for raw in entry.iter_unpack(self.section_data(tables[0]))
        ]

    def relocations(self) -> dict[int, list[Relocation]]:
        """Relocations by the index of the section they apply to."""
        rela, rel, shift = self._layout[3:]
        found: dict[int, list[Relocation]] = {}
        for index, section in enumerate(self.sections):
            if section.type not in (SHT_RELA, SHT_REL):
                continue
            entry = struct.Struct(self._order + (rela if section.type == SHT_RELA else rel))
            target = found.setdefault(section.info, [])
            for offset, info, *addend in entry.iter_unpack(self.section_data(index)):
                kind = info & ((1 << shift) - 1)
                target.append(Relocation(offset, info >> shift, kind, addend[0] if addend else 0))
        return found
