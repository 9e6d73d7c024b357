"""`asmgen patch`: a unified diff that puts generated tables into LLVM's ORC sources.

For an ABI whose class LLVM has, the patch replaces in `writeResolverCode`
the `ResolverCode[]` table and the offset constants, and in the header the
class's size constants (ResolverCodeSize, PointerSize, TrampolineSize,
StubSize), each only where its value differs; a changed resolver also gets a
`static_assert` tying the table to `ResolverCodeSize`, after the last offset
constant and the comment that ends its line.  Offset constants are matched to
patch points by meaning (orc_source), so each release's spelling is kept:
LLVM 19.x calls one landing-move offset `Offsett`, main
`MoveLandingAddrOffset`.

LLVM's own `writeTrampolines`/`writeIndirectStubsBlock` bodies are kept: they
write what the generated units write (tests/test_llvm19_oracle.py compares
LLVM 19's compiled writers; the only differences are padding bytes).  What can
be stale is a size constant, as a StubSize of 8 for 16-byte stubs, and
that is replaced.  StubToPointerMaxDisplacement is replaced where LLVM's bound
admits stubs whose pointer is out of the instruction's reach (the
`1U << 27` of a +-1 MiB literal load), written as LLVM writes it, a shift
expression, with a comment on the limiting field; a bound below the reach is
only conservative and is kept.

An ABI LLVM lacks gets a class declaration with all its constants and complete
`writeResolverCode`, `writeTrampolines` and `writeIndirectStubsBlock`
definitions (the unit writers rendered by emit_units, as in the generated
header), declared with the export macros LLVM's own classes carry
(LLVM_CLASS_ABI or LLVM_ABI), and the .cpp gets the file-static helpers they
call, once.  When the new class is the one its arch record names for
LLVM's factory functions (`Arch.orc_factory`), those functions get the arch's
cases where they lack them (orc_factories).  Trees of the JITTargetAddress
releases (LLVM 16 and older) are refused.  Every other byte is kept, and
only the touched lines go through clang-format, as `git clang-format` would.
Nothing is written unless every ABI succeeds.
"""

from __future__ import annotations

import difflib
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from asmgen.build.patchkinds import ADDRESS_PARAMS
from asmgen.build.pipeline import build_all
from asmgen.build.table import Table
from asmgen.build.unitruntime import RESOLVER_PTR
from asmgen.emit import units as emit_units
from asmgen.emit.atomic import write_if_changed
from asmgen.emit.clangformat import clang_format
from asmgen.emit.cpp_fields import resolver_field_lines
from asmgen.emit.cpp_header import comment_lines
from asmgen.emit.cpp_rows import element_values, resolver_rows
from asmgen.errors import AsmgenError
from asmgen.patch import orc_factories
from asmgen.patch import orc_source as orc
from asmgen.spec.files import select, spec_files
from asmgen.spec.serving import not_served, register_ranges, serving_lines

INDENT = "  "
FORMAT_OFF, FORMAT_ON = "// clang-format off", "// clang-format on"


@dataclass(frozen=True)
class Edit:
    start: int
    end: int
    text: str
    owner: str  # the ABI that asked for it, for conflict messages
    order: int = 0  # among insertions at one place


def _literal(old: str, value: int) -> str:
    """`value` in the base of the literal it replaces (hex in its digit case, or decimal)."""
    if not old.lower().startswith("0x"):
        return str(value)
    text = f"{value:#x}"
    return "0x" + text[2:].upper() if re.search(r"[A-F]", old) else text


def _table_text(table: Table, column: int) -> str:
    """The table declaration at `column`; fenced from clang-format only if it would
    reflow the rows (a long instruction passes the column limit)."""
    pad = " " * column
    rows = "\n".join(resolver_rows(table, column + 4, split_words=True))
    text = f"const {table.spec.arch_info.element} {orc.TABLE}[] = {{\n{rows}\n{pad}}};"
    probe = f"void f() {{\n{INDENT}{_indent(text, column, len(INDENT))}\n}}\n"
    if clang_format(probe, "probe.cpp") == probe:
        return text
    return f"{FORMAT_OFF}\n{pad}{text}\n{pad}{FORMAT_ON}"


