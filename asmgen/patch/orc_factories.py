"""LLVM's factory functions that pick an ORC ABI class by the target triple.

A JIT reaches an ABI class through four functions, each a switch on the
triple's arch with one case group per class:
`createLocalCompileCallbackManager` and `createLocalIndirectStubsManagerBuilder`
(IndirectionUtils.cpp) and `createLocalLazyCallThroughManager`
(LazyReexports.cpp) for a JIT in its own process, and
`EPCIndirectionUtils::Create` (EPCIndirectionUtils.cpp) for one whose code
runs in another.  A class for an architecture LLVM lacks is of no use to
them until its cases are there, so `asmgen patch` adds them: for an arch
whose record names its factory cases (`Arch.orc_factory`), when the patch
writes that class, each function without a case for the arch's triples gets
one group.  The group is written like the function's own last group that
names one class and decides nothing else (the last but one in LLVM 19), and follows
it: its body with that class renamed, its case labels' spelling.  Cases already
there are kept, whatever class they name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tree_sitter import Node

from asmgen.arches.model import OrcFactory
from asmgen.patch import orc_source as orc

INDIRECTION_UTILS = "llvm/lib/ExecutionEngine/Orc/IndirectionUtils.cpp"
LAZY_REEXPORTS = "llvm/lib/ExecutionEngine/Orc/LazyReexports.cpp"
EPC_INDIRECTION_UTILS = "llvm/lib/ExecutionEngine/Orc/EPCIndirectionUtils.cpp"


@dataclass(frozen=True)
class Factory:
    path: str  # in the LLVM tree
    name: str


FACTORIES = (
    Factory(INDIRECTION_UTILS, "createLocalCompileCallbackManager"),
    Factory(INDIRECTION_UTILS, "createLocalIndirectStubsManagerBuilder"),
    Factory(LAZY_REEXPORTS, "createLocalLazyCallThroughManager"),
    Factory(EPC_INDIRECTION_UTILS, "EPCIndirectionUtils::Create"),
)

# The files that hold them, in the order a patch lists them.
FACTORY_PATHS = tuple(dict.fromkeys(f.path for f in FACTORIES))


@dataclass
class CaseGroup:
    """Consecutive case labels and the statements they share."""

    cases: list[Node]  # the case_statement nodes, first to last
    labels: list[Node]  # their values (`Triple::<enumerator>`); empty for `default:`
    statements: list[Node]

    @property
    def enumerators(self) -> list[str]:
        """The labels' last names (the enumerators, without `Triple::`)."""
        return [_last_name(label) for label in self.labels]

    def named(self, known: set[str]) -> set[str]:
        """The classes of `known` its statements name."""
        return {
            node.text.decode()
            for statement in self.statements
            for node in orc.walk(statement)
            if node.type in ("type_identifier", "identifier") and node.text.decode() in known
        }

    def decides(self) -> bool:
        """Does it choose between classes itself (an OS test)?"""
        return any(
            node.type in ("if_statement", "switch_statement", "conditional_expression")
            for statement in self.statements
            for node in orc.walk(statement)
        )


def _last_name(label: Node) -> str:
    names = [n for n in orc.walk(label) if n.type == "identifier"]
    return (names[-1] if names else label).text.decode()


def function(src: orc.Source, name: str) -> Node:
    """The definition of function `name` (`f` or `Class::f`) in namespace llvm::orc."""
    for node in src.namespace_body().named_children:
        if node.type != "function_definition":
            continue
        declarator = node.child_by_field_name("declarator")
        while declarator is not None and declarator.type != "function_declarator":
            declarator = declarator.child_by_field_name("declarator")
        inner = declarator.child_by_field_name("declarator") if declarator else None
        if inner is not None and inner.text.decode() == name:
            return node
    raise src.error(
        f"expected a definition of {name}(...) in namespace llvm::orc "
        "(asmgen patch adds its architecture cases); renamed upstream?"
    )


