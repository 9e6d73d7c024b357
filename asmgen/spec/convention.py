"""Calling conventions: the reviewed facts an ABI spec names (`convention:`).

A convention file (`abi_specs/conventions/<name>.yaml`, documented field by
field in docs/conventions.md) states one calling convention: argument,
callee-saved and return registers, the home area, the stack alignment and red
zone, the FP control state and the varargs rule, each with the document it
comes from.  A spec never restates them: `Spec.call` is the effective contract
computed here from the convention, and `asmgen verify` checks every table
against it, while `asmgen verify`'s compiled harness
(asmgen/verify/compiled/) confirms the facts themselves against code a real
compiler built for the target.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from asmgen.arches import ARCHES
from asmgen.errors import AsmgenError
from asmgen.spec.names import MAX_NAME, OneLine, Text, reason_problem
from asmgen.spec.yaml_lines import freeze, read_text, read_yaml, yaml_files

Hex = Annotated[int, Field(ge=0)]
Size = Annotated[int, Field(ge=0, le=0x10000)]
Align = Annotated[int, Field(gt=0, le=0x1000)]

# The facts every convention file must cite a source for (keys of `cite`).
CITED = (
    "args",
    "callee_saved",
    "returns",
    "stack.align",
    "stack.home_area",
    "stack.red_zone",
    "fp_control",
    "varargs",
)
# Facts a file cites when it states them.
OPTIONAL_CITED = ("stack.back_chain",)

# The caller convention a file describes itself: C, LLVM's `ccc`.  Its other
# `callers` are the conventions LLVM lets a caller use on the same platform.
C_CALLER = "ccc"
# The facts every caller convention must cite (and `wide`, when it has any).
CALLER_CITED = ("args", "callee_saved")
# A caller convention's name: LLVM's IR keyword (`coldcc`, `fastcc`).
_IDENT = re.compile(r"^[a-z][a-z0-9_]*$")

# What a spec may knowingly do differently from its convention (`deviations:`),
# each with the implementation choice that breaks the fact.  A spec that
# breaks one without declaring it is refused (asmgen/spec/contract.py), and
# `asmgen verify` reports every declared one.
DEVIATIONS = {
    "home_area": "the resolver reserves less home area than the convention gives the callee "
    "(resolver.shadow_space)",
    "stack_align": "the resolver leaves the call less aligned than the convention requires "
    "(resolver.frame_align)",
    "int_args": "the resolver does not keep an integer argument register (resolver.saves)",
    "fp_args": "the resolver does not keep an FP argument register (resolver.fp_saves, "
    "resolver.vector_state)",
    "callee_saved": "the resolver uses a callee-saved register without saving it",
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)


class Args(_Model):
    """How arguments travel (the first ones in registers, the rest on the stack)."""

    int_regs: tuple[str, ...] = Field(default=(), alias="int")
    # FP and vector arguments share these registers (a vector register's low part).
    fp_regs: tuple[str, ...] = Field(default=(), alias="fp")
    # The widest C type an FP argument register carries in a prototyped call:
    # a 16-byte generic vector (SysV, AAPCS64), or a double.
    fp_type: Literal["vec128", "double"]
    # Vector arguments in registers of their own, counted apart from `int`
    # and `fp` (vector registers apart from the FP ones); each carries a
    # 16-byte vector.
    vec_regs: tuple[str, ...] = Field(default=(), alias="vec")
    # independent: integer and FP registers are counted separately (SysV,
    # AAPCS64, LP64D); positional: argument i takes int[i] or fp[i]
    # (Microsoft x64, n64); o32: FP registers only for leading FP
    # arguments, integer registers by argument word; save_area: each argument
    # takes the next doublewords of the parameter save area and the GPRs that
    # map them, but an FP or vector argument the next FP or vector register.
    assignment: Literal["independent", "positional", "o32", "save_area"]
    # Offset from sp at the call of the first stack argument (after the home area).
    stack_offset: Size
    stack_slot: Literal[4, 8]

    @property
    def registers(self) -> tuple[str, ...]:
        """Every argument register: integer, FP, then vector."""
        return (*self.int_regs, *self.fp_regs, *self.vec_regs)


class Stack(_Model):
    align: Align  # sp mod align == 0 at a call
    home_area: Size  # bytes at [sp, sp + home_area) at a call that belong to the callee
    red_zone: Size  # bytes below sp a leaf function may use without moving sp
    # Bytes at [sp, sp + link_area) at a call that hold the caller's frame
    # header (a back chain and the callee's link-register save slot, say):
    # the callee saves its return address there, so a caller's frame always
    # has one, and nothing of the caller's own lives in it.
    link_area: Size = 0
    # Where a frame that keeps a back chain holds its caller's sp: an offset
    # from sp into the home area, a word the frame's owner writes and no
    # callee (0 in the ELF ABI that has one).  None: the ABI lays out none.
    back_chain: Size | None = None


class Returns(_Model):
    int_regs: tuple[str, ...] = Field(alias="int")
    fp_regs: tuple[str, ...] = Field(default=(), alias="fp")
    # Where the low word of a two-register integer result goes, by byte order
    # (o32: v0 little-endian, v1 big-endian); default: the first of `int`.
    low_word: dict[Literal["little", "big"], str] = {}


class FpControl(_Model):
    reg: str = Field(alias="register")
    # Bits a callee must preserve (control bits); the others are status bits
    # a callee may change.
    preserved: Hex
    # A valid, non-default setting the compiled harness's caller loads
    # (round toward zero), so a resolver that resets the register shows.
    test_value: Hex


class WideRegisters(_Model):
    """Vector registers a caller convention passes or keeps wider than asmgen
    names them, on a CPU with `feature` (each arch's `Arch.wide_vectors`)."""

    feature: str
    bits: int = Field(gt=0, le=0x1000)
    registers: tuple[str, ...]


class CallerConvention(_Model):
    """A convention a caller may use on the platform (LLVM's `coldcc`,
    `preserve_mostcc`, ...): what a lazily compiled callee may read on entry,
    and what the caller may keep live across the call.  A resolver serves the
    convention when every register of both reaches the callee unchanged."""

    title: OneLine = Field(min_length=1)
    # Registers that may carry a value into the callee: arguments, and what
    # LLVM 19 passes for the parameter attributes (nest, sret, swiftself,
    # swifterror, swiftasync) and a variadic callee's hidden count (al).
    args: tuple[str, ...]
    # Registers the callee preserves, so the caller keeps values live in them.
    callee_saved: tuple[str, ...]
    wide: tuple[WideRegisters, ...] = ()
    # fact (args, callee_saved, wide) -> "source-id: section"
    cite: dict[str, str]
    _name: str = PrivateAttr(default="")

    @property
    def name(self) -> str:
        return self._name

    @property
    def kept(self) -> tuple[str, ...]:
        """Every register whose value must reach the callee: args, then callee-saved."""
        return tuple(dict.fromkeys((*self.args, *self.callee_saved)))

    def widths(self, features: set[str] | frozenset[str]) -> dict[str, int]:
        """Register -> bits it is passed or kept at, on a CPU with `features`
        (only the registers wider than asmgen names them)."""
        found: dict[str, int] = {}
        for entry in self.wide:
            if entry.feature in features:
                for name in entry.registers:
                    found[name] = max(found.get(name, 0), entry.bits)
        return found


class Convention(_Model):
    convention: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=MAX_NAME)
    title: OneLine = Field(min_length=1)
    arch: str
    # LLVM's target triple for the platform, and the subtarget features the
    # `callers` facts assume (llc-19 confirms them with both).
    llvm_triple: str | None = None
    llvm_mattr: str | None = None
    sources: dict[str, str]
    args: Args
    callee_saved: tuple[str, ...]
    returns: Returns
    stack: Stack
    fp_control: tuple[FpControl, ...] = ()
    varargs: Text = Field(min_length=1)
    # field -> "source-id: section"
    cite: dict[str, str]
    # Caller conventions by LLVM's IR keyword; `ccc` is this file's own.  A
    # file without the section has only `ccc`, made of its args and callee_saved.
    callers: dict[str, CallerConvention] = {}
    _path: Path = PrivateAttr(default=Path("<convention>"))
    _callers: dict[str, CallerConvention] = PrivateAttr(default_factory=dict)

    @field_validator("llvm_triple", "llvm_mattr")
    @classmethod
    def _llvm_word(cls, word: str | None) -> str | None:
        # Passed to llc-19 as one command-line argument each.
        if word is not None and not re.fullmatch(r"[A-Za-z0-9_.,+-]{1,64}", word):
            raise ValueError(f"{word[:40]!r} is not an LLVM triple or feature list")
        return word

    @property
    def path(self) -> Path:
        return self._path

    @property
    def caller_conventions(self) -> dict[str, CallerConvention]:
        """Every caller convention of the platform, `ccc` first."""
        return self._callers

    def result_regs(self, endian: str, pointer_size: int) -> tuple[str, ...]:
        """The registers of the re-entry function's 64-bit result, low word first."""
        words = max(1, 8 // pointer_size)
        regs = self.returns.int_regs[:words]
        low = self.returns.low_word.get(endian)  # type: ignore[call-overload]
        if low is not None:
            regs = (low, *(r for r in regs if r != low))
        return regs


def _line(where: dict[tuple, int], loc: tuple) -> int:
    return next((where[loc[:n]] for n in range(len(loc), -1, -1) if loc[:n] in where), 1)


# pydantic reports aliased fields by their alias, which is the file's key.
def parse_convention(text: str, path: Path) -> Convention:
    data, where = read_yaml(text, path, "convention")
    try:
        conv = Convention.model_validate(freeze(data))
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        field = ".".join(str(p) for p in loc) or "convention"
        message = err["msg"].removeprefix("Value error, ")
        raise AsmgenError(f"{field}: {message}", path, _line(where, loc)) from None
    if conv.convention != path.stem:
        raise AsmgenError(
            f"convention: {conv.convention!r} must match the file name {path.stem!r}",
            path,
            where.get(("convention",)),
        )
    _check(conv, where, path)
    conv._callers = _check_callers(conv, where, path)
    conv._path = path
    return conv


# The register classes each list may name.
_ROLES = {
    ("args", "int"): ("gpr",),
    ("args", "fp"): ("fpr", "vec"),
    ("args", "vec"): ("vec",),
    ("callee_saved",): ("gpr", "fpr", "vec"),
    ("returns", "int"): ("gpr",),
    ("returns", "fp"): ("fpr", "vec"),
}


def _check(conv: Convention, where: dict[tuple, int], path: Path) -> None:
    arch = ARCHES.get(conv.arch)
    if arch is None:
        raise AsmgenError(
            f"arch: unknown arch {conv.arch!r}; known: {', '.join(sorted(ARCHES))}",
            path,
            where.get(("arch",)),
        )
    lists = {
        ("args", "int"): conv.args.int_regs,
        ("args", "fp"): conv.args.fp_regs,
        ("args", "vec"): conv.args.vec_regs,
        ("callee_saved",): conv.callee_saved,
        ("returns", "int"): conv.returns.int_regs,
        ("returns", "fp"): conv.returns.fp_regs,
    }
    for key, names in lists.items():
        for i, name in enumerate(names):
            line = where.get((*key, i), where.get(key))
            field = f"{'.'.join(key)}[{i}]"
            reg = arch.register(name)
            if reg is None:
                raise AsmgenError(f"{field}: {name!r} is not a register of {arch.name}", path, line)
            if reg.cls not in _ROLES[key]:
                raise AsmgenError(
                    f"{field}: {name} is a {reg.cls} register; this list takes "
                    f"{' or '.join(_ROLES[key])}",
                    path,
                    line,
                )
            if key != ("callee_saved",):
                # Registers that cannot carry a value from caller to callee.
                if name == arch.stack_pointer:
                    raise AsmgenError(f"{field}: {name} is the stack pointer", path, line)
                if name in arch.reserved:
                    raise AsmgenError(
                        f"{field}: {name} is reserved on {arch.name}: no code may write it",
                        path,
                        line,
                    )
                if name == arch.call_link:
                    raise AsmgenError(
                        f"{field}: {name} is where a call leaves its return address; it "
                        "cannot carry a value",
                        path,
                        line,
                    )
            if names.count(name) > 1:
                raise AsmgenError(f"{'.'.join(key)}: register {name!r} listed twice", path, line)
    for i, name in enumerate(conv.returns.int_regs):
        if name in conv.callee_saved:
            raise AsmgenError(
                f"returns.int[{i}]: {name} carries a result, so it cannot be callee-saved",
                path,
                where.get(("returns", "int", i)),
            )
    for endian, name in conv.returns.low_word.items():
        if name not in conv.returns.int_regs:
            raise AsmgenError(
                f"returns.low_word.{endian}: {name!r} is not one of returns.int",
                path,
                where.get(("returns", "low_word", endian)),
            )
    for i, control in enumerate(conv.fp_control):
        reg = arch.register(control.reg)
        if reg is None or reg.cls != "ctl":
            raise AsmgenError(
                f"fp_control[{i}].register: {control.reg!r} is not an FP control "
                f"register of {arch.name}",
                path,
                where.get(("fp_control", i, "register")),
            )
    for key in ("align", "home_area", "link_area"):
        value = getattr(conv.stack, key)
        if key == "align" and value & (value - 1):
            raise AsmgenError(
                f"stack.align: {value:#x} is not a power of two", path, where.get(("stack", key))
            )
        if key != "align" and value % arch.pointer_size:
            raise AsmgenError(
                f"stack.{key}: {value:#x} is not a multiple of the pointer size "
                f"({arch.pointer_size})",
                path,
                where.get(("stack", key)),
            )
    _check_cited_text(conv, where, path)
    chain = conv.stack.back_chain
    if chain is not None and chain + arch.pointer_size > conv.stack.home_area:
        raise AsmgenError(
            f"stack.back_chain: {chain:#x} is not a word of the home "
            f"area [0, {conv.stack.home_area:#x})",
            path,
            where.get(("stack", "back_chain")),
        )
    # Optional facts need a source once a file states them.
    stated = (
        *(("stack.link_area",) if conv.stack.link_area else ()),
        *(("stack.back_chain",) if conv.stack.back_chain is not None else ()),
    )
    required = (*CITED, *stated)
    allowed = (*required, *(key for key in OPTIONAL_CITED if key not in required))
    for key in conv.cite:
        if key not in allowed:
            raise AsmgenError(
                f"cite.{key}: not a cited fact; cite one of {', '.join(allowed)}",
                path,
                where.get(("cite", key)),
            )
        source = conv.cite[key].split(":", 1)[0]
        if source not in conv.sources:
            raise AsmgenError(
                f"cite.{key}: source {source!r} is not in sources",
                path,
                where.get(("cite", key)),
            )
    missing = [key for key in required if key not in conv.cite]
    if missing:
        raise AsmgenError(
            f"cite: no source for {', '.join(missing)}; every fact names where it comes from",
            path,
            where.get(("cite",), 1),
        )


def _check_cited_text(conv: Convention, where: dict[tuple, int], path: Path) -> None:
    """Sources and citations are text that reaches comments and Markdown."""
    texts = {
        **{("sources", key): text for key, text in conv.sources.items()},
        **{("cite", key): text for key, text in conv.cite.items()},
        **{
            ("callers", name, "cite", key): text
            for name, caller in conv.callers.items()
            for key, text in caller.cite.items()
        },
    }
    for at, text in texts.items():
        if (problem := reason_problem(text)) is not None:
            raise AsmgenError(f"{'.'.join(at)}: {problem}", path, where.get(at))


def _own_caller(conv: Convention) -> CallerConvention:
    """`ccc` of a file without a `callers` section: its own facts, as cited."""
    return CallerConvention(
        title=conv.title,
        args=conv.args.registers,
        callee_saved=conv.callee_saved,
        cite={key: conv.cite[key] for key in CALLER_CITED},
    )


def _check_callers(
    conv: Convention, where: dict[tuple, int], path: Path
) -> dict[str, CallerConvention]:
    arch = ARCHES[conv.arch]
    callers = dict(conv.callers) or {C_CALLER: _own_caller(conv)}
    if C_CALLER not in callers:
        raise AsmgenError(
            f"callers: no {C_CALLER}; the file's own convention is a caller convention too",
            path,
            where.get(("callers",)),
        )
    wide_bits = dict(arch.wide_vectors)
    for name, caller in callers.items():
        at = ("callers", name)
        if not _IDENT.match(name) or len(name) > MAX_NAME:
            raise AsmgenError(
                f"callers.{name[:MAX_NAME]}: not an LLVM calling-convention keyword",
                path,
                where.get(at),
            )
        lists = {"args": caller.args, "callee_saved": caller.callee_saved}
        for key, names in lists.items():
            for i, reg_name in enumerate(names):
                line = where.get((*at, key, i), where.get((*at, key)))
                field = f"callers.{name}.{key}[{i}]"
                reg = arch.register(reg_name)
                if reg is None or reg.cls == "ctl":
                    raise AsmgenError(
                        f"{field}: {reg_name!r} is not a register of {arch.name}", path, line
                    )
                if reg_name == arch.stack_pointer and key == "args":
                    raise AsmgenError(f"{field}: {reg_name} is the stack pointer", path, line)
                if names.count(reg_name) > 1:
                    raise AsmgenError(
                        f"callers.{name}.{key}: register {reg_name!r} listed twice", path, line
                    )
        for i, entry in enumerate(caller.wide):
            line = where.get((*at, "wide", i), where.get((*at, "wide")))
            field = f"callers.{name}.wide[{i}]"
            if entry.feature not in wide_bits:
                known = ", ".join(wide_bits) or "none"
                raise AsmgenError(
                    f"{field}.feature: {entry.feature!r} widens no register of {arch.name} "
                    f"(known: {known})",
                    path,
                    line,
                )
            for reg_name in entry.registers:
                reg = arch.register(reg_name)
                if reg is None or reg.cls != "vec" or reg_name not in caller.kept:
                    raise AsmgenError(
                        f"{field}.registers: {reg_name!r} is not a vector register of "
                        f"callers.{name}.args or callee_saved",
                        path,
                        line,
                    )
                if not reg.bits < entry.bits <= wide_bits[entry.feature]:
                    raise AsmgenError(
                        f"{field}.bits: {entry.bits} is not between {reg_name}'s {reg.bits} "
                        f"and the {wide_bits[entry.feature]} bits {entry.feature} gives",
                        path,
                        line,
                    )
        needed = [*CALLER_CITED, *(("wide",) if caller.wide else ())]
        for key, text in caller.cite.items():
            if key not in needed:
                raise AsmgenError(
                    f"callers.{name}.cite.{key}: not a cited fact; cite {', '.join(needed)}",
                    path,
                    where.get((*at, "cite", key)),
                )
            if text.split(":", 1)[0] not in conv.sources:
                raise AsmgenError(
                    f"callers.{name}.cite.{key}: source {text.split(':', 1)[0]!r} is not in "
                    "sources",
                    path,
                    where.get((*at, "cite", key)),
                )
        missing = [key for key in needed if key not in caller.cite]
        if missing:
            raise AsmgenError(
                f"callers.{name}.cite: no source for {', '.join(missing)}",
                path,
                where.get((*at, "cite"), where.get(at)),
            )
        caller._name = name
    own = callers[C_CALLER]
    at = ("callers", C_CALLER)
    if set(own.callee_saved) != set(conv.callee_saved):
        raise AsmgenError(
            f"callers.{C_CALLER}.callee_saved: must be the file's callee_saved",
            path,
            where.get((*at, "callee_saved"), where.get(at)),
        )
    lost = [r for r in conv.args.registers if r not in own.args]
    if lost:
        raise AsmgenError(
            f"callers.{C_CALLER}.args: lacks {', '.join(lost)}, argument register(s) of the file",
            path,
            where.get((*at, "args"), where.get(at)),
        )
    return {C_CALLER: own, **{k: v for k, v in callers.items() if k != C_CALLER}}


@cache
def _load(path: Path, mtime_ns: int) -> Convention:
    return parse_convention(read_text(path, "convention"), path)


def conventions_dirs(specs_dir: Path) -> tuple[Path, ...]:
    """Where a spec's convention is looked up: next to the spec first, then the
    conventions asmgen ships."""
    from asmgen.resources import SPECS_DIR

    dirs = [specs_dir / "conventions", SPECS_DIR / "conventions"]
    return tuple(dict.fromkeys(d.resolve() for d in dirs))


def find_convention(name: str, specs_dir: Path) -> Convention | None:
    """The convention `name` for a spec in `specs_dir`, or None if no file has it."""
    for folder in conventions_dirs(specs_dir):
        path = folder / f"{name}.yaml"
        try:
            stat = path.stat()
        except FileNotFoundError:
            if path.is_symlink():
                raise AsmgenError("cannot read convention: a dangling symlink", path) from None
            continue
        except OSError as exc:
            raise AsmgenError(f"cannot read convention: {exc.strerror}", path) from None
        return _load(path, stat.st_mtime_ns)
    return None


def load_convention(path: Path) -> Convention:
    try:
        stat = path.stat()
    except OSError as exc:
        raise AsmgenError(f"cannot read convention: {exc.strerror}", path) from None
    return _load(path.resolve(), stat.st_mtime_ns)


def all_conventions(folder: Path) -> list[Convention]:
    return [load_convention(p) for p in yaml_files(folder)]