def _indent(text: str, old: int, new: int) -> str:
    return text.replace("\n" + " " * old, "\n" + " " * new)


def _size_assert(pad: str) -> str:
    return f"{pad}static_assert(sizeof({orc.TABLE}) == ResolverCodeSize);"


def _resolver_facts(table: Table) -> dict[str, int]:
    """Class constants a resolver change can make stale."""
    return {"PointerSize": table.spec.pointer_size, "ResolverCodeSize": len(table.code)}


# Unit constants replaced in an existing class (see the module docstring).
UNIT_FACTS = ("TrampolineSize", "StubSize")


def _unit_facts(table: Table) -> dict[str, int]:
    constants = emit_units.unit_constants(table)
    return {name: constants[name] for name in UNIT_FACTS if name in constants}


def _class_facts(table: Table) -> dict[str, int]:
    """All constants of a new class, in LLVM's order."""
    return emit_units.unit_constants(table) | {"ResolverCodeSize": len(table.code)}


def _check_era(header: orc.Source, classes: dict[str, orc.ClassDecl]) -> None:
    """asmgen writes ExecutorAddr writers (LLVM 17 and later); LLVM 16 and
    older pass JITTargetAddress, and their trees are refused, not half-patched."""
    for decl in classes.values():
        if any("JITTargetAddress" in param for param in decl.resolver_params):
            raise header.error(
                f"{decl.name}::{orc.RESOLVER_FN} takes JITTargetAddress (LLVM 16 or "
                "older); asmgen patch supports the ExecutorAddr releases, LLVM 17 and later",
                decl.node,
            )


