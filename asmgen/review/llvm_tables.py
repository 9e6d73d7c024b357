"""LLVM's ORC ABI classes as `asmgen review` records, read from the sources.

For each class of OrcABISupport.h whose `writeResolverCode` holds a
`ResolverCode[]` table (its own, the one an inline forwarder calls with a
byte order, or an inherited one), the writer is run in Python
(asmgen.patch.orc_eval) the way LLVM's code runs: the table is copied, then
patched through its offset constants.  Running it with many addresses shows
which bits of which words each address sets, so the record holds the same
patch fields as an asmgen tables.json record (offset, shift, bits, the kind
of encoding when it is one asmgen knows, and the words written whole at run
time, such as a move whose source register the byte order chooses).

Each class is verified against a calling convention: the one of asmgen's spec
for that class (matched by class name), the one the reviewer names with
--convention, or one the class name names for certain (class_names.yaml),
and the report says which.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import yaml

from asmgen.arches import ARCHES
from asmgen.build.patchkinds import KINDS
from asmgen.errors import AsmgenError
from asmgen.patch import orc_source as orc
from asmgen.patch.orc_eval import Write, parameters, run_writer
from asmgen.resources import SPECS_DIR, TEMPLATES_DIR
from asmgen.spec import Spec
from asmgen.spec.convention import Convention, all_conventions, find_convention
from asmgen.spec.files import SpecFile, spec_files

CLASS_NAMES = Path(__file__).with_name("class_names.yaml")
CONSTANTS = (
    "PointerSize",
    "TrampolineSize",
    "StubSize",
    "StubToPointerMaxDisplacement",
    "ResolverCodeSize",
)
UNIT_WRITERS = {"trampolines": "writeTrampolines", "stubs": "writeIndirectStubsBlock"}
# Addresses the writer is run with to find each field's bits: every byte and
# every 16-bit half distinct, carries at each half, both signs of each half.
PROBES = (
    0x0123_4567_89AB_CDEF,
    0xFEDC_BA98_7654_3210,
    0x8000_7FFF_8000_7FFF,
    0x7FFF_8000_7FFF_8000,
    0x5A5A_A5A5_C3C3_3C3C,
)


@dataclass(frozen=True)
class Finding:
    """Something wrong in one side's sources; `key` pairs it with the other side's."""

    key: str
    text: str


@dataclass(frozen=True)
class Contract:
    """What a class is verified against, and why that convention."""

    spec: Spec  # the spec verify runs with: the class's own, or one of its arch
    spec_path: Path
    convention: str
    how: str  # "asmgen's spec abi_specs/x.yaml", "inferred from the class name ...", ...
    own_spec: bool  # asmgen has a spec for this class

    @property
    def about(self) -> str:
        """What the class is verified against, as the review says it."""
        if self.own_spec:
            return f"verified against {self.convention} ({self.how})"
        return f"no asmgen spec; verified against {self.convention} ({self.how})"


@dataclass
class LlvmClass:
    name: str
    contract: Contract
    record: dict  # tables.json-like
    # (target, fn, ctx) -> the resolver as the source writes it, evaluated in Python.
    evaluate: Callable[[int, int, int], bytes]
    units: dict[str, str]  # trampolines/stubs -> the writer's qualified name
    findings: list[Finding] = field(default_factory=list)

    @property
    def endian(self) -> str:
        return self.record["endian"]


# -- which convention -----------------------------------------------------------------------


@cache
def _name_words() -> dict[str, tuple[tuple[str, ...], ...]]:
    data = yaml.safe_load(CLASS_NAMES.read_text(encoding="utf-8"))
    return {
        conv: tuple(tuple(str(w) for w in words) for words in sets) for conv, sets in data.items()
    }


def infer_convention(name: str) -> tuple[str, tuple[str, ...]] | None:
    """(convention, the words that name it) when exactly one convention's words
    are all parts of the class name."""
    parts = "_" + name.removeprefix("Orc").lower() + "_"
    found = {}
    for conv, sets in _name_words().items():
        for words in sets:
            if all(f"_{w.lower()}_" in parts for w in words):
                found.setdefault(conv, words)
    return next(iter(found.items())) if len(found) == 1 else None


@dataclass(frozen=True)
class Conventions:
    """The reviewer's choices (--convention) and the project's specs and templates
    (asmgen's own by default)."""

    by_class: dict[str, str] = field(default_factory=dict)  # --convention Class=name
    default: str | None = None  # --convention name (every class without a spec)
    specs_dir: Path = SPECS_DIR
    templates: Path = TEMPLATES_DIR  # asmgen's units stand in when LLVM's do not run

    @property
    def specs(self) -> list[SpecFile]:
        return _specs(self.specs_dir)

    def named(self, name: str) -> Convention:
        found = find_convention(name, self.specs_dir)
        if found is None:
            known = ", ".join(c.convention for c in all_conventions(self.specs_dir / "conventions"))
            raise AsmgenError(f"--convention: no convention {name!r}; known: {known}")
        return found


@cache
def _specs(folder: Path) -> list[SpecFile]:
    return spec_files(folder, contract=False)


def contract_for(name: str, conventions: Conventions, endian: str | None) -> Contract:
    """The spec and convention `name` is verified against."""
    own = next((s for s in conventions.specs if s.spec.class_name == name), None)
    chosen = conventions.by_class.get(name)
    if chosen is not None:
        how = "named with --convention"
    elif own is not None:
        return Contract(
            _for_review(own.spec, name, own.spec.convention_info, endian or own.spec.endian),
            own.path,
            own.spec.convention,
            f"asmgen's spec {own.path.parent.name}/{own.path.name}",
            True,
        )
    elif conventions.default is not None:
        chosen, how = conventions.default, "named with --convention"
    else:
        inferred = infer_convention(name)
        if inferred is None:
            raise AsmgenError(
                f"{name}: asmgen has no spec for this class and its name does not say its "
                "calling convention for certain",
                hint=f"name one with --convention {name}=<convention> (abi_specs/conventions/)",
            )
        chosen = inferred[0]
        how = f"inferred from the class name: {', '.join(inferred[1])}"
    conv = conventions.named(chosen)
    base = own or _base_spec(conv, endian, conventions.specs)
    if base is None:
        raise AsmgenError(f"{name}: asmgen has no spec of {conv.arch} to verify it with")
    spec = _for_review(base.spec, name, conv, endian or base.spec.endian)
    return Contract(spec, base.path, chosen, how, own is not None)


def _base_spec(conv: Convention, endian: str | None, specs: list[SpecFile]) -> SpecFile | None:
    """The spec whose arch facts (syntax, pointer size) a new class borrows."""
    same_arch = [s for s in specs if s.spec.arch == conv.arch]
    for pick in (
        lambda s: s.spec.convention == conv.convention and s.spec.endian == endian,
        lambda s: s.spec.convention == conv.convention,
        lambda s: True,
    ):
        found = [s for s in same_arch if pick(s)]
        if found:
            return found[0]
    return None


def _for_review(spec: Spec, name: str, conv: Convention, endian: str) -> Spec:
    """`spec` verifying LLVM's code: named after the class, bound to `conv`, and
    declaring nothing (a review compares what both sides' code does)."""
    update = {
        "abi": name,
        "llvm_class": name,
        "convention": conv.convention,
        "endian": endian,
        "expected_violations": (),
        "deviations": (),
    }
    copy = spec.model_copy(update=update)
    copy.attach_convention(conv)
    return copy


# -- reading one class ------------------------------------------------------------------------


def _literal(text: str) -> int | None:
    text = text.strip()
    if text in ("true", "false"):
        return int(text == "true")
    try:
        return int(text.rstrip("uUlL"), 0)
    except ValueError:
        return None


@dataclass(frozen=True)
class _Writer:
    fn: orc.ResolverFn
    extra: dict[str, int]  # parameters past the four LLVM passes, from a forwarder
    params: tuple[str, ...]  # target, fn, ctx parameter names


def _resolver_of(name: str, decls: dict[str, orc.ClassDecl], fns) -> _Writer | None:
    """The writeResolverCode `name` runs: its own, a forwarder's target, or inherited."""
    for current in orc.lineage(decls, name):
        own = fns.get(f"{current.name}::{orc.RESOLVER_FN}")
        extra: dict[str, int] = {}
        if own is None and current.forwards_to:
            own = fns.get(f"{current.forwards_to}::{orc.RESOLVER_FN}")
            passed = current.forward_args[4:]
            for (param, _), text in zip(parameters(own)[4:] if own else [], passed, strict=False):
                value = _literal(text)
                if value is not None:
                    extra[param] = value
        if own is not None:
            params = parameters(own)
            if len(params) - 4 != len(extra) or own.table is None:
                return None  # a base class whose writer needs arguments only subclasses pass
            return _Writer(own, extra, tuple(p for p, _ in params[1:4]))
    return None


def _unit_writer(name: str, decls, defined: set[str], kind: str) -> str | None:
    """`Class::writeTrampolines` (or the stubs writer) that `name` inherits or defines."""
    writer = UNIT_WRITERS[kind]
    return next(
        (
            f"{c.name}::{writer}"
            for c in orc.lineage(decls, name)
            if f"{c.name}::{writer}" in defined
        ),
        None,
    )


def _constants(name: str, decls) -> dict[str, int]:
    out = {}
    for member in CONSTANTS:
        found = orc.constant(decls, name, member)
        value = orc.constant_value(found[1]) if found is not None else None
        if value is not None:
            out[member] = value
    return out


def _image(writes: list[Write]) -> bytes:
    end = max((w.offset + len(w.data) for w in writes), default=0)
    out = bytearray(end)
    for w in writes:
        out[w.offset : w.offset + len(w.data)] = w.data
    return bytes(out)


def _patch_name(via: tuple[str, ...], reads: set[str]) -> str:
    if len(reads) == 1:
        return next(iter(reads))
    if via:
        return via[0].removesuffix("Offset") or via[0]
    return "write"


def _kind(bits: int, values: list[tuple[int, int]]) -> str:
    """The asmgen patch kind that encodes every (address, field) pair, if one does."""
    for kind in KINDS.values():
        if kind.pcrel or kind.bits != bits:
            continue
        try:
            if all(kind.encode(address) == got for address, got in values):
                return kind.name
        except ValueError:
            continue
    return "expression"


def _patches(
    writer: _Writer,
    run: Callable[[int, int], list[Write]],
    table: bytes,
    order: str,
    address_bits: int,
) -> tuple[dict, list[Finding]]:
    """The patch points: each word written after the table, by what sets its bits."""
    fn_name, ctx_name = writer.params[1], writer.params[2]
    base = run(0, 0)
    probes = [(v & ((1 << address_bits) - 1)) for v in PROBES]
    by_fn = [run(v, 0) for v in probes]
    by_ctx = [run(0, v) for v in probes]
    findings: list[Finding] = []
    points: dict[str, dict] = {}
    reads_by_via: dict[tuple[str, ...], set[str]] = {}
    words = []
    for index, write in enumerate(base):
        if write.table:
            continue
        size = min(write.element, len(write.data)) or len(write.data)
        for at in range(0, len(write.data) - size + 1, size):
            offset = write.offset + at

            def word(writes: list[Write], i=index, a=at, s=size) -> int:
                return int.from_bytes(writes[i].data[a : a + s], order)

            masks = {}
            for pname, runs in ((fn_name, by_fn), (ctx_name, by_ctx)):
                mask = 0
                for other in runs:
                    mask |= word(other) ^ word(base)
                if mask:
                    masks[pname] = (mask, [(v, word(r)) for v, r in zip(probes, runs, strict=True)])
            words.append((write, offset, size, word(base), masks))
            reads_by_via.setdefault(write.via, set()).update(masks)
    for write, offset, size, base_word, masks in words:
        if offset + size > len(table):
            findings.append(
                Finding(
                    f"past-end:{offset:#x}",
                    f"line {write.line} writes {write.source} at {offset:#x}-"
                    f"{offset + size - 1:#x}, past the table's end ({len(table):#x} bytes)",
                )
            )
            continue
        name = _patch_name(write.via, reads_by_via[write.via])
        if len(masks) > 1:
            findings.append(
                Finding(f"mixed:{offset:#x}", f"the word at {offset:#x} depends on both addresses")
            )
        fieldmask = 0
        kind, shift, bits = "runtime_word", 0, 0
        if masks:
            fieldmask, values = next(iter(masks.values()))
            shift = (fieldmask & -fieldmask).bit_length() - 1
            bits = fieldmask.bit_length() - shift
            kind = _kind(bits, [(v, (w >> shift) & ((1 << bits) - 1)) for v, w in values])
        in_table = int.from_bytes(table[offset : offset + size], order)
        whole = ((in_table ^ base_word) & ~fieldmask & ((1 << 8 * size) - 1)) != 0
        point = points.setdefault(
            name,
            {
                "offset": offset,
                "size": size,
                "kind": "",
                "constant": ",".join(write.via),
                "fields": [],
            },
        )
        point["fields"].append(
            {
                "offset": offset,
                "size": size,
                "shift": shift,
                "bits": bits,
                "kind": kind,
                "base": base_word & ~fieldmask,
                "whole_word": whole,
            }
        )
    for point in points.values():
        point["fields"].sort(key=lambda f: f["offset"])
        point["offset"] = point["fields"][0]["offset"]
        kinds = [f["kind"] for f in point["fields"] if f["kind"] != "runtime_word"]
        point["kind"] = "+".join(kinds) if kinds else "runtime_word"
    return dict(sorted(points.items(), key=lambda item: item[1]["offset"])), findings


def read_class(
    name: str,
    decls: dict[str, orc.ClassDecl],
    fns,
    cpp: orc.Source,
    conventions: Conventions,
    defined: set[str],
) -> LlvmClass | None:
    """The record of class `name`; None when it has no resolver table of its own
    to run (a base class, or the generic ABI)."""
    writer = _resolver_of(name, decls, fns)
    if writer is None:
        return None
    # A byte-order parameter the forwarder fixes (OrcMips32Be passes true).
    big = writer.extra.get("isBigEndian")
    endian = None if big is None else ("big" if big else "little")
    contract = contract_for(name, conventions, endian)
    spec = contract.spec
    order = spec.endian
    constants = _constants(name, decls)
    pointer_size = constants.get("PointerSize", spec.pointer_size)
    target_name, fn_name, ctx_name = writer.params

    def run(fn_addr: int, ctx_addr: int, target: int = 0) -> list[Write]:
        args = {target_name: target, fn_name: fn_addr, ctx_name: ctx_addr, **writer.extra}
        return run_writer(cpp, writer.fn, args, order, constants)

    base = run(0, 0)
    tables = [w for w in base if w.table]
    if len(tables) != 1 or tables[0].offset != 0:
        raise cpp.error(
            f"{writer.fn.name}: expected one memcpy of {writer.fn.array} to the start of the "
            "working memory",
            writer.fn.node,
        )
    table = tables[0].data
    patches, findings = _patches(writer, run, table, order, 8 * pointer_size)
    size = constants.get("ResolverCodeSize")
    if size is not None and size != len(table):
        findings.append(
            Finding(
                "size:ResolverCodeSize",
                f"ResolverCodeSize is {size:#x}, but {writer.fn.name}'s table holds "
                f"{len(table):#x} bytes",
            )
        )
    arch = ARCHES[spec.arch]
    if pointer_size != spec.pointer_size:
        findings.append(
            Finding(
                "size:PointerSize",
                f"PointerSize is {pointer_size}, but {spec.convention} on {arch.name} has "
                f"{spec.pointer_size}-byte pointers",
            )
        )
    record = {
        "element": writer.fn.element,
        "size": len(table),
        "hex": table.hex(),
        "patches": patches,
        "llvm_class": name,
        "arch": spec.arch,
        "endian": order,
        "syntax": spec.syntax,
        "pointer_size": pointer_size,
        "convention": contract.convention,
        "constants": constants,
    }
    units = {kind: _unit_writer(name, decls, defined, kind) for kind in UNIT_WRITERS}
    return LlvmClass(
        name,
        contract,
        record,
        lambda target, fn_addr, ctx_addr: _image(run(fn_addr, ctx_addr, target)),
        {kind: writer for kind, writer in units.items() if writer},
        findings,
    )


def read_tree(root: Path, conventions: Conventions) -> dict[str, LlvmClass]:
    """Every ABI class of the tree at `root` (an LLVM checkout or a scratch copy)."""
    header, cpp = orc.load(root, orc.HEADER_PATH), orc.load(root, orc.CPP_PATH)
    decls = orc.classes(header)
    fns = orc.resolver_functions(cpp)
    defined = {
        name for writer in UNIT_WRITERS.values() for name in orc.member_functions(cpp, writer, "")
    }
    found = {}
    for name in decls:
        read = read_class(name, decls, fns, cpp, conventions, defined)
        if read is not None:
            found[name] = read
    if not found:
        raise cpp.error("no ABI class with a ResolverCode[] table")
    return found
