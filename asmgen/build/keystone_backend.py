"""The keystone backend: assemble rendered source with keystone-engine.

keystone has no symbol table, so every label (and a probe label before every
statement) is read back through data directives appended after the code,
which are then stripped.  keystone runs in a child process with a time limit
(keystone_process.py): it loops for ever on some malformed statements.
"""

from __future__ import annotations

from pathlib import Path

from asmgen.build.keystone_process import Engine, KeystoneStuck
from asmgen.build.render import Rendered
from asmgen.build.source import (
    END_PROBE,
    Assembly,
    ParsedLine,
    collect,
    parse_lines,
    probe_name,
    refuse_bare_decimals,
)
from asmgen.errors import AsmgenError
from asmgen.spec import Spec


def keystone_engine(spec: Spec) -> Engine:
    """The spec's keystone engine, run in a child process (keystone_process.py)."""
    import keystone

    arch = spec.arch_info
    ks_arch, ks_mode = arch.keystone
    mode = getattr(keystone, ks_mode)
    if spec.endian == "big":
        mode |= keystone.KS_MODE_BIG_ENDIAN
    else:
        mode |= keystone.KS_MODE_LITTLE_ENDIAN
    syntax = {"att": "KS_OPT_SYNTAX_ATT", "intel": "KS_OPT_SYNTAX_INTEL"}.get(spec.syntax or "")
    return Engine(ks_arch, mode, syntax)


def _stuck(statement: str, path: Path, line: int) -> AsmgenError:
    return AsmgenError(
        f"keystone does not finish on {statement!r} (it loops on some malformed statements)",
        path,
        line,
    )


def _locate_failure(ks, lines: list[ParsedLine], message: str, path: Path) -> AsmgenError:
    """keystone reports no line: try each statement alone to find the culprit."""
    import keystone

    # A statement alone misses the labels it refers to; these define them all.
    defined = "".join(f"\n{name}:" for line in lines for name in line.labels)
    for line in lines:
        if line.statement is None:
            continue
        try:
            encoding, _ = ks.asm(line.statement, 0)
        except KeystoneStuck:
            return _stuck(line.statement, path, line.template_line)
        except keystone.KsError as exc:
            if exc.errno != keystone.KS_ERR_ASM_SYMBOL_MISSING:
                return AsmgenError(
                    f"keystone rejects {line.statement!r}: {exc}",
                    path,
                    line.template_line,
                )
            try:
                ks.asm(line.statement + defined, 0)
            except KeystoneStuck:
                return _stuck(line.statement, path, line.template_line)
            except keystone.KsError as again:
                if again.errno == keystone.KS_ERR_ASM_SYMBOL_MISSING:
                    return AsmgenError(
                        f"{line.statement!r} refers to a symbol that no label defines",
                        path,
                        line.template_line,
                    )
            continue
        # keystone sometimes drops an invalid instruction, and all that follows,
        # without raising.
        if not encoding and not line.statement.startswith("."):
            return AsmgenError(
                f"keystone rejects {line.statement!r}: it produced no code",
                path,
                line.template_line,
            )
    # Every statement is fine alone: the first prefix keystone rejects ends at
    # the culprit (`.org` backwards, say).
    text = ""
    for index, line in enumerate(lines):
        text += "".join(f"{name}:\n" for name in line.labels)
        if line.statement is None:
            continue
        text += line.statement + "\n"
        later = "".join(f"{name}:\n" for rest in lines[index + 1 :] for name in rest.labels)
        try:
            ks.asm(text + later, 0)
        except KeystoneStuck:
            return _stuck(line.statement, path, line.template_line)
        except keystone.KsError as exc:
            return AsmgenError(
                f"keystone rejects {line.statement!r} after the lines before it: {exc}",
                path,
                line.template_line,
            )
    return AsmgenError(f"keystone rejects the template: {message}", path)


def assemble_keystone(spec: Spec, rendered: Rendered) -> Assembly:
    import keystone

    arch = spec.arch_info
    lines = parse_lines(rendered, arch)
    refuse_bare_decimals(lines, arch, rendered.path)
    probe = ".quad" if arch.pointer_size == 8 else ".long"
    source, probes = [], []
    for index, line in enumerate(lines):
        for label in line.labels:
            source.append(f"{label}:")
            probes.append(label)
        if line.statement is not None:
            source.append(f"{probe_name(index)}:")
            source.append(line.statement)
            probes.append(probe_name(index))
    source.append(f"{END_PROBE}:")
    probes.append(END_PROBE)
    source.extend(f"{probe} {name}" for name in probes)
    ks = keystone_engine(spec)
    try:
        encoding, _ = ks.asm("\n".join(source) + "\n", 0)
    except (keystone.KsError, KeystoneStuck) as exc:
        raise _locate_failure(ks, lines, str(exc), rendered.path) from None
    blob = bytes(encoding or b"")
    width = arch.pointer_size
    order = spec.endian
    code_end = len(blob) - width * len(probes)
    if code_end < 0:
        raise _locate_failure(ks, lines, "the output is incomplete", rendered.path)
    values = [
        int.from_bytes(blob[code_end + i * width : code_end + (i + 1) * width], order)
        for i in range(len(probes))
    ]
    offsets = dict(zip(probes, values, strict=True))
    if offsets[END_PROBE] != code_end:
        raise _locate_failure(ks, lines, "the output is incomplete", rendered.path)
    return collect(lines, offsets, blob[:code_end], rendered.path)
