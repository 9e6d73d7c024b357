"""`asmgen review`: what the machine code does differently between two sets of tables.

Each table is disassembled and its instructions aligned by text (difflib's
SequenceMatcher), not by offset, so an instruction that only moved lines up
with itself and is reported as shifted, never as a change.  Patch fields are
masked to zero before comparing, so placeholder values never show as changes,
and an instruction's key carries the names of the patch points it holds.

Counting, which the report and the tests share: an *instruction* is changed
(paired with a different new instruction of the same mnemonic), inserted or
deleted.  A *change* is one reviewable edit: a run of adjacent changed
instructions with the same operand rewrite (for example `rsi -> rdx` on a
`mov` and a `sub`, or every stack offset moved by -8), or a run of adjacent
insertions or deletions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from difflib import SequenceMatcher

from asmgen.arches import ARCHES
from asmgen.build.disasm import capstone_for, decode_code
from asmgen.errors import AsmgenError
from asmgen.review.llvm_tables import Finding
from asmgen.review.sources import Source
from asmgen.review.stackregs import stack_transfers, stack_transfers_text
from asmgen.review.verdict import CHECK_WORDS, FAILED, Verdict

# Record keys shown by their own part of the report.
_SHOWN = {"hex", "size", "patches", "frame", "syntax"}
_TOKEN = re.compile(r"[A-Za-z_.$%#][\w.$]*|-?(?:0x[0-9a-fA-F]+|\d+)|\S")


@dataclass(frozen=True)
class Insn:
    offset: int
    data: bytes
    text: str
    key: str  # text with patch fields masked, plus the patch names it holds
    patches: tuple[str, ...]
    runtime: bool = False  # a word the runtime writes whole (shown as it writes it)

    @property
    def end(self) -> int:
        return self.offset + len(self.data)


@dataclass(frozen=True)
class Line:
    tag: str  # equal, retargeted, changed, inserted, deleted
    old: Insn | None
    new: Insn | None
    change: int | None = None  # index into AbiReview.changes

    @property
    def shift(self) -> int | None:
        return None if self.old is None or self.new is None else self.new.offset - self.old.offset


@dataclass(frozen=True)
class Change:
    kind: str  # changed, inserted, deleted
    old: tuple[Insn, ...]
    new: tuple[Insn, ...]
    rewrite: tuple[tuple[str, str], ...] = ()  # operand tokens, old -> new


@dataclass(frozen=True)
class PatchMove:
    name: str
    old: int | None
    new: int | None


@dataclass(frozen=True)
class AbiReview:
    old_abi: str | None
    new_abi: str | None
    arch: str
    old_size: int | None
    new_size: int | None
    lines: tuple[Line, ...]
    changes: tuple[Change, ...]
    patches: tuple[PatchMove, ...]
    saved: tuple[tuple[str, ...] | None, tuple[str, ...] | None]
    restored: tuple[tuple[str, ...] | None, tuple[str, ...] | None]
    frame: tuple[dict | None, dict | None]
    fields: dict[str, tuple] = field(default_factory=dict)  # other record keys that differ
    verdicts: tuple[Verdict | None, Verdict | None] = (None, None)  # per side
    # An ABI only NEW has, compared with the OLD table most like it (old_abi).
    added: bool = False
    # What each side's sources get wrong without running (LLVM: a stale size constant).
    findings: tuple[tuple[Finding, ...], tuple[Finding, ...]] = ((), ())
    # What NEW's edit gets wrong against OLD: an offset constant left behind, a
    # register restored that is no longer saved.
    stale: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()  # about how NEW was read (asmgen's reading vs the compiler)

    @property
    def verify(self) -> tuple[dict | None, dict | None]:
        """check -> outcome, per side (None: verify did not run on that side)."""
        return tuple(v.outcomes if v is not None else None for v in self.verdicts)

    @property
    def name(self) -> str:
        if self.added:
            return self.new_abi or "?"
        if self.old_abi == self.new_abi or None in (self.old_abi, self.new_abi):
            return self.new_abi or self.old_abi or "?"
        return f"{self.old_abi} -> {self.new_abi}"

    @property
    def problems(self) -> list[str]:
        """What NEW breaks that OLD did not: the reasons a CI job fails (exit 1)."""
        out = list(self.stale)
        old_keys = set() if self.added else {f.key for f in self.findings[0]}
        out += [f.text for f in self.findings[1] if f.key not in old_keys]
        old, new = self.verify
        failing = [
            f"{check} ({CHECK_WORDS.get(check, check)})"
            for check, outcome in (new or {}).items()
            if outcome == FAILED and (old or {}).get(check) != FAILED
        ]
        if failing:
            out.append(f"verify fails: {', '.join(failing)}")
        return out

    @property
    def status(self) -> str:
        if self.old_abi is None or self.added:
            return "added"
        if self.new_abi is None:
            return "removed"
        same = (
            not self.changes
            and self.old_size == self.new_size
            and all(line.tag == "equal" and line.shift == 0 for line in self.lines)
            and all(p.old == p.new for p in self.patches)
            and self.frame[0] == self.frame[1]
            and not self.fields
            and self.verify[0] == self.verify[1]
        )
        return "unchanged" if same else "changed"

    def count(self, kind: str) -> int:
        return sum(
            len(c.new if kind == "inserted" else c.old) for c in self.changes if c.kind == kind
        )


@dataclass(frozen=True)
class Review:
    old: str
    new: str
    abis: tuple[AbiReview, ...]
    llvm: bool = False  # LLVM's sources: classes and their writers, no asmgen frame records
    notes: tuple[str, ...] = ()  # how the sides were read, when it limits the review


def _fields(record: dict) -> list[dict]:
    out = []
    for patch in record.get("patches", {}).values():
        # Records from before per-field detail: the whole container is the field.
        whole = {"offset": patch["offset"], "size": patch["size"], "shift": 0}
        out += patch.get("fields") or [{**whole, "bits": 8 * patch["size"]}]
    return out


def _runtime_view(code: bytes, record: dict) -> bytes:
    """The code as patching leaves it: a word the runtime writes whole (zero in
    the table) holds its base instruction, so the review shows that instruction."""
    out = bytearray(code)
    order = record.get("endian", "little")
    for f in _fields(record):
        if f.get("whole_word"):
            out[f["offset"] : f["offset"] + f["size"]] = f["base"].to_bytes(f["size"], order)
    return bytes(out)


def _mask(code: bytes, record: dict) -> bytes:
    """The code with every patch field's bits cleared."""
    out = bytearray(code)
    order = record.get("endian", "little")
    for f in _fields(record):
        span = slice(f["offset"], f["offset"] + f["size"])
        word = int.from_bytes(out[span], order)
        word &= ~(((1 << f["bits"]) - 1) << f["shift"])
        out[span] = word.to_bytes(f["size"], order)
    return bytes(out)