class Plan:
    """Edits for the header and the .cpp, collected for every ABI before any is applied."""

    def __init__(self, llvm_root: Path) -> None:
        self.header = orc.load(llvm_root, orc.HEADER_PATH)
        self.cpp = orc.load(llvm_root, orc.CPP_PATH)
        self.classes = orc.classes(self.header)
        _check_era(self.header, self.classes)
        self.functions = orc.resolver_functions(self.cpp)
        self.unit_writers = {
            writer: orc.member_functions(self.cpp, writer, array)
            for writer, array in orc.UNIT_TABLES.items()
        }
        self.edits: dict[str, list[Edit]] = {self.header.rel: [], self.cpp.rel: []}
        self.llvm_root = llvm_root
        self.factory_sources: dict[str, orc.Source] = {}  # read when a class needs them
        self.new_count = 0
        self.helpers: dict[str, str] = {}  # helper name -> the ABI that first needs it

    def add(self, src: orc.Source, edit: Edit) -> None:
        for other in self.edits[src.rel]:
            same_place = (other.start, other.end) == (edit.start, edit.end)
            if same_place and other.text == edit.text:
                return  # two specs of one LLVM class (two byte orders) agree
            insertions = same_place and edit.start == edit.end  # kept in `order`
            overlap = edit.start < other.end and other.start < edit.end
            if (same_place or overlap) and not insertions:
                raise src.error(
                    f"{edit.owner} and {other.owner} both change "
                    f"`{src.data[edit.start : edit.end].decode()[:60]}`, differently"
                )
        self.edits[src.rel].append(edit)

    # -- an ABI LLVM already has ------------------------------------------------

    def update(self, table: Table) -> None:
        name = table.spec.class_name
        fn = self._function(name)
        abi = table.spec.abi
        changed = False
        if fn.table is None:
            raise self.cpp.error(
                f"{fn.name}: expected a `const {table.spec.arch_info.element} "
                f"{orc.TABLE}[] = {{...}};` table",
                fn.node,
            )
        values = orc.table_values(self.cpp, fn)
        if values != element_values(table, table.code) or fn.element != (
            table.spec.arch_info.element
        ):
            start, end = _with_fences(self.cpp, fn.table)
            text = _table_text(table, fn.table.start_point.column)
            self.add(self.cpp, Edit(start, end, text, abi))
            changed = True
        changed |= self._offsets(table, fn)
        changed |= self._class_facts(table, _resolver_facts(table))
        if changed:
            self._size_assert(table, fn)
        self._class_facts(table, _unit_facts(table))
        self._reach(table)
        self._own_unit_writers(table)
        self.factory_cases(table)

    def _reach(self, table: Table) -> None:
        """StubToPointerMaxDisplacement, where LLVM's bound lets a stub be
        written whose pointer it cannot reach; a bound below the true reach is
        only conservative and kept."""
        if table.units is None:
            return
        name, member = table.spec.class_name, "StubToPointerMaxDisplacement"
        found = orc.constant(self.classes, name, member)
        if found is None:
            raise self.header.error(
                f"expected `static constexpr unsigned {member} = ...;` in class "
                f"{name} or one of its bases",
                self.classes[name].node,
            )
        node = found[1]
        value = orc.constant_value(node)
        if value is None:
            raise self.header.error(
                f"{member}: expected an integer constant expression, "
                f"found `{self.header.text(node)}`",
                node,
            )
        if value <= table.units.stub_to_pointer_max_displacement:
            return
        comment, expression = _reach_text(table.units)
        abi = table.spec.abi
        self.add(self.header, Edit(node.start_byte, node.end_byte, expression, abi))
        if comment:
            declaration = node.parent
            line = declaration.start_byte - declaration.start_point.column
            text = " " * declaration.start_point.column + comment + "\n"
            self.add(self.header, Edit(line, line, text, abi))

    def _own_unit_writers(self, table: Table) -> None:
        """Writers an earlier patch added (they hold a `Trampoline[]`/`Stub[]`
        array; LLVM's do not) are regenerated where they differ; LLVM's are kept."""
        abi, name = table.spec.abi, table.spec.class_name
        for writer, text in emit_units.cpp_definitions(table, emit_units.LLVM, note=True).items():
            fn = self.unit_writers[writer].get(f"{name}::{writer}")
            if fn is None or fn.table is None:
                continue
            for helper in emit_units.helpers_used(table):
                self.helpers.setdefault(helper, abi)
            text = _formatted(text)
            if self.cpp.text(fn.node) != text:
                self.add(self.cpp, Edit(fn.node.start_byte, fn.node.end_byte, text, abi))

    def _function(self, name: str) -> orc.ResolverFn:
        fn = self.functions.get(f"{name}::{orc.RESOLVER_FN}")
        forward = self.classes[name].forwards_to
        if fn is None and forward:
            fn = self.functions.get(f"{forward}::{orc.RESOLVER_FN}")
        if fn is None:
            target = forward or name
            raise self.cpp.error(
                f"expected a definition `void {target}::{orc.RESOLVER_FN}(...)` "
                f"(class {name} is declared in {self.header.rel}); renamed upstream?"
            )
        return fn

    def _offsets(self, table: Table, fn: orc.ResolverFn) -> bool:
        changed = False
        for name, const in _offset_constants(self.cpp, table, fn).items():
            node = fn.offsets[const]
            offset = next(p.offset for p in table.patches if p.name == name)
            if orc.number(node) != offset:
                text = _literal(self.cpp.text(node), offset)
                self.add(self.cpp, Edit(node.start_byte, node.end_byte, text, table.spec.abi))
                changed = True
        return changed

    def _class_facts(self, table: Table, facts: dict[str, int]) -> bool:
        changed = False
        for member, value in facts.items():
            found = orc.constant(self.classes, table.spec.class_name, member)
            if found is None:
                raise self.header.error(
                    f"expected `static constexpr unsigned {member} = ...;` in class "
                    f"{table.spec.class_name} or one of its bases",
                    self.classes[table.spec.class_name].node,
                )
            _, node = found
            if node.type != "number_literal":
                raise self.header.error(
                    f"{member}: expected an integer literal, found `{self.header.text(node)}`",
                    node,
                )
            if orc.number(node) != value:
                text = _literal(self.header.text(node), value)
                self.add(self.header, Edit(node.start_byte, node.end_byte, text, table.spec.abi))
                changed = True
        return changed

    def _size_assert(self, table: Table, fn: orc.ResolverFn) -> None:
        """Keep (or add) `static_assert(sizeof(ResolverCode) == ResolverCodeSize)`."""
        for node in fn.size_asserts:
            condition = node.child_by_field_name("condition")
            right = condition.child_by_field_name("right") if condition else None
            if right is not None and right.type == "number_literal":
                text = _literal(self.cpp.text(right), len(table.code))
                self.add(self.cpp, Edit(right.start_byte, right.end_byte, text, table.spec.abi))
        if not fn.size_asserts:
            after = _with_trailing_comment(fn.last_offset or fn.table)
            pad = " " * fn.table.start_point.column
            text = "\n\n" + _size_assert(pad)
            self.add(self.cpp, Edit(after.end_byte, after.end_byte, text, table.spec.abi))

    def factory_cases(self, table: Table) -> None:
        """The cases of LLVM's factory functions for the table's arch, where
        they are missing and the table is the class its arch record names."""
        factory = table.spec.arch_info.orc_factory
        if factory is None or factory.llvm_class != table.spec.class_name:
            return
        for fn in orc_factories.FACTORIES:
            src = self.factory_sources.get(fn.path)
            if src is None:
                src = self.factory_sources[fn.path] = orc.load(self.llvm_root, fn.path)
                self.edits[src.rel] = []
            at, text = orc_factories.case_text(src, fn.name, factory, set(self.classes))
            if text:
                self.add(src, Edit(at, at, text, table.spec.abi))

    # -- an ABI LLVM lacks ------------------------------------------------------

    def add_class(self, table: Table) -> None:
        header_at = self.header.namespace_body().children[-2].end_byte
        cpp_at = self.cpp.namespace_body().children[-2].end_byte
        self.new_count += 1
        abi = table.spec.abi
        header_text = "\n\n" + _class_text(table, *self._export_macros())
        self.add(self.header, Edit(header_at, header_at, header_text, abi, self.new_count))
        writers = emit_units.cpp_definitions(table, emit_units.LLVM, note=True).values()
        cpp_text = "".join(
            "\n\n" + text for text in [_function_text(table), *map(_formatted, writers)]
        )
        self.add(self.cpp, Edit(cpp_at, cpp_at, cpp_text, abi, self.new_count))
        for name in emit_units.helpers_used(table):
            self.helpers.setdefault(name, abi)
        self.factory_cases(table)

    def _export_macros(self) -> tuple[str, str]:
        """The export macros LLVM's own ABI classes carry (LLVM_CLASS_ABI on the
        class in some releases, LLVM_ABI on the member functions in others)."""
        for decl in self.classes.values():
            if decl.resolver_params and (decl.class_macro or decl.member_macro):
                return decl.class_macro, decl.member_macro
        return "", ""

    def add_helpers(self) -> None:
        """The file-static helpers the new unit writers call: added before the
        first new class, or brought up to date where an earlier patch put them."""
        if not self.helpers:
            return
        found = orc.free_functions(self.cpp, set(self.helpers))
        at = self.cpp.namespace_body().children[-2].end_byte
        for name, abi in self.helpers.items():
            doc, code = _helper_text(name)
            node = found.get(name)
            if node is None:
                self.add(self.cpp, Edit(at, at, f"\n\n{doc}{code}", abi, 0))
            elif self.cpp.text(node) != code:
                self.add(self.cpp, Edit(node.start_byte, node.end_byte, code, abi))

    # -- result -----------------------------------------------------------------

    def patched(self, src: orc.Source) -> str:
        """The file with its edits applied and the touched lines clang-formatted."""
        edits = sorted(self.edits[src.rel], key=lambda e: (e.start, e.order))
        if not edits:
            return src.data.decode()
        out, spans, pos = bytearray(), [], 0
        for edit in edits:
            out += src.data[pos : edit.start]
            begin = len(out)
            out += edit.text.encode()
            spans.append((begin, len(out)))
            pos = edit.end
        out += src.data[pos:]
        lines = [
            (out.count(b"\n", 0, begin) + 1, out.count(b"\n", 0, max(begin, end - 1)) + 1)
            for begin, end in spans
        ]
        return clang_format(out.decode(), Path(src.rel).name, lines)


