"""LLVM's OrcABISupport.cpp and .h, read with a C++ parser (tree-sitter-cpp).

Finds what `asmgen patch` rewrites, as byte ranges of syntax nodes: the classes
of the header with their size constants, base classes, export macros and
inline forwarders, and in the .cpp each `<Class>::writeResolverCode` with its
`ResolverCode[]` table, offset constants and `static_assert`s, and the
file-static helpers asmgen's unit writers call.  The same reader extracts a
table (and the `Trampoline[]`/`Stub[]` of asmgen's unit writers) back, so a
patched file can be checked against the generator.

An offset constant is found by what it does, not by its name: a local integer
constant the function adds to its working memory (`ResolverWorkingMem + X`).
What it patches is read from the same statement where it can be: the address
parameter written there, directly or through a local computed from it.
LLVM releases spell the constants differently (one of 19.x's landing-move offsets is
`Offsett`, main's `MoveLandingAddrOffset`); the reader keeps every spelling.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from tree_sitter import Language, Node, Parser

from asmgen.errors import AsmgenError

CPP_PATH = "llvm/lib/ExecutionEngine/Orc/OrcABISupport.cpp"
HEADER_PATH = "llvm/include/llvm/ExecutionEngine/Orc/OrcABISupport.h"
RESOLVER_FN = "writeResolverCode"
TABLE = "ResolverCode"
# The unit writers and the arrays asmgen's own definitions of them hold.
UNIT_TABLES = {"writeTrampolines": "Trampoline", "writeIndirectStubsBlock": "Stub"}

# Visibility macros between `class` and the name; the parser would take them
# for the class name, so they are blanked (same length, offsets unchanged).
_ATTRIBUTE_MACROS = re.compile(rb"\b(?:LLVM_CLASS_ABI|LLVM_ABI|LLVM_LIBRARY_VISIBILITY)\b")


@cache
def _parser() -> Parser:
    import tree_sitter_cpp

    return Parser(Language(tree_sitter_cpp.language()))


def walk(node: Node) -> Iterator[Node]:
    """Every node below `node`, itself first, in source order."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(current.children))


def number(node: Node) -> int:
    """Value of a C++ integer literal (hex, octal or decimal, any suffix)."""
    text = node.text.decode().replace("'", "").rstrip("uUlL")
    if re.fullmatch(r"0[0-7]+", text):
        return int(text, 8)
    return int(text, 0)


_OPERATORS = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "<<": lambda a, b: a << b,
    ">>": lambda a, b: a >> b,
    "|": lambda a, b: a | b,
    "&": lambda a, b: a & b,
    "^": lambda a, b: a ^ b,
}


def constant_value(node: Node, bits: int = 32) -> int | None:
    """Value of an integer constant expression (`0x6C`, `1U << 27`, `(1U << 20) - 4`)
    as an unsigned of `bits` bits holds it; None for anything else."""
    value = _evaluate(node)
    return None if value is None else value & ((1 << bits) - 1)


def _evaluate(node: Node) -> int | None:
    if node.type == "number_literal":
        return number(node)
    if node.type == "parenthesized_expression" and node.named_child_count == 1:
        return _evaluate(node.named_children[0])
    if node.type == "unary_expression":
        operand = _evaluate(node.child_by_field_name("argument"))
        operator = node.child_by_field_name("operator").text
        if operand is None or operator not in (b"-", b"~", b"+"):
            return None
        return {b"-": -operand, b"~": ~operand, b"+": operand}[operator]
    if node.type == "binary_expression":
        left = _evaluate(node.child_by_field_name("left"))
        right = _evaluate(node.child_by_field_name("right"))
        operator = node.child_by_field_name("operator").text.decode()
        apply = _OPERATORS.get(operator)
        if left is None or right is None or apply is None:
            return None
        if operator in ("<<", ">>") and not 0 <= right < 64:
            return None
        return apply(left, right)
    return None


