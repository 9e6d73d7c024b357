"""Rendered source as statements, and what an assembler backend returns.

Both backends (`keystone_backend.py`, `llvm_mc.py`) split the rendered lines
with `parse_lines`, put a probe label (`probe_name`) before every statement,
and turn the probes' offsets into an `Assembly` with `collect`.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from asmgen.arches import Arch
from asmgen.build.render import Rendered
from asmgen.errors import AsmgenError

LABEL = re.compile(r"^\s*([A-Za-z_.$][\w.$]*):", re.ASCII)
RESERVED = "__asmgen"
END_PROBE = "__asmgen_end"


def probe_name(index: int) -> str:
    """The label the backends put before parsed line `index`'s statement."""
    return f"__asmgen_s{index}"


@dataclass(frozen=True)
class ListingLine:
    """One line of a table's annotated listing (build/disasm.py computes them)."""

    offset: int
    data: bytes
    text: str
    labels: tuple[str, ...]
    notes: tuple[str, ...]  # patch fields held by this line


@dataclass(frozen=True)
class Statement:
    text: str
    template_line: int
    offset: int
    size: int
    labels: tuple[str, ...]  # user labels that point at this statement
    fields: tuple[int, ...] = ()  # indices of the patch fields rendered into it

    @property
    def is_data(self) -> bool:
        return self.text.lstrip().startswith(".")


@dataclass(frozen=True)
class Assembly:
    code: bytes
    labels: dict[str, int]
    statements: tuple[Statement, ...]


@dataclass(frozen=True)
class ParsedLine:
    labels: tuple[str, ...]
    statement: str | None
    template_line: int
    fields: tuple[int, ...] = ()


def strip_comment(text: str, arch: Arch) -> str:
    index = text.find(arch.comment)
    return text if index < 0 else text[:index]


def parse_lines(rendered: Rendered, arch: Arch) -> list[ParsedLine]:
    """Split rendered lines into labels and one statement each."""
    parsed = []
    seen: dict[str, int] = {}
    for line in rendered.lines:
        text = strip_comment(line.text, arch)
        labels = []
        while match := LABEL.match(text):
            name = match.group(1)
            if name.startswith(RESERVED):
                raise AsmgenError(
                    f"label {name!r}: names starting with {RESERVED!r} are asmgen's probes",
                    rendered.path,
                    line.template_line,
                )
            if name in seen:
                raise AsmgenError(
                    f"label {name!r} defined twice (first at line {seen[name]})",
                    rendered.path,
                    line.template_line,
                )
            seen[name] = line.template_line
            labels.append(name)
            text = text[match.end() :]
        statement = text.strip() or None
        if line.fields and statement is None:
            raise AsmgenError(
                "a patch field is rendered outside a statement",
                rendered.path,
                line.template_line,
            )
        if statement is not None:
            check_statement(statement, rendered.path, line.template_line)
        if labels or statement:
            parsed.append(ParsedLine(tuple(labels), statement, line.template_line, line.fields))
    if not any(p.statement for p in parsed):
        raise AsmgenError("the template renders no statements", rendered.path, 1)
    return parsed


# Directives that read host files, or that make the assembler allocate their
# argument's worth of bytes (keystone crashes on a large one).  A resolver is
# a few hundred bytes: anything near the limit is a mistake.
_HOST_FILES = (".incbin", ".include")
_MODES = (".code16", ".code32", ".code64", ".intel_syntax", ".att_syntax")
_SIZED = (".space", ".skip", ".zero", ".fill", ".org", ".rept", ".balign", ".balignw", ".balignl")
_POWER_ALIGN = (".align", ".p2align", ".p2alignw", ".p2alignl")
MAX_DIRECTIVE_BYTES = 0x1000
_NUMBER = re.compile(r"^-?(0[xX][0-9a-fA-F]+|\d+)$")
_LITERAL = re.compile(r"(?<![\w.])(0[xX][0-9a-fA-F]+|\d+)")


def _int(text: str) -> int:
    digits = text.lstrip("-")
    base = 16 if digits[:2] in ("0x", "0X") else 10
    digits = (digits[2:] if base == 16 else digits).lstrip("0") or "0"
    # Past 40 digits the value only matters as "too wide" (and Python refuses
    # to convert thousands of decimal digits).
    value = 1 << 160 if len(digits) > 40 else int(digits, base)
    return -value if text.startswith("-") else value