def _offset_constants(cpp: orc.Source, table: Table, fn: orc.ResolverFn) -> dict[str, str]:
    """Patch point -> the offset constant that holds its offset, matched by
    meaning: the address parameter written at the constant, else the name
    `<Patch>Offset`, else the one constant and the one patch point left (LLVM
    19 spells one landing move's `Offsett`), else the offset's value."""
    wanted = [patch.name for patch in table.patches]
    offsets = {patch.name: patch.offset for patch in table.patches}
    pairs: dict[str, str] = {}

    def pair(name: str, const: str) -> None:
        if name in wanted and name not in pairs and const not in pairs.values():
            pairs[name] = const

    for const, positions in fn.offset_params.items():
        written = {ADDRESS_PARAMS[i - 2] for i in positions if 2 <= i < 2 + len(ADDRESS_PARAMS)}
        if len(written) == 1:
            pair(written.pop(), const)
    for const in fn.offsets:
        pair(const.removesuffix("Offset"), const)
    left = [const for const in fn.offsets if const not in pairs.values()]
    missing = [name for name in wanted if name not in pairs]
    if len(left) == 1 and len(missing) == 1:
        pair(missing[0], left[0])
    for const in left:
        same = [n for n in missing if offsets[n] == orc.number(fn.offsets[const])]
        if len(same) == 1:
            pair(same[0], const)
    left = [const for const in fn.offsets if const not in pairs.values()]
    missing = [name for name in wanted if name not in pairs]
    if left:
        raise cpp.error(
            f"{fn.name} writes at ResolverWorkingMem + {left[0]}, but no patch point of spec "
            f"{table.spec.abi} is left for it (its patch points: {', '.join(wanted)})",
            fn.offsets[left[0]],
        )
    if missing:
        name = missing[0]
        raise cpp.error(
            f"{fn.name}: expected `const unsigned {name}Offset = ...;` (any name) written "
            f"as ResolverWorkingMem + {name}Offset, for patch point {name!r} of spec "
            f"{table.spec.abi}",
            fn.node,
        )
    return pairs