@dataclass
class Source:
    """One parsed file; `rel` is its path inside the LLVM tree."""

    rel: str
    path: Path
    data: bytes
    root: Node

    def text(self, node: Node) -> str:
        return self.data[node.start_byte : node.end_byte].decode()

    def error(self, message: str, node: Node | None = None) -> AsmgenError:
        return AsmgenError(message, self.path, node.start_point.row + 1 if node else None)

    def namespace_body(self) -> Node:
        """The declaration list of `namespace llvm { namespace orc {` (or `llvm::orc`)."""
        for node in walk(self.root):
            if node.type != "namespace_definition":
                continue
            name = node.child_by_field_name("name")
            body = node.child_by_field_name("body")
            if name is None or body is None:
                continue
            if name.text == b"llvm::orc":
                return body
            if name.text == b"orc" and _enclosing_namespace(node) == b"llvm":
                return body
        raise self.error("expected `namespace llvm { namespace orc { ... } }`")


def _enclosing_namespace(node: Node) -> bytes | None:
    parent = node.parent
    while parent is not None:
        if parent.type == "namespace_definition":
            name = parent.child_by_field_name("name")
            return name.text if name else None
        parent = parent.parent
    return None


def load(llvm_root: Path, rel: str) -> Source:
    path = llvm_root / rel
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise AsmgenError(
            f"missing file: expected LLVM's {rel} under --llvm-root {llvm_root}", path
        ) from None
    except OSError as exc:
        raise AsmgenError(f"cannot read: {exc.strerror}", path) from None
    try:
        data.decode()
    except UnicodeDecodeError:
        raise AsmgenError("expected UTF-8 C++ source", path) from None
    blanked = _ATTRIBUTE_MACROS.sub(lambda m: b" " * len(m.group()), data)
    return Source(rel, path, data, _parser().parse(blanked).root_node)


@dataclass
class ClassDecl:
    name: str
    node: Node
    bases: list[str]
    constants: dict[str, Node]  # static member -> its initializer
    forwards_to: str | None  # Base of an inline writeResolverCode calling Base::writeResolverCode
    # Export macros as written: on the class (`class LLVM_CLASS_ABI X`) and
    # before its static member functions (`LLVM_ABI static void ...`).
    class_macro: str = ""
    member_macro: str = ""
    # The writeResolverCode declaration's parameter types, as written.
    resolver_params: list[str] = field(default_factory=list)
    # The arguments the inline forwarder passes to Base::writeResolverCode, as
    # written (`..., ReentryCtxAddr, false` for OrcMips32Le).
    forward_args: list[str] = field(default_factory=list)


def classes(header: Source) -> dict[str, ClassDecl]:
    found: dict[str, ClassDecl] = {}
    for node in walk(header.root):
        if node.type not in ("class_specifier", "struct_specifier"):
            continue
        name, body = node.child_by_field_name("name"), node.child_by_field_name("body")
        if name is None or body is None:
            continue
        bases = [
            header.text(c)
            for clause in node.children
            if clause.type == "base_class_clause"
            for c in clause.children
            if c.type in ("type_identifier", "qualified_identifier")
        ]
        decl = ClassDecl(header.text(name), node, bases, {}, None)
        decl.class_macro = _macros(header.data[node.start_byte : name.start_byte])
        for member in body.children:
            declarator = member.child_by_field_name("declarator")
            if member.type == "field_declaration" and declarator is not None:
                value = member.child_by_field_name("default_value")
                if declarator.type == "field_identifier" and value is not None:
                    decl.constants[header.text(declarator)] = value
            if member.type not in ("field_declaration", "declaration", "function_definition"):
                continue
            function = _function_declarator(member)
            if function is None:
                continue
            if member.type != "function_definition" and not decl.member_macro:
                # A blanked macro lies before the node: read from the previous one.
                before = member.prev_sibling
                start = before.end_byte if before is not None else member.start_byte
                decl.member_macro = _macros(header.data[start : function.start_byte])
            if header.text(function.child_by_field_name("declarator")) != RESOLVER_FN:
                continue
            decl.resolver_params = _parameter_types(header, function)
            if member.type == "function_definition":
                decl.forwards_to, decl.forward_args = _forward_call(header, member)
        found[decl.name] = decl
    return found