def _holders(record: dict, offset: int, end: int) -> tuple[str, ...]:
    names = []
    for name, patch in record.get("patches", {}).items():
        fields = patch.get("fields") or [patch]
        if any(offset <= f["offset"] < end for f in fields):
            names.append(name)
    return tuple(names)


def listing(record: dict, syntax: str | None, where: str) -> list[Insn]:
    """The instructions of one tables.json record, with comparison keys."""
    arch = ARCHES.get(record["arch"])
    if arch is None:
        raise AsmgenError(f"unknown arch {record['arch']!r}", where)
    code = _runtime_view(bytes.fromhex(record["hex"]), record)
    runtime = {f["offset"] for f in _fields(record) if f.get("whole_word")}
    order = record.get("endian", "little")
    masked = _mask(code, record)
    plain = {at: (raw, text) for at, raw, text in decode_code(arch, order, syntax, masked)}
    out = []
    for offset, raw, text in decode_code(arch, order, syntax, code):
        names = _holders(record, offset, offset + len(raw))
        key = text
        if masked[offset : offset + len(raw)] != raw:
            other = plain.get(offset)
            same = other is not None and len(other[0]) == len(raw)
            key = other[1] if same else f".masked {masked[offset : offset + len(raw)].hex()}"
        if names:
            key += " {" + ",".join(names) + "}"
        out.append(Insn(offset, raw, text, key, names, offset in runtime))
    return out


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


def _number(token: str) -> int | None:
    try:
        return int(token.lstrip("$#"), 0)
    except ValueError:
        return None