def _formatted(text: str) -> str:
    """A namespace-scope definition as clang-format leaves it in the file, so a
    later run can compare it with what the file holds."""
    return clang_format(text + "\n", "definition.cpp").rstrip("\n")


def _helper_text(name: str) -> tuple[str, str]:
    """A helper's doc comment and its definition, formatted."""
    text = _formatted(emit_units.cpp_helpers(emit_units.LLVM)[name])
    lines = text.split("\n")
    doc = [line for line in lines if line.startswith("///")]
    return "".join(f"{line}\n" for line in doc), "\n".join(lines[len(doc) :])


def _with_fences(src: orc.Source, node) -> tuple[int, int]:
    """`node`'s byte range, widened over clang-format fences an earlier patch put around it."""
    before, after = node.prev_sibling, node.next_sibling
    start, end = node.start_byte, node.end_byte
    if before is not None and before.type == "comment" and src.text(before) == FORMAT_OFF:
        start = before.start_byte
    if after is not None and after.type == "comment" and src.text(after) == FORMAT_ON:
        end = after.end_byte
    return start, end


def _with_trailing_comment(node):
    """`node`, or the comment that ends its line (`... = 0x6c;  // ctx lui`)."""
    after = node.next_sibling
    if (
        after is not None
        and after.type == "comment"
        and after.start_point.row == node.end_point.row
    ):
        return after
    return node