def _shown(number: str) -> str:
    return number if len(number) <= 40 else f"{number[:20]}...({len(number)} digits)"


# Assemblers read ASCII: keystone's binding cannot encode anything else, and
# stops at a NUL.  Tab is the one control character a statement may hold.
_NOT_ASSEMBLER_TEXT = re.compile(r"[^\t\x20-\x7e]")


def _describe(char: str) -> str:
    return f"U+{ord(char):04X} ({unicodedata.name(char, 'a control character')})"


# keystone loops for ever on a statement that starts with one of these (and
# `;` starts a statement); keystone_process.py bounds the rest.
_BAD_START = re.compile(r"(?:^|;)\s*([!%&()*+,\-/:<=>\[\\\]^|~])")


def check_statement(statement: str, path: Path, line: int) -> None:
    """Refuse what assemblers accept but get wrong or die on."""
    if bad := _NOT_ASSEMBLER_TEXT.search(statement):
        raise AsmgenError(
            f"{_describe(bad.group())} in {statement!r}: assembler text is ASCII",
            path,
            line,
            hint="retype the line; it may hold a pasted no-break space or a byte-order mark",
        )
    if bad := _BAD_START.search(statement):
        raise AsmgenError(
            f"{statement!r} starts a statement with {bad.group(1)!r}; a statement starts "
            "with a mnemonic or a directive",
            path,
            line,
        )
    for match in _LITERAL.finditer(statement):
        if _int(match.group(1)) >> 64:
            raise AsmgenError(
                f"number {_shown(match.group(1))} is wider than 64 bits (assemblers truncate it)",
                path,
                line,
            )
    name, _, rest = statement.partition(" ")
    name = name.lower()
    if name in _MODES:
        raise AsmgenError(
            f"{name} switches the assembler's mode; the spec's arch and syntax choose it",
            path,
            line,
        )
    if name in _HOST_FILES:
        raise AsmgenError(f"{name} reads a host file; a table comes from its template", path, line)
    if name not in _SIZED + _POWER_ALIGN:
        return
    first = rest.split(",")[0].strip()
    if not _NUMBER.match(first):
        raise AsmgenError(
            f"{name} {first!r}: write the size as one number (compute it in Jinja)", path, line
        )
    value = _int(first)
    # `.align N` means N bytes on some arches but 2**N bytes on others.
    limit = 12 if name in _POWER_ALIGN else MAX_DIRECTIVE_BYTES
    if not 0 <= value <= limit:
        raise AsmgenError(
            f"{name} {first}: out of range for a resolver table (0 to {limit:#x})",
            path,
            line,
            hint=".balign takes bytes on every arch" if name in _POWER_ALIGN else None,
        )


_BARE_DECIMAL = re.compile(r"(?<![\w%.$])-?(\d+)(?![\w.])")
_BARE_DECIMAL_DOLLAR = re.compile(r"(?<![\w%.])-?\$?(\d+)(?![\w.])")


def refuse_bare_decimals(lines: list[ParsedLine], arch: Arch, path: Path) -> None:
    """keystone reads bare numbers as hex once a syntax option has been set in
    the process, so a number of 10 or more must be written in 0x-hex."""
    pattern = _BARE_DECIMAL if arch.dollar_registers else _BARE_DECIMAL_DOLLAR
    for line in lines:
        if line.statement is None:
            continue
        for match in pattern.finditer(line.statement):
            value = _int(match.group(1))
            if value >= 10:
                raise AsmgenError(
                    f"bare decimal immediate {_shown(match.group(0))!r} in {line.statement!r}",
                    path,
                    line.template_line,
                    hint=f"write it as {hex(value)}: keystone may read it as hex",
                )


def collect(lines: list[ParsedLine], offsets: dict[str, int], code: bytes, path: Path) -> Assembly:
    """Turn per-statement probe offsets into statements with sizes."""
    held = []  # (line, start, labels pointing at it)
    pending: list[str] = []
    for index, line in enumerate(lines):
        pending.extend(line.labels)
        if line.statement is not None:
            held.append((line, offsets[probe_name(index)], tuple(pending)))
            pending = []
    ends = [start for _, start, _ in held[1:]] + [len(code)]
    statements = [
        Statement(line.statement, line.template_line, start, end - start, labels, line.fields)
        for (line, start, labels), end in zip(held, ends, strict=True)
    ]
    labels = {name: offsets[name] for line in lines for name in line.labels}
    return Assembly(code, labels, tuple(statements))