def _rewrite(old: Insn, new: Insn) -> tuple[tuple[str, str], ...] | None:
    a, b = _tokens(old.text), _tokens(new.text)
    if len(a) != len(b):
        return None
    pairs: list[tuple[str, str]] = []
    for x, y in zip(a, b, strict=True):
        if x != y and (x, y) not in pairs:
            pairs.append((x, y))
    return tuple(pairs)


def _signature(rewrite: tuple[tuple[str, str], ...]) -> tuple:
    """What makes two rewrites one edit: the same register swap, or the same
    shift of immediates (a frame slot moving by 8 rewrites many offsets)."""
    out = []
    for a, b in rewrite:
        x, y = _number(a), _number(b)
        item = ("delta", y - x) if x is not None and y is not None else (a, b)
        if item not in out:
            out.append(item)
    return tuple(out)


def _retargeted(old: Insn, new: Insn, moved: dict[int, int]) -> bool:
    """Same instruction whose only differences are addresses of code that moved.

    An address may be written absolute, relative to the instruction, or
    relative to the next one (RIP-relative addressing).
    """
    pairs = _rewrite(old, new)
    if not pairs or old.text.split()[0] != new.text.split()[0]:
        return False
    for x, y in pairs:
        a, b = _number(x), _number(y)
        if a is None or b is None:
            return False
        bases = ((0, 0), (old.offset, new.offset), (old.end, new.end))
        if not any(moved.get(a + ob) == b + nb for ob, nb in bases):
            return False
    return True


def _mnemonic(insn: Insn) -> str:
    return insn.text.split()[0] if insn.text else ""


def _align_block(old: list[Insn], new: list[Insn]) -> list[tuple[str, list[Insn], list[Insn]]]:
    """Pair a replaced block: same mnemonic -> changed, the rest inserted/deleted."""
    matcher = SequenceMatcher(None, [_mnemonic(i) for i in old], [_mnemonic(i) for i in new])
    out = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            out.append(("pairs", old[i1:i2], new[j1:j2]))
        else:
            if i2 > i1:
                out.append(("deleted", old[i1:i2], []))
            if j2 > j1:
                out.append(("inserted", [], new[j1:j2]))
    return out


def diff_listings(old: list[Insn], new: list[Insn]) -> tuple[list[Line], list[Change]]:
    matcher = SequenceMatcher(None, [i.key for i in old], [i.key for i in new], autojunk=False)
    opcodes = matcher.get_opcodes()
    moved = {}
    for tag, i1, i2, j1, j2 in opcodes:
        if tag == "equal":
            moved.update((o.offset, n.offset) for o, n in zip(old[i1:i2], new[j1:j2], strict=True))
    if old and new:
        moved[old[-1].end] = new[-1].end

    lines: list[Line] = []
    changes: list[Change] = []

    def add_change(kind: str, olds: list[Insn], news: list[Insn], rewrite=()) -> None:
        previous = changes[-1] if changes else None
        adjacent = bool(lines) and lines[-1].change == len(changes) - 1
        if (
            previous is not None
            and adjacent
            and previous.kind == kind
            and (kind != "changed" or _signature(previous.rewrite) == _signature(rewrite))
        ):
            merged = previous.rewrite + tuple(p for p in rewrite if p not in previous.rewrite)
            changes[-1] = Change(
                kind, previous.old + tuple(olds), previous.new + tuple(news), merged
            )
        else:
            changes.append(Change(kind, tuple(olds), tuple(news), rewrite))
        number = len(changes) - 1
        if kind == "changed":
            lines.extend(Line(kind, o, n, number) for o, n in zip(olds, news, strict=True))
        else:
            lines.extend(Line(kind, o, None, number) for o in olds)
            lines.extend(Line(kind, None, n, number) for n in news)

    for tag, i1, i2, j1, j2 in opcodes:
        if tag == "equal":
            lines.extend(Line("equal", o, n) for o, n in zip(old[i1:i2], new[j1:j2], strict=True))
            continue
        for kind, olds, news in _align_block(old[i1:i2], new[j1:j2]):
            if kind != "pairs":
                add_change(kind, olds, news)
                continue
            for o, n in zip(olds, news, strict=True):
                if _retargeted(o, n, moved):
                    lines.append(Line("retargeted", o, n))
                else:
                    add_change("changed", [o], [n], _rewrite(o, n) or ())
    return lines, changes