def _reach_text(units) -> tuple[str | None, str]:
    """StubToPointerMaxDisplacement as LLVM writes such constants (a shift
    expression), and a comment naming the field that limits it."""
    reach = units.stub_to_pointer_max_displacement
    for field in units.stub.unit.fields:
        if field.anchor is None:
            continue
        up, down = field.high + field.anchor, -(field.low + field.anchor)
        if min(up, down) != reach:
            continue
        bits = reach.bit_length()
        if bits >= 32:  # `1U << 32` would overflow
            break
        if reach == 1 << (bits - 1):
            expression = f"1U << {bits - 1}"
        else:
            rest = (1 << bits) - reach
            expression = f"(1U << {bits}) - {rest if rest < 10 else hex(rest)}"
        return f"// Stub reach: -{down:#x}..+{up:#x} ({field.limit}).", expression
    return None, f"{reach:#x}"


def _signature(name: str) -> str:
    params = ", ".join(
        ["char *ResolverWorkingMem", "ExecutorAddr ResolverTargetAddress"]
        + [f"ExecutorAddr {p}" for p in ADDRESS_PARAMS]
    )
    return f"void {name}({params})"


def _class_text(table: Table, class_macro: str, member_macro: str) -> str:
    spec = table.spec
    what = f"{spec.abi}: {spec.description}" if spec.description else spec.abi
    constants = "".join(
        _constant_text(table, member, value) for member, value in _class_facts(table).items()
    )
    units = ""
    if table.units is not None:
        signatures = emit_units.signatures(emit_units.LLVM)
        slot = table.units.trampoline.unit.target == RESOLVER_PTR
        how = (
            f"{INDENT}/// through the resolver's address, stored after the last one; the\n"
            f"{INDENT}/// memory holds NumTrampolines trampolines and one pointer.\n"
            if slot
            else f"{INDENT}/// directly.\n"
        )
        units = (
            f"\n{INDENT}/// Writes NumTrampolines trampolines, as if at\n"
            f"{INDENT}/// TrampolineBlockTargetAddress, each calling ResolverAddr\n"
            f"{how}"
            f"{INDENT}{member_macro}static {signatures[emit_units.TRAMPOLINES_FN]};\n\n"
            f"{INDENT}/// Writes NumStubs stubs, as if at StubsBlockTargetAddress; stub I\n"
            f"{INDENT}/// jumps to the address in pointer I of PointersBlockTargetAddress.\n"
            f"{INDENT}{member_macro}static {signatures[emit_units.STUBS_FN]};\n"
        )
    serving = "".join(f"/// {line}\n" for line in comment_lines(serving_lines(spec), 77))
    return (
        f"/// {what}\n"
        f"{serving}"
        f"class {class_macro}{spec.class_name} {{\n"
        "public:\n"
        f"{constants}\n"
        f"{INDENT}/// Writes the resolver into ResolverWorkingMem. It calls ReentryFnAddr\n"
        f"{INDENT}/// with ReentryCtxAddr and the address of the trampoline that was taken.\n"
        f"{INDENT}{member_macro}static {_signature(orc.RESOLVER_FN)};\n"
        f"{units}"
        "};"
    )


def _constant_text(table: Table, member: str, value: int) -> str:
    """A class constant as LLVM writes it: code sizes in hex, the reach as an
    expression with its reason, the other sizes in decimal."""
    comment, text = None, f"{value:#x}" if member == "ResolverCodeSize" else f"{value}"
    if member == "StubToPointerMaxDisplacement":
        comment, text = _reach_text(table.units)
    line = f"{INDENT}static constexpr unsigned {member} = {text};\n"
    return f"{INDENT}{comment}\n{line}" if comment else line