def _macros(text: bytes) -> str:
    """The export macros in `text`, each followed by a space."""
    return "".join(f"{m.decode()} " for m in _ATTRIBUTE_MACROS.findall(text))


def _function_declarator(node: Node) -> Node | None:
    declarator = node.child_by_field_name("declarator")
    while declarator is not None and declarator.type != "function_declarator":
        declarator = declarator.child_by_field_name("declarator")
    return declarator


def _parameter_types(src: Source, function: Node) -> list[str]:
    params = function.child_by_field_name("parameters")
    return [
        src.text(p.child_by_field_name("type"))
        for p in (params.named_children if params else [])
        if p.type == "parameter_declaration" and p.child_by_field_name("type") is not None
    ]


def _parameter_names(src: Source, function: Node) -> list[str]:
    params = function.child_by_field_name("parameters")
    names = []
    for p in params.named_children if params else []:
        declarator = p.child_by_field_name("declarator")
        while declarator is not None and declarator.type != "identifier":
            declarator = declarator.child_by_field_name("declarator")
        names.append(src.text(declarator) if declarator is not None else "")
    return names


def _declared_name(src: Source, definition: Node) -> str | None:
    declarator = _function_declarator(definition)
    if declarator is None:
        return None
    return src.text(declarator.child_by_field_name("declarator"))


def _forward_call(src: Source, definition: Node) -> tuple[str | None, list[str]]:
    """The Base of a `Base::writeResolverCode(...)` call in `definition`, and its arguments."""
    for node in walk(definition):
        function = node.child_by_field_name("function") if node.type == "call_expression" else None
        if function is not None and function.type == "qualified_identifier":
            name = function.child_by_field_name("name")
            scope = function.child_by_field_name("scope")
            if name is not None and scope is not None and name.text == RESOLVER_FN.encode():
                arguments = node.child_by_field_name("arguments")
                args = [src.text(a) for a in arguments.named_children if a.type != "comment"]
                return src.text(scope), args
    return None, []


def lineage(decls: dict[str, ClassDecl], name: str) -> Iterator[ClassDecl]:
    """Class `name`, then its bases, nearest first (each once)."""
    queue, seen = [name], set()
    while queue:
        current = decls.get(queue.pop(0))
        if current is None or current.name in seen:
            continue
        seen.add(current.name)
        yield current
        queue.extend(current.bases)


def constant(decls: dict[str, ClassDecl], name: str, member: str) -> tuple[ClassDecl, Node] | None:
    """`member` of class `name` or of its nearest base that declares it."""
    for current in lineage(decls, name):
        if member in current.constants:
            return current, current.constants[member]
    return None


@dataclass
class ResolverFn:
    """`<Class>::writeResolverCode` and the parts of its body that hold the table."""

    name: str
    node: Node
    body: Node
    table: Node | None = None  # the `const T ResolverCode[] = {...};` declaration
    element: str | None = None
    values: Node | None = None  # its initializer list
    # Offset constants (added to the working memory) -> their literals, and
    # the positions of the parameters whose values are written there.
    offsets: dict[str, Node] = field(default_factory=dict)
    offset_params: dict[str, set[int]] = field(default_factory=dict)
    last_offset: Node | None = None  # the last offset constant's declaration
    size_asserts: list[Node] = field(default_factory=list)
    array: str = TABLE  # the table's name: ResolverCode, Trampoline or Stub


def resolver_functions(cpp: Source) -> dict[str, ResolverFn]:
    """Every `Scope::writeResolverCode` defined in the file, keyed by its qualified name."""
    return member_functions(cpp, RESOLVER_FN, TABLE)