def _patch_moves(old: dict, new: dict) -> tuple[PatchMove, ...]:
    a, b = old.get("patches", {}), new.get("patches", {})
    names = list(a) + [n for n in b if n not in a]
    return tuple(
        PatchMove(n, a[n]["offset"] if n in a else None, b[n]["offset"] if n in b else None)
        for n in names
    )


def _transfers(record: dict | None, syntax: str | None, lines: list[Insn]):
    if record is None:
        return None
    arch = ARCHES[record["arch"]]
    cs = capstone_for(arch, record.get("endian", "little"), syntax, detail=True)
    if cs is None:
        return stack_transfers_text(arch, [i.text for i in lines])
    return stack_transfers(cs, arch, _runtime_view(bytes.fromhex(record["hex"]), record))


def _stale(old: dict, new: dict, lines: list[Line]) -> list[str]:
    """Patch points that did not move with the instruction they patch.

    A field lies at a fixed place inside its instruction (or data word), so when
    the edit moves the instruction, LLVM's offset constant must move by as much.
    """
    partner = {line.old.offset: line.new for line in lines if line.old and line.new}
    olds = [line.old for line in lines if line.old]
    news = [line.new for line in lines if line.new]
    out = []
    for name, point in new.get("patches", {}).items():
        before = old.get("patches", {}).get(name)
        if before is None:
            continue
        holder = next((i for i in olds if i.offset <= before["offset"] < i.end), None)
        moved = partner.get(holder.offset) if holder else None
        if moved is None:
            continue
        want = moved.offset + before["offset"] - holder.offset
        if want == point["offset"]:
            continue
        constant = point.get("constant") or name
        text = (
            f"{constant} is {point['offset']:#x}, but the field it patches moved with "
            f"`{moved.text}` ({holder.offset:#x} -> {moved.offset:#x}) to {want:#x}"
        )
        there = next((i for i in news if i.offset <= point["offset"] < i.end), None)
        if there is not None:
            text += (
                f"; the write at {point['offset']:#x} lands in `{there.text}` ({there.offset:#x})"
            )
        out.append(text)
    return out


def _unsaved(before, after) -> list[str]:
    """Registers the edit stops saving but still restores: each restore then
    reads a slot that holds something else."""
    if before is None or after is None:
        return []
    return [
        f"{reg} is no longer saved but still restored: its restore loads another slot"
        for reg in before.saved
        if reg not in after.saved and reg in after.restored
    ]


def review_pair(
    old_abi: str | None,
    old: dict | None,
    new_abi: str | None,
    new: dict | None,
    syntax: str | None,
    where: tuple[str, str],
) -> AbiReview:
    syntax = syntax or (new or {}).get("syntax") or (old or {}).get("syntax")
    old_lines = listing(old, syntax, where[0]) if old else []
    new_lines = listing(new, syntax, where[1]) if new else []
    lines, changes = diff_listings(old_lines, new_lines)
    before, after = _transfers(old, syntax, old_lines), _transfers(new, syntax, new_lines)
    fields = {}
    if old and new:
        for key in [k for k in old if k not in _SHOWN] + [k for k in new if k not in old]:
            if key not in _SHOWN and old.get(key) != new.get(key):
                fields[key] = (old.get(key), new.get(key))
    stale = _stale(old, new, lines) + _unsaved(before, after) if old and new else []
    return AbiReview(
        old_abi=old_abi,
        new_abi=new_abi,
        arch=(new or old)["arch"],
        old_size=old["size"] if old else None,
        new_size=new["size"] if new else None,
        lines=tuple(lines),
        changes=tuple(changes),
        patches=_patch_moves(old or {}, new or {}),
        saved=(before.saved if before else None, after.saved if after else None),
        restored=(before.restored if before else None, after.restored if after else None),
        frame=((old or {}).get("frame"), (new or {}).get("frame")),
        fields=fields,
        stale=tuple(stale),
    )


def pairs(old: Source, new: Source) -> list[tuple[str | None, str | None]]:
    """ABIs matched by name; one table on each side is compared whatever its name."""
    if len(old.records) == 1 and len(new.records) == 1:
        return [(next(iter(old.records)), next(iter(new.records)))]
    out: list[tuple[str | None, str | None]] = [
        (name if name in old.records else None, name) for name in new.records
    ]
    out += [(name, None) for name in old.records if name not in new.records]
    return out