def _function_text(table: Table) -> str:
    spec = table.spec
    offsets = "".join(
        f"{INDENT}const unsigned {p.name}Offset = {p.offset:#x};\n" for p in table.patches
    )
    return (
        f"{_signature(f'{spec.class_name}::{orc.RESOLVER_FN}')} {{\n"
        f"{INDENT}// Generated by asmgen from {table.spec_path.name}.\n"
        f"{INDENT}{_table_text(table, len(INDENT))}\n\n"
        f"{offsets}\n"
        f"{_size_assert(INDENT)}\n"
        f"{INDENT}memcpy(ResolverWorkingMem, {orc.TABLE}, sizeof({orc.TABLE}));\n"
        + "".join(line + "\n" for line in resolver_field_lines(table, emit_units.LLVM))
        + "}"
    )


def _file_diff(rel: str, old: str, new: str) -> str:
    if old == new:
        return ""
    lines = difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True), f"a/{rel}", f"b/{rel}"
    )
    body = "".join(
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines
    )
    return f"diff --git a/{rel} b/{rel}\n{body}"


def narrow_replacement(table: Table) -> AsmgenError | None:
    """The refusal for a table that would replace one of LLVM's classes but
    does not serve every caller convention of its platform: LLVM's class is
    called by code of any of them, so its replacement must keep what they
    keep.  A narrow table goes into LLVM as a new class instead."""
    spec = table.spec
    missing = not_served(spec)
    if not missing:
        return None
    lost = "; ".join(
        f"{name} ({register_ranges(regs)})" if regs else name for name, regs in missing.items()
    )
    return AsmgenError(
        f"serves: {spec.abi} would replace LLVM's {spec.class_name}, whose callers may use "
        f"any of {spec.convention}'s conventions, but it does not serve {lost}",
        table.spec_path,
        spec.line_of("serves") or spec.line_of("abi"),
        hint="give it its own llvm_class, or pass --allow-narrow to replace LLVM's anyway",
    )


def _says_narrow(header: orc.Source, decl: orc.ClassDecl) -> bool:
    """Does the class's `///` comment say NARROW (a class an earlier patch
    added as narrow, which the next one may update)?"""
    before = header.data[: decl.node.start_byte].decode().rstrip(" ").splitlines()
    comment = []
    for line in reversed(before[:-1] if before and not before[-1].strip() else before):
        if not line.lstrip().startswith("///"):
            break
        comment.append(line)
    return any("NARROW:" in line for line in comment)


def narrow_warnings(tables: list[Table], header: orc.Source) -> list[str]:
    """One `path:line: warning:` line per narrow table the patch puts into
    `header`'s tree: as a new class, as the update of a class an earlier
    patch added (its comment says NARROW), or in place of LLVM's own."""
    classes = orc.classes(header)
    out = []
    for table in tables:
        missing = not_served(table.spec)
        if not missing:
            continue
        spec = table.spec
        decl = classes.get(spec.class_name)
        if decl is None:
            what = f"adds {spec.class_name}, whose class comment says so"
        elif _says_narrow(header, decl):
            what = f"updates {spec.class_name}, whose class comment says so"
        else:
            what = f"replaces LLVM's {spec.class_name} (--allow-narrow)"
        out.append(
            f"{table.spec_path}:{spec.line_of('serves') or spec.line_of('abi') or 1}: warning: "
            f"not for callers of {', '.join(missing)}: the patch {what}"
        )
    return out