def member_functions(cpp: Source, name: str, table: str) -> dict[str, ResolverFn]:
    """Every `Scope::<name>` defined in the file, with its `<table>[]` array if any."""
    found: dict[str, ResolverFn] = {}
    for node in walk(cpp.root):
        if node.type != "function_definition":
            continue
        declarator = node.child_by_field_name("declarator")
        if declarator is None or declarator.type != "function_declarator":
            continue
        qualified = declarator.child_by_field_name("declarator")
        if qualified is None or qualified.type != "qualified_identifier":
            continue
        member = qualified.child_by_field_name("name")
        body = node.child_by_field_name("body")
        if member is None or body is None or member.text != name.encode():
            continue
        found[cpp.text(qualified)] = _resolver_fn(cpp, cpp.text(qualified), node, body, table)
    return found


def free_functions(cpp: Source, names: set[str]) -> dict[str, Node]:
    """Definitions of unqualified functions named in `names` at namespace scope;
    a template's node is its whole `template <...>` declaration."""
    found: dict[str, Node] = {}
    for node in walk(cpp.root):
        if node.type != "function_definition":
            continue
        parent = node.parent
        outer = parent if parent is not None and parent.type == "template_declaration" else node
        scope = outer.parent
        if scope is None or scope.type not in ("declaration_list", "translation_unit"):
            continue
        name = _declared_name(cpp, node)
        if name in names and name not in found:
            found[name] = outer
    return found


def _resolver_fn(cpp: Source, name: str, node: Node, body: Node, table: str) -> ResolverFn:
    fn = ResolverFn(name, node, body, array=table)
    initializers: dict[str, tuple[Node, Node]] = {}  # local -> (declaration, value)
    for stmt in body.children:
        if stmt.type == "static_assert_declaration":
            if any(n.type == "sizeof_expression" and table.encode() in n.text for n in walk(stmt)):
                fn.size_asserts.append(stmt)
            continue
        if stmt.type != "declaration":
            continue
        init = stmt.child_by_field_name("declarator")
        if init is None or init.type != "init_declarator":
            continue
        target, value = init.child_by_field_name("declarator"), init.child_by_field_name("value")
        if target is None or value is None:
            continue
        array = target.type == "array_declarator"
        local = cpp.text(target.child_by_field_name("declarator") if array else target)
        if array and local == table:
            fn.table, fn.values = stmt, value
            fn.element = cpp.text(stmt.child_by_field_name("type"))
        elif array or target.type == "identifier":
            initializers[local] = (stmt, value)
    declarator = _function_declarator(node)
    params = _parameter_names(cpp, declarator) if declarator is not None else []
    if params:
        _find_offsets(cpp, fn, params, initializers)
    return fn


def _find_offsets(
    cpp: Source, fn: ResolverFn, params: list[str], initializers: dict[str, tuple[Node, Node]]
) -> None:
    """Integer constants added to the working memory (the first parameter), and
    which parameters the statements writing there read."""
    memory = params[0].encode()
    for node in walk(fn.body):
        if node.type != "binary_expression":
            continue
        left, right = node.child_by_field_name("left"), node.child_by_field_name("right")
        operator = node.child_by_field_name("operator")
        if left is None or right is None or left.text != memory or operator.text != b"+":
            continue
        for ident in _identifiers(right):
            declared = initializers.get(ident.decode())
            if declared is None or declared[1].type != "number_literal":
                continue
            name = ident.decode()
            stmt, literal = declared
            fn.offsets[name] = literal
            if fn.last_offset is None or stmt.start_byte > fn.last_offset.start_byte:
                fn.last_offset = stmt
            written = fn.offset_params.setdefault(name, set())
            source = _written_value(node)
            if source is not None:
                written |= _parameters_read(source, params, initializers)


def _identifiers(node: Node) -> Iterator[bytes]:
    for child in walk(node):
        if child.type == "identifier":
            yield child.text