def nearest(record: dict, candidates: dict[str, dict], syntax: str | None) -> str | None:
    """The candidate most like `record` (same arch, byte order and kind of code):
    the table a new LLVM class was most likely made from."""
    same = [
        name
        for name, other in candidates.items()
        if (other["arch"], other.get("endian"), other.get("unit"))
        == (record["arch"], record.get("endian"), record.get("unit"))
    ]
    if not same:
        return None
    keys = [i.key for i in listing(record, syntax, "")]

    def likeness(name: str) -> float:
        theirs = [i.key for i in listing(candidates[name], syntax, name)]
        return SequenceMatcher(None, theirs, keys, autojunk=False).ratio()

    return max(same, key=likeness)


def _wanted(old: Source, new: Source, names: set[str | None], abis: tuple[str, ...]) -> bool:
    wanted = set(abis) | {f"Orc{a}" for a in abis}
    if names & wanted:
        return True
    users = set().union(*(s.users(n) for s in (old, new) for n in names if n))
    return bool(users & wanted)


def _side_verdicts(source: Source, names: list[str]) -> dict[str, Verdict]:
    if source.llvm is not None:
        from asmgen.review.llvm_verdict import verdicts

        classes = [n for n in names if n in source.llvm.classes]
        return verdicts(source.llvm, classes) if classes else {}
    from asmgen.review.verdict import verdict

    out = {}
    for name in names:
        if name in source.specs:
            spec, path = source.specs[name]
            out[name] = verdict(source.records[name], spec, path, source.label)
    return out


def _with_verdicts(old: Source, new: Source, chosen: list[AbiReview]) -> list[AbiReview]:
    """Both sides' verdicts; a class whose code is the same on both sides runs once."""
    old_names = sorted({r.old_abi for r in chosen if r.old_abi})
    same = {
        r.new_abi
        for r in chosen
        if old.llvm is not None
        and new.llvm is not None
        and r.old_abi == r.new_abi
        and not r.added
        and r.old_abi in old.llvm.classes
        and r.new_abi in new.llvm.classes
        and old.llvm.fingerprint(r.old_abi) == new.llvm.fingerprint(r.new_abi)
    }
    new_names = sorted({r.new_abi for r in chosen if r.new_abi and r.new_abi not in same})
    before = _side_verdicts(old, old_names)
    after = _side_verdicts(new, new_names)
    after.update({name: before[name] for name in same if name in before})
    return [replace(r, verdicts=(before.get(r.old_abi), after.get(r.new_abi))) for r in chosen]


def review(
    old: Source,
    new: Source,
    syntax: str | None = None,
    abis=(),
    verify: bool = False,
    llvm_verify: bool = True,
) -> Review:
    """`verify`: run verify on asmgen's tables too; `llvm_verify`: on LLVM's (the default)."""
    chosen = []
    for a, b in pairs(old, new):
        if abis and not _wanted(old, new, {a, b}, tuple(abis)):
            continue
        added = False
        if a is None and new.llvm is not None:
            # A class LLVM adds: compared with the old table it is most like.
            near = nearest(new.records[b], old.records, syntax)
            if near is not None:
                a, added = near, True
        result = review_pair(
            a, old.records.get(a), b, new.records.get(b), syntax, (old.label, new.label)
        )
        chosen.append(
            replace(
                result,
                added=added,
                findings=(tuple(old.findings(a)), tuple(new.findings(b))),
                notes=tuple(new.notes(b)),
            )
        )
    if abis and not chosen:
        raise AsmgenError(f"no ABI named {', '.join(abis)} on either side", "asmgen review")
    llvm = old.llvm is not None or new.llvm is not None
    if verify or (llvm and llvm_verify):
        chosen = _with_verdicts(old, new, chosen)
    notes = tuple(
        f"{side}: {source.llvm.writers_note}: trampolines and stubs are not compared"
        for side, source in (("OLD", old), ("NEW", new))
        if source.llvm is not None and source.llvm.driver is None
    )
    return Review(old.label, new.label, tuple(chosen), llvm, notes)