def make_patch(llvm_root: Path, tables: list[Table], allow_narrow: bool = False) -> str:
    """The unified diff (a/ and b/ paths) for `tables`; empty when LLVM already
    agrees.  A narrow table that would replace one of LLVM's classes is
    refused unless `allow_narrow`."""
    plan = Plan(llvm_root)
    for table in tables:
        name = table.spec.class_name
        llvms = name in plan.classes and not _says_narrow(plan.header, plan.classes[name])
        refusal = narrow_replacement(table) if llvms else None
        if refusal is not None and not allow_narrow:
            raise refusal
        if name in plan.classes:
            plan.update(table)
        elif any(key.split("::")[0] == name for key in plan.functions):
            raise plan.cpp.error(
                f"{name}::{orc.RESOLVER_FN} is defined, but {plan.header.rel} "
                f"declares no class {name}"
            )
        else:
            _refuse_llvm_name(llvm_root, table)
            plan.add_class(table)
    plan.add_helpers()
    factories = [
        plan.factory_sources[rel]
        for rel in orc_factories.FACTORY_PATHS
        if rel in plan.factory_sources
    ]
    return "".join(
        _file_diff(src.rel, src.data.decode(), plan.patched(src))
        for src in (plan.header, plan.cpp, *factories)
    )


def _refuse_llvm_name(llvm_root: Path, table: Table) -> None:
    """A new class must not take a name LLVM's headers already declare (a class,
    struct, namespace, alias, ... such as `ExecutorAddr` or a target's namespace): added
    to namespace llvm::orc it would clash with it or hide it.  Reads the
    headers the tree has (a checkout has them all)."""
    name = table.spec.class_name
    declared = re.compile(
        rb"\b(?:(?:class|struct|union|enum(?:\s+class)?|namespace|using)\s+(?:LLVM_[A-Z_]+\s+)?"
        + name.encode()
        + rb"\b|typedef\b[^;]*\b"
        + name.encode()
        + rb"\s*;)"
    )
    for header in sorted((llvm_root / "llvm" / "include" / "llvm").rglob("*.h")):
        try:
            data = header.read_bytes()
        except OSError:
            continue
        found = declared.search(data) if name.encode() in data else None
        if found:
            line = data[: found.start()].count(b"\n") + 1
            where = f"{header.relative_to(llvm_root)}:{line}"
            spec = table.spec
            raise AsmgenError(
                f"llvm_class: LLVM already declares {name} ({where}); a new class of that "
                "name in llvm::orc would clash with it",
                table.spec_path,
                spec.line_of("llvm_class") or spec.line_of("abi"),
                hint="give the spec another llvm_class",
            )


def cmd_patch(args) -> int:
    found = spec_files(args.specs)
    known = {f.spec.abi for f in found} | {f.path.stem for f in found}
    for name in args.abi:
        if name not in known:
            raise AsmgenError(
                f"ABI {name!r} not found; expected one of: "
                + ", ".join(sorted(f.spec.abi for f in found)),
                args.specs,
            )
    tables = build_all(select(found, args.abi), args.templates)
    diff = make_patch(args.llvm_root, tables, args.allow_narrow)
    warnings = narrow_warnings(tables, orc.load(args.llvm_root, orc.HEADER_PATH)) if diff else []
    for line in warnings:
        print(line, file=sys.stderr)
    if args.output is None:
        sys.stdout.write(diff)
    else:
        write_if_changed(args.output, diff)
        print(f"wrote {args.output}" if diff else f"wrote {args.output} (empty: LLVM agrees)")
    return 0


def register(sub, common) -> None:
    parser = sub.add_parser(
        "patch", help="unified diff that puts the tables into LLVM's OrcABISupport.cpp/.h"
    )
    parser.add_argument("abi", nargs="*", help="ABI ids or spec names (default: all)")
    parser.add_argument(
        "--llvm-root", type=Path, required=True, help="LLVM checkout (holds llvm/lib, ...)"
    )
    parser.add_argument("-o", "--output", type=Path, help="write the patch here, not stdout")
    parser.add_argument(
        "--allow-narrow",
        action="store_true",
        help="replace an LLVM class with a table that does not serve every caller "
        "convention (refused otherwise; docs/variants.md)",
    )
    common(parser)
    parser.set_defaults(run=cmd_patch)