def _written_value(destination: Node) -> Node | None:
    """The source argument of the `memcpy(destination, source, size)` around
    `destination` (which may be part of the first argument: `Mem + X + 4`)."""
    node = destination
    while node.parent is not None and node.parent.type in (
        "parenthesized_expression",
        "binary_expression",
    ):
        node = node.parent
    arguments = node.parent
    if arguments is None or arguments.type != "argument_list":
        return None
    args = arguments.named_children
    if len(args) < 2 or args[0] != node:
        return None
    return args[1]


def _parameters_read(
    node: Node, params: list[str], initializers: dict[str, tuple[Node, Node]]
) -> set[int]:
    """Positions of the parameters `node` reads, directly or through locals."""
    found, seen, queue = set(), set(), [node]
    while queue:
        for ident in _identifiers(queue.pop()):
            name = ident.decode()
            if name in params[1:]:
                found.add(params.index(name))
            elif name in initializers and name not in seen:
                seen.add(name)
                queue.append(initializers[name][1])
    return found


def table_values(cpp: Source, fn: ResolverFn) -> list[int]:
    """The table's elements, in order, as integers."""
    if fn.values is None or fn.values.type != "initializer_list" or fn.values.has_error:
        raise cpp.error(
            f"{fn.name}: expected `const uint8_t {fn.array}[] = {{...}};` "
            "(or uint32_t) with integer elements",
            fn.table or fn.node,
        )
    values = []
    for item in fn.values.named_children:
        if item.type == "comment":
            continue
        if item.type != "number_literal":
            raise cpp.error(
                f"{fn.name}: {fn.array}[] element `{cpp.text(item)}` is not an integer literal",
                item,
            )
        values.append(number(item))
    return values


@dataclass(frozen=True)
class Extracted:
    """A table as found in LLVM's sources: what a round trip compares."""

    element: str
    values: tuple[int, ...]
    offsets: dict[str, int]
    resolver_code_size: int | None
    # Integer-literal class constants (own or inherited): PointerSize, StubSize, ...
    constants: dict[str, int] = field(default_factory=dict)
    # `Trampoline[]` / `Stub[]` of asmgen-written unit writers, by writer name.
    units: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def code(self, byteorder: str) -> bytes:
        return _pack(self.element, self.values, byteorder)

    def unit_code(self, writer: str, byteorder: str) -> bytes:
        return _pack(self.element, self.units[writer], byteorder)


def _pack(element: str, values: tuple[int, ...], byteorder: str) -> bytes:
    unit = 1 if element == "uint8_t" else 4
    return b"".join(v.to_bytes(unit, byteorder) for v in values)


def extract(llvm_root: Path, class_name: str) -> Extracted:
    """Read `class_name`'s resolver table back out of the tree."""
    header, cpp = load(llvm_root, HEADER_PATH), load(llvm_root, CPP_PATH)
    decls = classes(header)
    fns = resolver_functions(cpp)
    fn = fns.get(f"{class_name}::{RESOLVER_FN}")
    if fn is None and class_name in decls and decls[class_name].forwards_to:
        fn = fns.get(f"{decls[class_name].forwards_to}::{RESOLVER_FN}")
    if fn is None:
        raise cpp.error(f"no definition of {class_name}::{RESOLVER_FN}")
    size = constant(decls, class_name, "ResolverCodeSize")
    constants = {}
    for member in ("PointerSize", "TrampolineSize", "StubSize", "StubToPointerMaxDisplacement"):
        found = constant(decls, class_name, member)
        value = constant_value(found[1]) if found is not None else None
        if value is not None:
            constants[member] = value
    units = {}
    for writer, array in UNIT_TABLES.items():
        unit_fn = member_functions(cpp, writer, array).get(f"{class_name}::{writer}")
        if unit_fn is not None and unit_fn.table is not None:
            units[writer] = tuple(table_values(cpp, unit_fn))
    return Extracted(
        element=fn.element or "",
        values=tuple(table_values(cpp, fn)),
        offsets={name: number(node) for name, node in fn.offsets.items()},
        resolver_code_size=number(size[1]) if size else None,
        constants=constants,
        units=units,
    )
