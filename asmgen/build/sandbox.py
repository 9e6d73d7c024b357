"""The Jinja environment templates render in: sandboxed, and bounded.

A template is a program, so a mistake in one can loop for ever or build a
string of gigabytes.  A template file is at most `MAX_TEMPLATE_BYTES`, and
rendering is refused, with the template line, as soon as one render passes
any of these limits (a real template stays far below them: a resolver
renders ~100 lines in a few hundred steps):

- `MAX_STEPS` loop iterations and calls (macros, functions, methods) in all;
- `MAX_VALUE` characters or items in any one string, list or `range` the
  template makes (`*`, `+`, `~`, `%`, `format`, filters and methods);
- `MAX_INTEGER_BITS` bits in an integer `*` or `**` makes;
- `MAX_OUTPUT` characters of rendered text (macros and `set` blocks count).

These count work, not time, so a template passes or fails alike on every
machine.  One more limit is time: a render that takes more than
`MAX_SECONDS` (a body of slow steps the counts allow) stops at its next step.
Jinja's sandbox keeps templates away from Python internals (`__class__` and
the like).
"""

from __future__ import annotations

import re
import string
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from functools import update_wrapper
from typing import Any

from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

MAX_TEMPLATE_BYTES = 0x40000
MAX_STEPS = 20_000
MAX_VALUE = 0x10000
MAX_INTEGER_BITS = 4096
MAX_OUTPUT = 0x40000
MAX_SECONDS = 2.0

_SIZED = (str, bytes, list, tuple, dict, range)
# Width and precision digits of a %-conversion, and its `*` (taken from the arguments).
_PERCENT_SPEC = re.compile(r"%[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")
_DIGITS = re.compile(r"\d+")


class BudgetExceeded(SecurityError):
    """A template went past one of the render limits."""


class Budget:
    """The work one render has done."""

    def __init__(self) -> None:
        self.steps = 0
        self.output = 0
        # The thread's own CPU time: a parallel build's other threads do not count.
        self.deadline = time.thread_time() + MAX_SECONDS

    def step(self) -> None:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise BudgetExceeded(
                f"more than {MAX_STEPS} loop iterations and calls in one render "
                "(does a loop run for ever?)"
            )
        if time.thread_time() > self.deadline:
            raise BudgetExceeded(f"one render takes more than {MAX_SECONDS:g} seconds")

    def produce(self, text: str) -> str:
        # Text captured by macros and `set` blocks counts too, as it is made.
        self.output += len(text)
        if self.output > MAX_OUTPUT:
            raise BudgetExceeded(f"the template renders more than {MAX_OUTPUT:#x} characters")
        return text


def _check_size(value: Any, what: str) -> Any:
    if isinstance(value, _SIZED):
        # len() of a range past sys.maxsize overflows; its arithmetic does not.
        size = _range_size(value) if isinstance(value, range) else len(value)
        if size > MAX_VALUE:
            raise BudgetExceeded(f"{what} makes a value of {size} items (limit {MAX_VALUE:#x})")
    return value


def _range_size(items: range) -> int:
    return max(
        0, (items.stop - items.start + items.step - (1 if items.step > 0 else -1)) // items.step
    )


def _check_count(count: Any, what: str) -> None:
    if isinstance(count, int) and count > MAX_VALUE:
        raise BudgetExceeded(f"{what} {count} is above the template limit ({MAX_VALUE:#x})")


def _check_percent_format(text: str) -> None:
    for match in _PERCENT_SPEC.finditer(text):
        for part in match.groups():
            if part == "*":
                raise BudgetExceeded("a `*` width in %-formatting (write the width in the text)")
            if part is not None:
                _check_count(int(part), "a %-format width")


def _check_brace_format(text: str) -> None:
    try:
        specs = [spec for _, _, spec, _ in string.Formatter().parse(text) if spec]
    except ValueError:
        return  # format() itself reports the malformed string
    for spec in specs:
        if "{" in spec:
            raise BudgetExceeded("a nested field in a format spec (write the width in the text)")
        for digits in _DIGITS.findall(spec):
            _check_count(int(digits), "a format width")


def _mul(left: Any, right: Any) -> Any:
    both_int = isinstance(left, int) and isinstance(right, int)
    if both_int and left.bit_length() + right.bit_length() > MAX_INTEGER_BITS:
        raise BudgetExceeded(f"an integer product wider than {MAX_INTEGER_BITS} bits")
    for sized, count in ((left, right), (right, left)):
        if isinstance(sized, _SIZED) and isinstance(count, int):
            _check_count(len(sized) * count, "a repetition of")
    return left * right


