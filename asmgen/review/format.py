"""Present a `Review`: coloured terminal text, Markdown for a pull request, or JSON.

The aligned diff is the same text in every form.  `-` lines are old
instructions, `+` lines new ones, and both carry their offsets (old column,
then new column).  Context lines show an unchanged instruction with its shift
(`+4`).  Runs of unchanged or only-shifted instructions beyond the context
collapse into one `@@` line each, so a reviewer sees edits, not moves.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from asmgen.review.diff import AbiReview, Insn, Line, Review
from asmgen.review.verdict import CHECK_WORDS


@dataclass(frozen=True)
class DiffLine:
    style: str  # hunk, deleted, inserted, context
    text: str


def _hex(value: int | None) -> str:
    return "-" if value is None else f"{value:#x}"


def _signed(value: int) -> str:
    return f"{value:+#x}" if value else "0"


def _span(first: Insn, last: Insn, digits: int) -> str:
    a, b = f"{first.offset:#0{digits + 2}x}", f"{last.offset:#0{digits + 2}x}"
    return a if first is last else f"{a}..{b}"


def _collapsed(run: list[Line], digits: int) -> list[DiffLine]:
    """One `@@` line per stretch of equal shift."""
    out: list[DiffLine] = []
    start = 0
    for index in range(1, len(run) + 1):
        if index < len(run) and run[index].shift == run[start].shift:
            continue
        part = run[start:index]
        old = _span(part[0].old, part[-1].old, digits)
        count = f"{len(part)} instruction{'s' if len(part) != 1 else ''}"
        shift = part[0].shift
        if shift:
            new = _span(part[0].new, part[-1].new, digits)
            out.append(DiffLine("hunk", f"@@ {old} -> {new}, shifted {_signed(shift)}: {count} @@"))
        else:
            out.append(DiffLine("hunk", f"@@ {old} unchanged: {count} @@"))
        start = index
    return out


def diff_lines(abi: AbiReview, context: int = 1) -> list[DiffLine]:
    if not abi.lines:
        return []
    digits = max(2, len(f"{max(abi.old_size or 0, abi.new_size or 0):x}"))
    insns = [i for line in abi.lines for i in (line.old, line.new) if i is not None]
    width = max(len(i.text) for i in insns)

    def offset(insn: Insn | None) -> str:
        return " " * (digits + 2) if insn is None else f"{insn.offset:#0{digits + 2}x}"

    def row(sign: str, old: Insn | None, new: Insn | None, insn: Insn, note: str = "") -> str:
        notes = [f"patch {', '.join(insn.patches)}"] if insn.patches else []
        notes += ["written at run time"] if insn.runtime else []
        notes += [note] if note else []
        tail = f"  ; {'; '.join(notes)}" if notes else ""
        return f"{sign}{offset(old)}  {offset(new)}  {insn.text:<{width}}{tail}".rstrip()

    out: list[DiffLine] = []
    index = 0
    lines = abi.lines
    while index < len(lines):
        line = lines[index]
        if line.tag in ("equal", "retargeted"):
            end = index
            while end < len(lines) and lines[end].tag in ("equal", "retargeted"):
                end += 1
            run = list(lines[index:end])
            head = context if index > 0 else 0
            tail = context if end < len(lines) else 0
            keep_all = len(run) <= head + tail
            visible_head = run if keep_all else run[:head]
            visible_tail = [] if keep_all else run[len(run) - tail :]
            middle = [] if keep_all else run[head : len(run) - tail]
            for item in visible_head:
                out.append(_context(item, row))
            out.extend(_collapsed(middle, digits))
            for item in visible_tail:
                out.append(_context(item, row))
            index = end
            continue
        # One change: its old lines, then its new lines.
        end = index
        while end < len(lines) and lines[end].change == line.change:
            end += 1
        block = lines[index:end]
        for item in block:
            if item.old is not None:
                out.append(DiffLine("deleted", row("-", item.old, None, item.old)))
        for item in block:
            if item.new is not None:
                out.append(DiffLine("inserted", row("+", None, item.new, item.new)))
        index = end
    return out


def _context(line: Line, row) -> DiffLine:
    note = f"{_signed(line.shift)}" if line.shift else ""
    if line.tag == "retargeted":
        note = (note + "; " if note else "") + f"target moved, was `{line.old.text}`"
    return DiffLine("context", row(" ", line.old, line.new, line.new, note))


def _regs(values: tuple[str, ...] | None) -> str:
    return "?" if values is None else " ".join(values) or "none"


def _list_change(name: str, pair) -> str | None:
    old, new = pair
    if old == new:
        return None
    if old is None or new is None:
        return f"{name}: {_regs(old)} -> {_regs(new)}"
    gone = [r for r in old if r not in new]
    added = [r for r in new if r not in old]
    parts = [f"-{r}" for r in gone] + [f"+{r}" for r in added]
    return f"{name}: {' '.join(parts) if parts else 'order changed'}: {_regs(new)}"


def change_count(abi: AbiReview) -> str:
    if not abi.changes:
        return "none"
    parts = [f"{abi.count(k)} {k}" for k in ("changed", "inserted", "deleted") if abi.count(k)]
    n = len(abi.changes)
    total = sum(abi.count(k) for k in ("changed", "inserted", "deleted"))
    noun = "instruction" if total == 1 else "instructions"
    return f"{n} change{'s' if n != 1 else ''} ({', '.join(parts)} {noun})"


def _rewrite(change) -> str:
    pairs = [(a.lstrip("%$#"), b.lstrip("%$#")) for a, b in change.rewrite]
    numbers = [(_int(a), _int(b)) for a, b in pairs]
    if len(pairs) > 1 and all(None not in n for n in numbers):
        deltas = {b - a for a, b in numbers}
        if len(deltas) == 1:
            return f"immediates {_signed(deltas.pop())}"
    return ", ".join(f"{a} -> {b}" for a, b in pairs)


def _int(text: str) -> int | None:
    try:
        return int(text, 0)
    except ValueError:
        return None


def _shifts(abi: AbiReview) -> str:
    steps: list[int] = []
    for line in abi.lines:
        if line.shift is not None and (not steps or steps[-1] != line.shift):
            steps.append(line.shift)
    moved = [s for s in steps if s]
    return "none" if not moved else ", then ".join(_signed(s) for s in moved)


def summary(abi: AbiReview) -> list[str]:
    """The facts a reviewer checks first, one line each."""
    if abi.status in ("added", "removed") and not abi.added:
        size = abi.new_size if abi.status == "added" else abi.old_size
        return [f"{abi.status} ({abi.arch}, {size:#x} bytes)", *_source_lines(abi)]
    out = []
    if abi.added:
        out.append(f"added; compared with {abi.old_abi}, the old table most like it")
    if abi.old_size == abi.new_size:
        out.append(f"size: {abi.new_size:#x} (unchanged)")
    else:
        out.append(
            f"size: {abi.old_size:#x} -> {abi.new_size:#x} ({_signed(abi.new_size - abi.old_size)})"
        )
    out.append(f"changes: {change_count(abi)}")
    for number, change in enumerate(abi.changes, 1):
        where = change.new[0].offset if change.new else change.old[0].offset
        insns = change.old if change.kind == "deleted" else change.new
        texts = "; ".join(i.text for i in insns[:2])
        texts += f"; ... ({len(insns)} instructions)" if len(insns) > 2 else ""
        how = f" ({_rewrite(change)})" if change.rewrite else ""
        out.append(f"  {number}. {change.kind} at {where:#x}{how}: {texts}")
    out.append(f"shifts: {_shifts(abi)}")
    for patch in abi.patches:
        if patch.old == patch.new:
            state = f"{_hex(patch.new)} (unchanged)"
        elif patch.old is None or patch.new is None:
            what = "added" if patch.old is None else "removed"
            state = f"{_hex(patch.old)} -> {_hex(patch.new)} ({what})"
        else:
            state = (
                f"{_hex(patch.old)} -> {_hex(patch.new)} (moved {_signed(patch.new - patch.old)})"
            )
        out.append(f"patch {patch.name}: {state}")
    for name, pair in (("saved", abi.saved), ("restored", abi.restored)):
        out.append(_list_change(name, pair) or f"{name}: unchanged ({_regs(pair[1])})")
    if abi.frame != (None, None):
        out.append(frame_change(abi) or "frame: unchanged")
    for key, (old, new) in abi.fields.items():
        out.append(f"{key}: {_field_change(old, new)}")
    out += _source_lines(abi)
    line = verify_change(abi)
    if line:
        out.append(line)
    out += _failing_lines(abi)
    return out


def _field_change(old, new) -> str:
    """A record field's change; a dict of numbers (LLVM's class constants) by key."""
    numbers = (int, type(None))
    if (
        isinstance(old, dict)
        and isinstance(new, dict)
        and all(isinstance(v, numbers) for v in [*old.values(), *new.values()])
    ):
        keys = list(old) + [k for k in new if k not in old]
        return ", ".join(
            f"{k} {_hex(old.get(k))} -> {_hex(new.get(k))}"
            for k in keys
            if old.get(k) != new.get(k)
        )
    return f"{_short(old)} -> {_short(new)}"


def _source_lines(abi: AbiReview) -> list[str]:
    """What the sources get wrong without running, and how NEW was read."""
    out = []
    old_keys = set() if abi.added else {f.key for f in abi.findings[0]}
    new_keys = {f.key for f in abi.findings[1]}
    for f in abi.findings[1]:
        out.append(f"source: {f.text}" + (" (in OLD too)" if f.key in old_keys else ""))
    if not abi.added:
        out += [f"source: fixed: {f.text}" for f in abi.findings[0] if f.key not in new_keys]
    out += [f"edit: {text}" for text in abi.stale]
    out += [f"note: {text}" for text in abi.notes]
    for side, verdict in zip(("OLD", "NEW"), abi.verdicts, strict=True):
        if verdict is not None and verdict.about:
            out.append(f"{side}: {verdict.about}")
    return out


def _failing_lines(abi: AbiReview) -> list[str]:
    """Each check that fails in NEW: its cause where the code shows one, then what
    each method found (said once when several checks fail the same way)."""
    old, new = abi.verdicts
    if new is None:
        return []
    out = []
    seen: dict[tuple, str] = {}
    for check, outcome in new.outcomes.items():
        if outcome != "FAIL":
            continue
        before = old.outcomes.get(check) if old is not None else None
        where = f"in {abi.old_abi} too" if abi.added else "in OLD too"
        when = f" (fails {where}: not introduced here)" if before == "FAIL" else ""
        cause = new.causes.get(check)
        out.append(
            f"  {check} ({CHECK_WORDS.get(check, check)}) FAIL{when}"
            + (f": {cause}" if cause else "")
        )
        found = tuple(new.details.get(check, ()))
        if found in seen:
            out.append(f"    found as for {seen[found]}")
            continue
        seen[found] = check
        out += [f"    {text}" for text in found]
    return out


def _short(value, limit: int = 60) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 3] + "..."


def verify_change(abi: AbiReview) -> str | None:
    """The checks whose `asmgen verify` outcome differs; None when verify did not run."""
    old, new = abi.verify
    if old is None and new is None:
        return None
    if old is None or new is None:
        missing = "old" if old is None else "new"
        return f"verify: no spec on the {missing} side; {_outcomes(old or new)}"
    checks = list(old) + [c for c in new if c not in old]
    # LLVM's code is verified against a convention: name what each check covers.
    worded = any(v is not None and v.about for v in abi.verdicts)
    moved = [
        f"{c}{f' ({CHECK_WORDS.get(c, c)})' if worded else ''} {old.get(c, '-')} -> "
        f"{new.get(c, '-')}"
        for c in checks
        if old.get(c) != new.get(c)
    ]
    return "verify: " + (", ".join(moved) if moved else f"unchanged ({_outcomes(new)})")


def _outcomes(verdicts: dict) -> str:
    counts: dict[str, int] = {}
    for outcome in verdicts.values():
        counts[outcome] = counts.get(outcome, 0) + 1
    return ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))


def frame_change(abi: AbiReview) -> str | None:
    old, new = abi.frame
    if old == new:
        return None
    if old is None or new is None:
        return f"frame: {old} -> {new}"
    keys = list(old) + [k for k in new if k not in old]
    parts = [
        f"{k} {_hex(old.get(k))} -> {_hex(new.get(k))}" for k in keys if old.get(k) != new.get(k)
    ]
    return "frame: " + ", ".join(parts)


def judged(result: Review) -> bool:
    """Whether the review says anything about correctness (verify ran, or LLVM's
    sources were read), and so prints a verdict."""
    return any(
        abi.verdicts != (None, None) or abi.findings != ((), ()) or abi.stale for abi in result.abis
    )


def verdict_lines(result: Review) -> list[str]:
    """The review's verdict, then each problem NEW brings (the exit status's reasons)."""
    if not judged(result):
        return []
    problems = [(abi.name, p) for abi in result.abis for p in abi.problems]
    if not problems:
        return ["verdict: clean (NEW fails nothing that OLD passes)"]
    noun = "problem" if len(problems) == 1 else "problems"
    return [f"verdict: {len(problems)} {noun} in NEW"] + [f"  {n}: {p}" for n, p in problems]


def known_lines(result: Review) -> list[str]:
    """Problems of unchanged tables, the same on both sides: context, not failures
    (their details are in the JSON form)."""
    out = []
    for abi in result.abis:
        if abi.status != "unchanged":
            continue
        out += [f"{abi.name}: {f.text}" for f in abi.findings[1]]
        new = abi.verdicts[1]
        failing = [c for c, o in (new.outcomes.items() if new else ()) if o == "FAIL"]
        if failing:
            named = ", ".join(f"{c} ({CHECK_WORDS.get(c, c)})" for c in failing)
            out.append(f"{abi.name}: verify fails {named}")
    return out


# --- output forms -----------------------------------------------------------------------------


def to_json(result: Review, context: int = 1) -> str:
    def insn(i: Insn | None):
        if i is None:
            return None
        return {"offset": i.offset, "hex": i.data.hex(), "text": i.text, "runtime": i.runtime}

    abis = []
    for abi in result.abis:
        abis.append(
            {
                "name": abi.name,
                "old_abi": abi.old_abi,
                "new_abi": abi.new_abi,
                "arch": abi.arch,
                "status": abi.status,
                "size": {"old": abi.old_size, "new": abi.new_size},
                "counts": {
                    "changes": len(abi.changes),
                    **{k: abi.count(k) for k in ("changed", "inserted", "deleted")},
                },
                "changes": [
                    {
                        "kind": c.kind,
                        "rewrite": [list(p) for p in c.rewrite],
                        "old": [insn(i) for i in c.old],
                        "new": [insn(i) for i in c.new],
                    }
                    for c in abi.changes
                ],
                "lines": [
                    {"tag": ln.tag, "shift": ln.shift, "old": insn(ln.old), "new": insn(ln.new)}
                    for ln in abi.lines
                ],
                "patches": {p.name: {"old": p.old, "new": p.new} for p in abi.patches},
                "saved": {"old": abi.saved[0], "new": abi.saved[1]},
                "restored": {"old": abi.restored[0], "new": abi.restored[1]},
                "frame": {"old": abi.frame[0], "new": abi.frame[1]},
                "fields": {k: {"old": a, "new": b} for k, (a, b) in abi.fields.items()},
                "verify": {"old": abi.verify[0], "new": abi.verify[1]},
                "verify_detail": {
                    side: None if v is None else {"about": v.about, "details": v.details}
                    for side, v in zip(("old", "new"), abi.verdicts, strict=True)
                },
                "added": abi.added,
                "findings": {
                    side: [{"key": f.key, "text": f.text} for f in found]
                    for side, found in zip(("old", "new"), abi.findings, strict=True)
                },
                "stale": list(abi.stale),
                "notes": list(abi.notes),
                "problems": abi.problems,
                "summary": summary(abi),
                "diff": [d.text for d in diff_lines(abi, context)],
            }
        )
    document = {"old": result.old, "new": result.new, "notes": list(result.notes), "abis": abis}
    if judged(result):
        document["verdict"] = verdict_lines(result)[0].removeprefix("verdict: ")
        document["problems"] = [
            {"abi": abi.name, "problem": p} for abi in result.abis for p in abi.problems
        ]
        document["known"] = known_lines(result)
    return json.dumps(document, indent=2) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def to_markdown(result: Review, context: int = 1) -> str:
    out = [f"### asmgen review: `{result.old}` -> `{result.new}`", ""]
    out += [*(f"> {note}" for note in result.notes), *([""] if result.notes else [])]
    verdict = verdict_lines(result)
    if verdict:
        out += [f"**{verdict[0].replace('verdict: ', 'Verdict: ', 1)}**", ""]
        out += [f"- {line.strip()}" for line in verdict[1:]]
        out += [""] if verdict[1:] else []
    verified = any(abi.verify != (None, None) for abi in result.abis)
    framed = not result.llvm
    header = ["ABI", "status", "size", "changes", "patch points", "saved / restored"]
    header += ["frame"] if framed else []
    header += ["verify"] if verified else []
    out += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for abi in result.abis:
        size = (
            _hex(abi.new_size)
            if abi.old_size == abi.new_size
            else f"{_hex(abi.old_size)} -> {_hex(abi.new_size)}"
        )
        moved = [p.name for p in abi.patches if p.old != p.new]
        regs = [
            c
            for c in (_list_change("saved", abi.saved), _list_change("restored", abi.restored))
            if c
        ]
        cells = [
            abi.name,
            abi.status,
            size,
            change_count(abi),
            "moved: " + ", ".join(moved) if moved else "unchanged",
            "; ".join(regs) or "unchanged",
        ]
        if framed:
            cells.append((frame_change(abi) or "frame: unchanged").removeprefix("frame: "))
        if verified:
            cells.append((verify_change(abi) or "verify: -").removeprefix("verify: "))
        if abi.status in ("added", "removed") and not abi.added:
            # Nothing to compare against: name the ABI, its status and size only.
            cells = [abi.name, abi.status, _hex(abi.new_size or abi.old_size)]
            cells += ["-"] * (len(header) - len(cells))
        out.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    for abi in result.abis:
        if abi.status == "unchanged":
            continue
        out += ["", f"#### {abi.name} ({abi.arch})", ""]
        out += [_markdown_item(line) for line in summary(abi)]
        out += ["", "```diff", *(d.text for d in diff_lines(abi, context)), "```"]
    known = known_lines(result)
    if known:
        out += ["", "#### Unchanged, with the same problems on both sides", ""]
        out += [f"- {_cell(line)}" for line in known]
    return "\n".join(out) + "\n"


def _markdown_item(line: str) -> str:
    """A summary line as a list item: indented lines nest, numbered ones stay numbered."""
    text = line.strip()
    depth = (len(line) - len(line.lstrip())) // 2
    numbered = text.split(". ", 1)[0].isdigit()
    return "  " * depth + (text if numbered else f"- {text}")


_STYLES = {"hunk": "cyan", "deleted": "red", "inserted": "green", "context": ""}


def print_terminal(result: Review, console, context: int = 1) -> None:
    """Coloured when `console` is a terminal; plain text otherwise (rich decides)."""
    from rich.text import Text

    console.print(Text(f"asmgen review: {result.old} -> {result.new}", style="bold"))
    for note in result.notes:
        console.print(Text(note, style="dim"))
    unchanged = [abi.name for abi in result.abis if abi.status == "unchanged"]
    for abi in result.abis:
        if abi.status == "unchanged":
            continue
        console.print()
        console.print(Text(f"{abi.name} ({abi.arch}): {abi.status}", style="bold"))
        for line in summary(abi):
            console.print(Text(f"  {line}"))
        for d in diff_lines(abi, context):
            console.print(Text(d.text, style=_STYLES[d.style]))
    if unchanged:
        console.print()
        console.print(Text(f"unchanged: {', '.join(unchanged)}", style="dim"))
    known = known_lines(result)
    if known:
        console.print(Text("the same problems on both sides:", style="dim"))
        for line in known:
            console.print(Text(f"  {line}", style="dim"))
    verdict = verdict_lines(result)
    if verdict:
        console.print()
        style = "bold green" if len(verdict) == 1 else "bold red"
        console.print(Text(verdict[0], style=style))
        for line in verdict[1:]:
            console.print(Text(line))