def groups(src: orc.Source, name: str) -> tuple[Node, list[CaseGroup]]:
    """The body of function `name`'s switch on the triple's arch
    (`T.getArch()`), and its case groups."""
    fn = function(src, name)
    for node in orc.walk(fn):
        if node.type != "switch_statement":
            continue
        condition = node.child_by_field_name("condition")
        if condition is None or b"getArch" not in condition.text:
            continue
        body = node.child_by_field_name("body")
        found: list[CaseGroup] = []
        pending: list[Node] = []
        for case in body.named_children:
            if case.type != "case_statement":
                continue
            pending.append(case)
            statements = _statements(case)
            if statements:
                labels = [c.child_by_field_name("value") for c in pending]
                found.append(CaseGroup(pending, [v for v in labels if v is not None], statements))
                pending = []
        return body, found
    raise src.error(f"{name}: expected a switch on `getArch()` choosing the ORC ABI class", fn)


def _statements(case: Node) -> list[Node]:
    """The statements of one case_statement (after its `:`)."""
    out, after_colon = [], False
    for child in case.children:
        if after_colon and child.is_named and child.type != "comment":
            out.append(child)
        if child.type == ":":
            after_colon = True
    return out


def case_text(src: orc.Source, name: str, factory: OrcFactory, known: set[str]) -> tuple[int, str]:
    """Where and what to insert into function `name` for `factory`'s arch: one
    case group naming `factory.llvm_class`, written like the last group that
    names one class of `known` and decides nothing else.  (0, "") when a case
    for one of the triples is there already."""
    body, found = groups(src, name)
    present = {e for group in found for e in group.enumerators}
    if present & set(factory.triples):
        return 0, ""
    models = [g for g in found if g.labels and len(g.named(known)) == 1 and not g.decides()]
    if not models:
        raise src.error(
            f"{name}: expected a case group that names one ORC ABI class, to write "
            f"the {factory.llvm_class} case like it",
            body,
        )
    model = models[-1]
    (old,) = model.named(known)
    label = model.labels[-1]
    prefix = src.text(label)[: -len(_last_name(label))]
    start, end = model.statements[0].start_byte, model.statements[-1].end_byte
    renames = sorted(
        (n.start_byte, n.end_byte)
        for statement in model.statements
        for n in orc.walk(statement)
        if n.type in ("type_identifier", "identifier") and n.text.decode() == old
    )
    text, pos = "", start
    for begin, finish in renames:
        text += src.data[pos:begin].decode() + factory.llvm_class
        pos = finish
    text += src.data[pos:end].decode()
    # Labels at the model's column; the body starts on the last label's line
    # (`case X: {`) or below it, its lines as the model's (clang-format
    # indents the inserted lines afterwards).
    pad = " " * model.cases[0].start_point.column
    group = "\n".join(f"{pad}case {prefix}{triple}:" for triple in factory.triples)
    if model.statements[0].start_point.row == label.start_point.row:
        group += " " + text
    else:
        group += "\n" + " " * model.statements[0].start_point.column + text
    # Inserted after the model's last line, so that only the new lines are
    # formatted (clang-format reflows a whole statement it touches).
    end = model.cases[-1].end_byte
    line_end = src.data.find(b"\n", end)
    if line_end < 0:
        raise src.error(f"{name}: expected a line break after the case group", model.cases[-1])
    return line_end + 1, "\n" + group + "\n"


def cases(src: orc.Source, name: str) -> dict[str, set[str]]:
    """Each case label's enumerator -> the classes its group names (of any
    `Orc` name), for tests and reports."""
    _, found = groups(src, name)
    out: dict[str, set[str]] = {}
    for group in found:
        named = {
            n.text.decode()
            for s in group.statements
            for n in orc.walk(s)
            if n.type in ("type_identifier", "identifier") and n.text.decode().startswith("Orc")
        }
        for enumerator in group.enumerators:
            out[enumerator] = named
    return out


def files(llvm_root: Path) -> dict[str, Path]:
    """The factory files of an LLVM checkout, path in the tree -> path."""
    return {rel: llvm_root / rel for rel in FACTORY_PATHS}