def _pow(left: Any, right: Any) -> Any:
    growing = isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1
    if growing and (right > MAX_INTEGER_BITS or left.bit_length() * right > MAX_INTEGER_BITS):
        raise BudgetExceeded(f"a power wider than {MAX_INTEGER_BITS} bits")
    return left**right


def _mod(left: Any, right: Any) -> Any:
    if isinstance(left, str):
        _check_percent_format(left)
    return left % right


_BINOPS: dict[str, Callable[[Any, Any], Any]] = {
    "*": _mul,
    "**": _pow,
    "%": _mod,
    "+": lambda left, right: left + right,
}


def _bounded_range(*args: int) -> range:
    return _check_size(range(*args), "range()")


def _bounded_filter(name: str, function: Callable) -> Callable:
    """A filter whose integer arguments (widths, counts) are checked first."""
    # `@pass_context` and the like put the context or environment before the value.
    first = 2 if hasattr(function, "jinja_pass_arg") else 1

    def bounded(*args: Any, **kwargs: Any) -> Any:
        if name == "format":  # %-formatting: the arguments are values, not sizes
            if len(args) >= first and isinstance(args[first - 1], str):
                _check_percent_format(args[first - 1])
        else:
            for value in [*args[first:], *kwargs.values()]:
                _check_count(value, f"filter {name!r} argument")
        return _check_size(function(*args, **kwargs), f"filter {name!r}")

    return update_wrapper(bounded, function)


class _BoundedCodeGenerator(CodeGenerator):
    """Routes every loop's iterable, every `~` and every piece of output
    through the environment's budget."""

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        node.iter = nodes.Call(
            nodes.EnvironmentAttribute("bounded_loop"), [node.iter], [], None, None
        )
        super().visit_For(node, frame)

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.bounded_concat((")
        for part in node.nodes:
            self.visit(part, frame)
            self.write(", ")
        self.write("))")

    def _output_const_repr(self, group) -> str:
        return f"environment.budget.produce({super()._output_const_repr(group)})"

    def _output_child_pre(self, node, frame, finalize) -> None:
        self.write("environment.budget.produce(")
        super()._output_child_pre(node, frame, finalize)

    def _output_child_post(self, node, frame, finalize) -> None:
        super()._output_child_post(node, frame, finalize)
        self.write(")")


class BoundedEnvironment(SandboxedEnvironment):
    code_generator_class = _BoundedCodeGenerator
    intercepted_binops = frozenset(_BINOPS)

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        # Each thread's render has a budget of its own (a parallel build renders
        # one template in several threads at once, gather.py).
        self._renders = threading.local()
        self.globals["range"] = _bounded_range
        # lipsum(n) writes n paragraphs in one call.
        self.globals.pop("lipsum", None)
        self.filters = {name: _bounded_filter(name, f) for name, f in self.filters.items()}

    def call_binop(self, context, operator: str, left: Any, right: Any) -> Any:
        return _check_size(_BINOPS[operator](left, right), f"{operator!r}")

    def call(__self, __context, __obj, *args: Any, **kwargs: Any) -> Any:
        __self.budget.step()
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, _SIZED):
            # str.ljust(n), str.zfill(n), ...: n is a size.
            for value in [*args, *kwargs.values()]:
                _check_count(value, f"{type(owner).__name__} method argument")
        result = super().call(__context, __obj, *args, **kwargs)
        return _check_size(result, "a call")

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        text = value.__self__

        def checked(*args: Any, **kwargs: Any) -> str:
            _check_brace_format(text)
            return wrapped(*args, **kwargs)

        return update_wrapper(checked, wrapped)

    def bounded_loop(self, iterable: Iterable) -> Iterator:
        for item in iterable:
            self.budget.step()
            yield item

    def bounded_concat(self, parts: tuple) -> str:
        return _check_size("".join(map(str, parts)), "'~'")

    @property
    def budget(self) -> Budget:
        if not hasattr(self._renders, "budget"):
            self._renders.budget = Budget()
        return self._renders.budget

    def render_bounded(self, template, context: dict) -> str:
        """Render `template` with a fresh budget."""
        self._renders.budget = Budget()
        return template.render(context)
