"""Run a resolver writer's body the way LLVM's code runs it: what it writes where.

LLVM writes a resolver in steps.  It copies its `ResolverCode[]` table into
the working memory, then patches the copy through offset constants
(`Mem + X`, `Mem + (X + 4)`): it copies a parameter (`&ReentryFnAddr`), words
it computes from one (`0x3c190000 | (((Fn + 0x8000) >> 16) & 0xFFFF)`), or a
word the byte order chooses (`isBigEndian ? 0x0060c825 : 0x0040c825`).  This
module evaluates that straight-line code for given argument values, with the
C++ semantics those statements need: fixed-width unsigned arithmetic,
truncation on assignment and cast, and memcpy in the target's byte order.  A
statement that writes the working memory in a way it does not model is
refused, naming its line, rather than guessed.
"""

from __future__ import annotations

from dataclasses import dataclass

from tree_sitter import Node

from asmgen.patch.orc_source import ResolverFn, Source, number

# Bits of the integer types LLVM's writers use.
WIDTHS = {
    "bool": 32,  # promoted in arithmetic; one byte in memory (SIZES)
    "char": 8,
    "uint8_t": 8,
    "int8_t": 8,
    "uint16_t": 16,
    "int16_t": 16,
    "unsigned": 32,
    "unsigned int": 32,
    "int": 32,
    "uint32_t": 32,
    "int32_t": 32,
    "uint64_t": 64,
    "int64_t": 64,
    "size_t": 64,
    "ExecutorAddr": 64,
    "JITTargetAddress": 64,
}
SIZES = {name: bits // 8 for name, bits in WIDTHS.items()} | {"bool": 1}
ADDRESS_TYPES = ("ExecutorAddr", "JITTargetAddress")


class Unsupported(Exception):
    """A construct the evaluator does not model; carries the node."""

    def __init__(self, node: Node, what: str):
        super().__init__(what)
        self.node = node


@dataclass(frozen=True)
class Val:
    value: int
    bits: int

    @staticmethod
    def of(value: int, bits: int) -> Val:
        return Val(value & ((1 << bits) - 1), bits)


@dataclass(frozen=True)
class Arr:
    values: tuple[int, ...]
    size: int  # bytes per element

    def data(self, order: str) -> bytes:
        return b"".join(v.to_bytes(self.size, order) for v in self.values)


@dataclass(frozen=True)
class Write:
    """One memcpy into the working memory."""

    offset: int
    data: bytes
    line: int  # 1-based, in the .cpp
    via: tuple[str, ...]  # the local constants the destination adds (ReentryFnAddrOffset)
    source: str  # what was copied, as written (`&ReentryCtxLUi`, `ResolverCode`)
    element: int  # bytes per element of what was copied (4 for a uint32_t or uint32_t[])
    table: bool  # the copy of the ResolverCode[] table itself


def _type_name(node: Node | None) -> str:
    return "" if node is None else " ".join(node.text.decode().split())


class _Run:
    def __init__(self, cpp: Source, fn: ResolverFn, args: dict[str, int], order: str, consts):
        self.cpp, self.fn, self.order = cpp, fn, order
        self.consts = consts  # class constants (ResolverCodeSize, ...) -> value
        self.locals: dict[str, Val | Arr | Unsupported] = {}
        self.params: dict[str, Val] = {}
        self.addresses: set[str] = set()
        declared = parameters(fn)
        self.memory = declared[0][0] if declared else ""
        for name, kind in declared[1:]:
            if kind in ADDRESS_TYPES:
                self.addresses.add(name)
            if name in args:
                self.params[name] = Val.of(args[name], WIDTHS.get(kind, 64))
        self.writes: list[Write] = []

    # -- statements -------------------------------------------------------

    def run(self) -> list[Write]:
        for stmt in self.fn.body.named_children:
            if stmt.type in ("comment", "static_assert_declaration"):
                continue
            if stmt.type == "declaration":
                self._declaration(stmt)
            elif stmt.type == "expression_statement" and stmt.named_child_count:
                self._expression_statement(stmt.named_children[0])
            elif self._mentions_memory(stmt):
                raise Unsupported(stmt, "a statement that writes the working memory")
        return self.writes

    def _mentions_memory(self, node: Node) -> bool:
        stack = [node]
        while stack:
            current = stack.pop()
            if current.type == "identifier" and current.text.decode() == self.memory:
                return True
            stack.extend(current.children)
        return False

    def _declaration(self, stmt: Node) -> None:
        kind = _type_name(stmt.child_by_field_name("type"))
        for init in stmt.children_by_field_name("declarator"):
            if init.type != "init_declarator":
                continue
            target, value = (
                init.child_by_field_name("declarator"),
                init.child_by_field_name("value"),
            )
            if self._mentions_memory(init):
                raise Unsupported(stmt, "a local that points into the working memory")
            if target.type == "array_declarator":
                name = target.child_by_field_name("declarator").text.decode()
                self.locals[name] = self._guarded(lambda v=value, k=kind: self._array(v, k))
            elif target.type == "identifier":
                bits = WIDTHS.get(kind)
                name = target.text.decode()
                if bits is None:
                    self.locals[name] = Unsupported(init, f"a local of type `{kind}`")
                else:
                    self.locals[name] = self._guarded(
                        lambda v=value, b=bits: Val.of(self.expr(v).value, b)
                    )

    def _guarded(self, compute):
        """A local's value, or the reason it has none (raised only if it is used)."""
        try:
            return compute()
        except Unsupported as exc:
            return exc

    def _array(self, value: Node, kind: str) -> Arr:
        if kind not in WIDTHS or value.type != "initializer_list":
            raise Unsupported(value, f"an array of `{kind}`")
        bits = WIDTHS[kind]
        items = [n for n in value.named_children if n.type != "comment"]
        return Arr(tuple(Val.of(self.expr(n).value, bits).value for n in items), SIZES[kind])

    def _expression_statement(self, node: Node) -> None:
        function = node.child_by_field_name("function") if node.type == "call_expression" else None
        if (
            function is not None
            and function.text.decode() in ("memcpy", "std::memcpy")
            and self._mentions_memory(node.child_by_field_name("arguments"))
        ):
            self._memcpy(node)
            return
        if node.type == "assignment_expression":
            left = node.child_by_field_name("left")
            if left.type == "identifier" and isinstance(self.locals.get(left.text.decode()), Val):
                self._assign(node, left.text.decode())
                return
        if self._mentions_memory(node):
            raise Unsupported(node, "a statement that writes the working memory")

    def _assign(self, node: Node, name: str) -> None:
        old = self.locals[name]
        operator = node.child_by_field_name("operator").text.decode()
        right = self.expr(node.child_by_field_name("right"))
        if operator == "=":
            self.locals[name] = Val.of(right.value, old.bits)
        else:
            combined = _binary(operator[:-1], old, right, node)
            self.locals[name] = Val.of(combined.value, old.bits)

    def _memcpy(self, call: Node) -> None:
        args = [
            n for n in call.child_by_field_name("arguments").named_children if n.type != "comment"
        ]
        if len(args) != 3:
            raise Unsupported(call, "a memcpy without three arguments")
        dest, src, size = args
        terms = _sum_terms(dest)
        if sum(1 for t in terms if t.text.decode() == self.memory) != 1:
            raise Unsupported(dest, "a destination that is not `working memory + offset`")
        offset, via = 0, []
        for term in terms:
            if term.text.decode() == self.memory:
                continue
            offset += self.expr(term).value
            via += [
                n.text.decode()
                for n in _identifiers(term)
                if n.text.decode() in self.locals and n.text.decode() not in via
            ]
        data, element, table = self._source(src)
        count = self.expr(size).value
        if count > len(data):
            raise Unsupported(call, f"a memcpy of {count} bytes from {len(data)}")
        self.writes.append(
            Write(
                offset,
                data[:count],
                call.start_point.row + 1,
                tuple(via),
                src.text.decode(),
                element,
                table,
            )
        )

    def _source(self, node: Node) -> tuple[bytes, int, bool]:
        """Bytes of a memcpy source: `&scalar`, `&Param`, or an array."""
        inner = node
        if node.type == "pointer_expression" and node.child_by_field_name("operator").text == b"&":
            inner = node.child_by_field_name("argument")
        if inner.type != "identifier":
            raise Unsupported(node, "a memcpy source that is not a local or a parameter")
        name = inner.text.decode()
        value = self._lookup(inner)
        if isinstance(value, Arr):
            return value.data(self.order), value.size, name == self.fn.array
        if inner is node:
            raise Unsupported(node, "a scalar copied without `&`")
        size = 8 if name in self.addresses else max(1, value.bits // 8)
        return value.value.to_bytes(size, self.order), size, False

    def _lookup(self, node: Node) -> Val | Arr:
        name = node.text.decode()
        if name in self.locals:
            found = self.locals[name]
            if isinstance(found, Unsupported):
                raise found
            return found
        if name in self.params:
            return self.params[name]
        if name in self.consts:
            return Val.of(self.consts[name], 32)
        if name in ("true", "false"):
            return Val(int(name == "true"), 32)
        raise Unsupported(node, f"`{name}`, which is neither a local, a parameter nor a constant")

    # -- expressions ------------------------------------------------------

    def expr(self, node: Node) -> Val:
        kind = node.type
        if kind == "number_literal":
            text = node.text.decode().lower()
            value = number(node)
            wide = "l" in text.rstrip("0123456789abcdefx'") or value > 0xFFFF_FFFF
            return Val.of(value, 64 if wide else 32)
        if kind in ("true", "false"):
            return Val(int(kind == "true"), 32)
        if kind == "identifier":
            found = self._lookup(node)
            if isinstance(found, Arr):
                raise Unsupported(node, "an array used as a number")
            return found
        if kind == "parenthesized_expression" and node.named_child_count == 1:
            return self.expr(node.named_children[0])
        if kind == "binary_expression":
            left = self.expr(node.child_by_field_name("left"))
            right = self.expr(node.child_by_field_name("right"))
            return _binary(node.child_by_field_name("operator").text.decode(), left, right, node)
        if kind == "unary_expression":
            operand = self.expr(node.child_by_field_name("argument"))
            operator = node.child_by_field_name("operator").text.decode()
            if operator == "!":
                return Val(int(operand.value == 0), 32)
            ops = {"-": -operand.value, "~": ~operand.value, "+": operand.value}
            if operator not in ops:
                raise Unsupported(node, f"the operator `{operator}`")
            return Val.of(ops[operator], operand.bits)
        if kind == "conditional_expression":
            chosen = (
                "consequence"
                if self.expr(node.child_by_field_name("condition")).value
                else "alternative"
            )
            return self.expr(node.child_by_field_name(chosen))
        if kind == "cast_expression":
            return self._cast(
                node.child_by_field_name("type"), node.child_by_field_name("value"), node
            )
        if kind == "sizeof_expression":
            return Val(self._sizeof(node), 64)
        if kind == "call_expression":
            return self._call(node)
        raise Unsupported(node, f"the expression `{node.text.decode()}`")

    def _cast(self, type_node: Node, value: Node, node: Node) -> Val:
        name = _type_name(type_node)
        if name not in WIDTHS:
            raise Unsupported(node, f"a cast to `{name}`")
        return Val.of(self.expr(value).value, WIDTHS[name])

    def _call(self, node: Node) -> Val:
        function = node.child_by_field_name("function")
        args = [
            n for n in node.child_by_field_name("arguments").named_children if n.type != "comment"
        ]
        if function.type == "field_expression" and not args:
            # ExecutorAddr::getValue() of an address parameter.
            base = function.child_by_field_name("argument")
            member = function.child_by_field_name("field").text.decode()
            if (
                base.type == "identifier"
                and base.text.decode() in self.addresses
                and member == "getValue"
            ):
                return Val.of(self._lookup(base).value, 64)
        if function.type == "primitive_type" and len(args) == 1:
            return self._cast(function, args[0], node)  # uint32_t(x)
        if function.type == "template_function" and len(args) == 1:
            name = function.child_by_field_name("name").text.decode()
            targs = function.child_by_field_name("arguments").named_children
            if name in ("static_cast", "uint64_t") and len(targs) == 1:
                return self._cast(targs[0], args[0], node)
        raise Unsupported(node, f"the call `{node.text.decode()}`")

    def _sizeof(self, node: Node) -> int:
        operand = node.child_by_field_name("value") or node.child_by_field_name("type")
        while operand is not None and operand.type == "parenthesized_expression":
            operand = operand.named_children[0]
        if operand is None:
            raise Unsupported(node, "sizeof")
        if operand.type == "type_descriptor":
            name = _type_name(operand)
            if name in SIZES:
                return SIZES[name]
            raise Unsupported(node, f"sizeof({name})")
        if operand.type == "identifier":
            name = operand.text.decode()
            if name in self.addresses:
                return 8
            value = self._lookup(operand)
            if isinstance(value, Arr):
                return len(value.values) * value.size
            return max(1, value.bits // 8)
        raise Unsupported(node, f"the expression `{node.text.decode()}`")


_COMPARE = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
    "&&": lambda a, b: bool(a and b),
    "||": lambda a, b: bool(a or b),
}
_ARITH = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "|": lambda a, b: a | b,
    "&": lambda a, b: a & b,
    "^": lambda a, b: a ^ b,
    "<<": lambda a, b: a << b,
    ">>": lambda a, b: a >> b,
}


def _binary(operator: str, left: Val, right: Val, node: Node) -> Val:
    """C's unsigned arithmetic: the wider operand's width (a shift: the left's)."""
    if operator in _COMPARE:
        return Val(int(_COMPARE[operator](left.value, right.value)), 32)
    if operator not in _ARITH:
        raise Unsupported(node, f"the operator `{operator}`")
    if operator in ("<<", ">>"):
        if right.value >= left.bits:
            raise Unsupported(node, f"a shift by {right.value} of a {left.bits}-bit value")
        return Val.of(_ARITH[operator](left.value, right.value), left.bits)
    return Val.of(_ARITH[operator](left.value, right.value), max(left.bits, right.bits))


def _sum_terms(node: Node) -> list[Node]:
    """The terms of `a + (b + c)`, parentheses dropped."""
    if node.type == "parenthesized_expression" and node.named_child_count == 1:
        return _sum_terms(node.named_children[0])
    if node.type == "binary_expression" and node.child_by_field_name("operator").text == b"+":
        return _sum_terms(node.child_by_field_name("left")) + _sum_terms(
            node.child_by_field_name("right")
        )
    return [node]


def _identifiers(node: Node) -> list[Node]:
    stack, out = [node], []
    while stack:
        current = stack.pop()
        if current.type == "identifier":
            out.append(current)
        stack.extend(reversed(current.children))
    return out


def _param_name(param: Node) -> str:
    declarator = param.child_by_field_name("declarator")
    while declarator is not None and declarator.type != "identifier":
        declarator = declarator.child_by_field_name("declarator")
    return declarator.text.decode() if declarator is not None else ""


def parameters(fn: ResolverFn) -> list[tuple[str, str]]:
    """(name, type) of the writer's parameters, in order."""
    declarator = fn.node.child_by_field_name("declarator")
    params = declarator.child_by_field_name("parameters") if declarator else None
    return [
        (_param_name(p), _type_name(p.child_by_field_name("type")))
        for p in (params.named_children if params else [])
        if p.type == "parameter_declaration"
    ]


def run_writer(
    cpp: Source, fn: ResolverFn, args: dict[str, int], order: str, constants: dict[str, int]
) -> list[Write]:
    """Every memcpy into the working memory, in order, for these argument values.
    Raises AsmgenError (file:line) for a write it cannot model."""
    try:
        return _Run(cpp, fn, args, order, constants).run()
    except Unsupported as exc:
        raise cpp.error(
            f"{fn.name}: cannot evaluate {exc} (asmgen reads straight-line memcpy writes)",
            exc.node,
        ) from None
