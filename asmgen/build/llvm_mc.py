"""Assemble with llvm-mc, for arches keystone lacks (no `keystone` binding in
their record) and to cross-check keystone on the others.

The rendered source, with a probe label before every statement, goes to
llvm-mc through mc_object.py (which joins it with other sources into one run
where it can), and the bytes of `.text` and the values of the labels come
back.  The result is the same `Assembly` the keystone backend returns.
llvm-mc's own errors (``<stdin>:LINE:COL: error: ...``) are mapped back to
the template line that produced LINE.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

from asmgen.arches import Arch
from asmgen.build.gather import submit
from asmgen.build.mc_object import DIAGNOSTIC, Source, assemble_object
from asmgen.build.render import Rendered
from asmgen.build.source import END_PROBE, Assembly, collect, parse_lines, probe_name
from asmgen.build.toolcache import cached
from asmgen.errors import AsmgenError
from asmgen.spec import Spec

# Debian's llvm-19 installs versioned binaries; ASMGEN_LLVM_MC overrides.
CANDIDATES = ("llvm-mc-19", "llvm-mc")


def find_llvm_mc() -> str:
    override = os.environ.get("ASMGEN_LLVM_MC")
    if override:
        found = shutil.which(override)
        if found is None:
            raise AsmgenError(
                f"ASMGEN_LLVM_MC={override!r} is not an executable",
                hint="point it at llvm-mc, or unset it to search PATH",
            )
        return found
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    raise AsmgenError(
        "llvm-mc not found",
        hint="install Debian's llvm-19 (llvm-mc-19) or set ASMGEN_LLVM_MC",
    )


_VERSIONS: dict[str, str] = {}
_VERSIONS_LOCK = threading.Lock()


def llvm_mc_version() -> str:
    """The version llvm-mc reports, e.g. ``19.1.7`` (asked once, whichever
    thread of a parallel build asks first)."""
    binary = find_llvm_mc()
    with _VERSIONS_LOCK:
        if binary not in _VERSIONS:
            result = subprocess.run([binary, "--version"], capture_output=True, text=True)
            match = re.search(r"LLVM version (\S+)", result.stdout)
            if result.returncode != 0 or match is None:
                raise AsmgenError("cannot read llvm-mc's version")
            _VERSIONS[binary] = match.group(1)
        return _VERSIONS[binary]


def llvm_mc_command(spec: Spec) -> tuple[str, ...]:
    """llvm-mc's command for the spec's target, writing an ELF object (`-o` aside)."""
    arch = spec.arch_info
    triple = arch.triple(spec.endian)
    if triple is None:
        raise AsmgenError(f"arch {arch.name} has no llvm-mc triple")
    command = [find_llvm_mc(), f"-triple={triple}", "-filetype=obj"]
    if arch.llvm_mattr:
        command.append(f"-mattr={arch.llvm_mattr}")
    return tuple(command)


def mc_source(spec: Spec, text: str) -> Source:
    """`text` as an llvm-mc source for the spec's target."""
    return Source(llvm_mc_command(spec), llvm_mc_version(), text, _register_names(spec.arch_info))


_REGISTER_NAMES: dict[str, frozenset[str]] = {}


def _register_names(arch: Arch) -> frozenset[str]:
    """Names of the arch's registers, from its record and from capstone's
    register table where capstone has the arch (mc_object joins no source
    that defines a label so named)."""
    if arch.name not in _REGISTER_NAMES:
        names = {r.name for r in arch.registers} | {arch.stack_pointer, *arch.reserved}
        if arch.emulator is not None:
            names |= {*arch.emulator.aliases, *arch.emulator.reserved}
        if arch.capstone is not None:
            import capstone

            cs_arch, cs_mode = arch.capstone
            decoder = capstone.Cs(getattr(capstone, cs_arch), getattr(capstone, cs_mode))
            # Register ids are small and dense; past the last one reg_name is empty.
            names |= {decoder.reg_name(i) or "" for i in range(1, 2048)} - {""}
        _REGISTER_NAMES[arch.name] = frozenset(n.lstrip("%$") for n in names)
    return _REGISTER_NAMES[arch.name]


def assemble_llvm_mc(spec: Spec, rendered: Rendered) -> Assembly:
    arch = spec.arch_info
    lines = parse_lines(rendered, arch)
    # Each source line with the template line it came from (0: generated).
    source: list[tuple[str, int]] = []
    if spec.syntax == "intel":
        source.append((".intel_syntax noprefix", 0))
    probes = []
    for index, line in enumerate(lines):
        for label in line.labels:
            source.append((f"{label}:", line.template_line))
        if line.statement is not None:
            source.append((f"{probe_name(index)}:", line.template_line))
            source.append((line.statement, line.template_line))
            probes.append(probe_name(index))
    source.append((f"{END_PROBE}:", 0))
    text = "\n".join(s for s, _ in source) + "\n"
    done = assemble_object(mc_source(spec, text))
    if "error" in done:
        raise _diagnostic(done["error"], source, rendered.path)
    if done["endian"] != spec.endian:
        endian = done["endian"]
        raise AsmgenError(f"llvm-mc wrote a {endian}-endian object for a {spec.endian} spec")
    code, symbols = bytes.fromhex(done["code"]), done["symbols"]
    if done["relocations"]:
        raise AsmgenError(
            "llvm-mc left relocations in .text; the table must be position-independent "
            "and fully resolved (compute PC-relative operands with label())",
            rendered.path,
        )
    wanted = [name for line in lines for name in line.labels] + probes + [END_PROBE]
    missing = [name for name in wanted if name not in symbols]
    if missing:
        raise AsmgenError(f"llvm-mc object lacks label {missing[0]!r}", rendered.path)
    if symbols[END_PROBE] != len(code):
        raise AsmgenError("llvm-mc returned an inconsistent layout", rendered.path)
    return collect(lines, symbols, code, rendered.path)


def _diagnostic(stderr: str, source: list[tuple[str, int]], path: Path) -> AsmgenError:
    match = DIAGNOSTIC.search(stderr)
    if match is None:
        detail = stderr.strip().splitlines()
        return AsmgenError(f"llvm-mc failed: {detail[0] if detail else 'no message'}", path)
    number = int(match.group(1))
    text, template_line = source[number - 1] if 0 < number <= len(source) else ("", 0)
    return AsmgenError(
        f"llvm-mc rejects {text.strip()!r}: {match.group(4)}",
        path,
        template_line or None,
    )


def decode_words(arch: Arch, endian: str, words: list[bytes]) -> list[str | None]:
    """llvm-mc's text for each fixed-width instruction word, None for a word
    that is not a valid instruction (cached; in a parallel build, one llvm-mc
    run decodes the words of many tables)."""
    triple = arch.triple(endian)
    if arch.element_size == 1 or not triple:
        raise AsmgenError(f"no disassembler for arch {arch.name!r}")
    # llvm-mc reads bytes in memory order, so each word goes in as stored.
    text = "".join(" ".join(f"0x{b:02x}" for b in word) + "\n" for word in words)
    command = [find_llvm_mc(), "--disassemble", f"-triple={triple}"]
    if arch.llvm_mattr:
        command.append(f"-mattr={arch.llvm_mattr}")

    key = ["decode-words-2", llvm_mc_version(), *command, text]
    job = (tuple(command), text)
    return cached(key, lambda: submit(job[0], _decode_all, job))["decoded"]


def _decode_all(jobs: list[tuple[tuple[str, ...], str]]) -> list[dict]:
    """Each job's decoded words, from one llvm-mc run on all the texts (gather.py
    batches jobs of one command): llvm-mc prints one line per valid word and
    warns, naming the input line, about each invalid one; every line is one
    word, so the texts simply follow each other."""
    texts = [text for _, text in jobs]
    result = subprocess.run(jobs[0][0], input="".join(texts), capture_output=True, text=True)
    bad = {int(n) - 1 for n in re.findall(r"<stdin>:(\d+):\d+: warning: invalid", result.stderr)}
    decoded = iter(
        " ".join(line.split())
        for line in result.stdout.splitlines()
        if line.strip() and not line.strip().startswith(".")
    )
    total = sum(text.count("\n") for text in texts)
    words = [None if index in bad else next(decoded, None) for index in range(total)]
    out, start = [], 0
    for text in texts:
        count = text.count("\n")
        out.append({"decoded": words[start : start + count]})
        start += count
    return out


def llvm_mc_disassembler(table) -> Callable[[bytes, int], list[tuple[int, bytes, str]]]:
    """A disassembler for `disasm.listing` on arches capstone lacks.

    Every code statement of `table` is decoded in one llvm-mc run, one
    instruction per element; a statement whose words do not all decode comes
    back empty (the listing then shows it as data).
    """
    unit = table.spec.arch_info.element_size
    places = [
        at
        for stmt in table.statements
        if not stmt.is_data and stmt.size % unit == 0
        for at in range(stmt.offset, stmt.offset + stmt.size, unit)
    ]
    words = [table.code[at : at + unit] for at in places]
    texts = decode_words(table.spec.arch_info, table.spec.endian, words)
    by_offset = {at: text for at, text in zip(places, texts, strict=True) if text}

    def disassemble(data: bytes, offset: int) -> list[tuple[int, bytes, str]]:
        out = []
        for at in range(offset, offset + len(data), unit):
            if at not in by_offset:
                return []
            out.append((at, data[at - offset : at - offset + unit], by_offset[at]))
        return out

    return disassemble
