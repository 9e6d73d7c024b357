"""Render a Jinja assembly template for one spec.

The output keeps, for every line, the template line it came from, so that an
assembler error can point at ``template:line``.  Patch fields are rendered
through ``patch(name, kind)``; the caller chooses the value each field gets,
which is how layout discovers where the field's bits land.  Every rendered
line also remembers which `patch` calls it holds.

``label(name)`` gives a label's offset in the assembled code, for PC-relative
operands that an assembler will not compute from a label difference (llvm-mc
rejects them as immediates on some arches).  The first render, with
``labels=None``, gets 0 for every label; layout assembles, renders again with the offsets it
learnt, and repeats until they settle.
"""

from __future__ import annotations

import hashlib
import marshal
import re
import sys
import threading
import traceback
import types
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import jinja2

from asmgen.build import sandbox, toolcache
from asmgen.build.frame import Frame
from asmgen.build.patchkinds import KINDS
from asmgen.build.sandbox import MAX_TEMPLATE_BYTES, BoundedEnvironment
from asmgen.errors import AsmgenError
from asmgen.spec import Spec

_MARK = "\ue000"  # private-use, never whitespace, never in a template
_FIELD = "\ue001"  # brackets the index of a `patch` call in the rendered text
_TAG = re.compile(r"\{%.*?%\}|\{#.*?#\}")


@dataclass(frozen=True)
class SourceLine:
    text: str
    template_line: int
    fields: tuple[int, ...] = ()  # indices of the `patch` calls on this line


@dataclass(frozen=True)
class FieldUse:
    """One `patch(name, kind)` call in the rendered template, in call order."""

    patch: str
    kind: str


@dataclass(frozen=True)
class Rendered:
    path: Path
    lines: tuple[SourceLine, ...]
    fields: tuple[FieldUse, ...]
    labels_used: frozenset[str] = frozenset()  # names passed to `label()`
    field_lines: tuple[int | None, ...] = ()  # template line of each `patch` call


class _MarkingLoader(jinja2.BaseLoader):
    """Appends the template line number to every line that can produce text."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def get_source(self, environment, template):
        # One file per spec: `include` and `extends` of anything (itself too,
        # which would recurse forever) find nothing.
        if template != self.path.name:
            raise jinja2.TemplateNotFound(template)
        try:
            with self.path.open("rb") as handle:
                data = handle.read(MAX_TEMPLATE_BYTES + 1)
        except OSError as exc:
            raise AsmgenError(f"cannot read template: {exc.strerror}", self.path) from None
        return _marked(str(self.path), data), str(self.path), lambda: True


@lru_cache(maxsize=64)
def _marked(path: str, data: bytes) -> str:
    """The template's text with its line marks, checked and marked once per
    text (layout renders each template a dozen times)."""
    if len(data) > MAX_TEMPLATE_BYTES:
        raise AsmgenError(
            f"template is larger than {MAX_TEMPLATE_BYTES // 1024} KiB", Path(path), 1
        )
    try:
        # A byte-order mark some editors write at the top is not template text.
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise AsmgenError("template is not UTF-8 text", Path(path), line) from None
    for mark in (_MARK, _FIELD):
        if mark in text:
            line = text[: text.index(mark)].count("\n") + 1
            message = f"template holds U+{ord(mark):04X}, a character asmgen reserves"
            raise AsmgenError(message, Path(path), line)
    marked = []
    # Jinja counts lines at \r\n, \r and \n; so must the marks.
    for number, line in enumerate(re.split(r"\r\n|\r|\n", text), start=1):
        if _TAG.sub("", line).strip():
            line = f"{line}{_MARK}{number}{_MARK}"
        marked.append(line)
    return "\n".join(marked)


def _template_error(exc: Exception, path: Path) -> AsmgenError:
    line = getattr(exc, "lineno", None)
    if line is None:
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(path)]
        line = frames[-1].lineno if frames else None
    if isinstance(exc, jinja2.TemplateNotFound):
        message = f"cannot include {exc.name!r}: a template is one self-contained file"
    elif isinstance(exc, jinja2.TemplateError | AsmgenError):
        message = getattr(exc, "message", None) or str(exc)
    else:
        message = f"{type(exc).__name__}: {exc}"
    return AsmgenError(f"template: {message}", path, line)


_PACKAGE = str(Path(__file__).resolve().parent.parent)


def _raised_in_asmgen(exc: BaseException, path: Path) -> bool:
    """True when the exception comes from asmgen's own code (a bug to show with
    its traceback), not from an expression the template evaluated."""
    # The sandbox carries out the template's operators, filters and calls: its
    # frames are the template's.
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename != sandbox.__file__]
    last = frames[-1].filename if frames else str(path)
    return last != str(path) and last.startswith(_PACKAGE)


def _caller_line(template: jinja2.Template, path: Path) -> int | None:
    """The template line of the expression that is calling a template function."""
    frame = sys._getframe(2)
    while frame is not None and frame.f_code.co_filename != str(path):
        frame = frame.f_back
    return template.get_corresponding_lineno(frame.f_lineno) if frame else None


_COMPILED: dict[tuple[str, str], jinja2.Template] = {}
# A parallel build (gather.py) renders from threads: each template compiles once.
_COMPILING = threading.Lock()
# The code generator (sandbox.py) and the options (here) compiled code comes from.
_GENERATOR = hashlib.sha256(
    Path(sandbox.__file__).read_bytes() + Path(__file__).read_bytes()
).hexdigest()
_OTHER_FILES = (
    jinja2.nodes.Include,
    jinja2.nodes.Extends,
    jinja2.nodes.Import,
    jinja2.nodes.FromImport,
)


def _parser_line(exc: BaseException) -> int | None:
    """The template line Jinja's parser was reading when `exc` stopped it."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        parser = tb.tb_frame.f_locals.get("self")
        if isinstance(parser, jinja2.parser.Parser):
            line = parser.stream.current.lineno
        tb = tb.tb_next
    return line


# Compiled code lives in <cache>/jinja/ (its key names the template's path,
# so scratch copies add entries); the most recently used KEEP_CODE stay.
CODE_AREA = "jinja"
KEEP_CODE = 512


def _code_key(template_path: Path, source: str) -> list[str]:
    """What a template's compiled code depends on: its marked text and name,
    Jinja, Python (the code is marshalled), and the code generator and
    options of this module and sandbox.py, as they were when imported."""
    return ["jinja-code", jinja2.__version__, sys.version, _GENERATOR, str(template_path), source]


def _cached_code(key: list[str]):
    data = toolcache.load_bytes(key, ".code", CODE_AREA)
    if data is None:
        return None
    try:
        code = marshal.loads(data)
    except (EOFError, ValueError, TypeError):
        return None
    return code if isinstance(code, types.CodeType) else None


def _compile(template_path: Path) -> jinja2.Template:
    """Compile once per template text: layout renders each template several
    times.  The code is also kept in asmgen's cache (toolcache.py), so that
    other processes skip Jinja's lexer, parser and code generator."""
    loader = _MarkingLoader(template_path)
    source, _, _ = loader.get_source(None, template_path.name)
    key = (str(template_path), source)
    with _COMPILING:
        if key not in _COMPILED:
            env = BoundedEnvironment(
                loader=loader,
                undefined=jinja2.StrictUndefined,
                trim_blocks=True,
                lstrip_blocks=True,
                keep_trailing_newline=True,
                autoescape=False,
            )
            code_key = _code_key(template_path, source)
            code = _cached_code(code_key)
            if code is None:
                code = _checked_code(env, template_path, source)
                toolcache.store_bytes(code_key, marshal.dumps(code), ".code", CODE_AREA)
                toolcache.prune(CODE_AREA, KEEP_CODE)
            _COMPILED[key] = env.template_class.from_code(
                env, code, env.make_globals(None), lambda: True
            )
    return _COMPILED[key]


def _checked_code(env: BoundedEnvironment, template_path: Path, source: str) -> types.CodeType:
    """The template's code; a syntax error or a use of another file is one error."""
    try:
        tree = env.parse(source, template_path.name, str(template_path))
        code = env.compile(tree, template_path.name, str(template_path))
    except jinja2.TemplateSyntaxError as exc:
        line = exc.lineno
        if (exc.message or "").startswith("Unexpected end of template"):
            line = len(source.splitlines())  # Jinja names the last text's first line
        raise AsmgenError(f"template syntax: {exc.message}", template_path, line) from None
    except (RecursionError, MemoryError, SyntaxError) as exc:
        # Brackets, blocks or expressions nested thousands deep: Jinja's
        # parser (or Python's, compiling what Jinja made) runs out of stack.
        raise AsmgenError(
            "template syntax: nests too deeply", template_path, _parser_line(exc)
        ) from None
    for node in tree.find_all(_OTHER_FILES):
        raise AsmgenError(
            f"template: {type(node).__name__.lower()} of another template; "
            "a template is one self-contained file",
            template_path,
            node.lineno,
        )
    return code


def render(
    spec: Spec,
    template_path: Path,
    frame: Frame,
    field_value: Callable[[int, FieldUse], int],
    labels: dict[str, int] | None = None,
    reentry=None,
) -> Rendered:
    """Render `template_path`; `field_value(index, use)` gives each field's encoded bits.

    `labels` are the offsets `label()` returns; None on a first pass (all 0).
    `reentry` (build/reentry.py's names) renders the template for LLVM's newer
    reentry path instead of OrcABISupport's table: templates see it as
    `reentry`, and `cfi(text)` renders its call-frame directive only then.
    """
    template = _compile(template_path)
    fields: list[FieldUse] = []
    field_lines: list[int | None] = []

    used: set[str] = set()

    def patch(name: str, kind: str, signed: bool = False) -> str:
        """The field's operand text.  `signed` writes a field whose top bit is set as
        a negative number, for instructions whose immediate is signed (an add-immediate)."""
        # The name becomes a C++ and Python identifier (`<Name>Offset`).
        if not (isinstance(name, str) and name.isascii() and name.isidentifier()):
            raise AsmgenError(f"template: patch name {name!r} is not an identifier")
        if not isinstance(kind, str) or kind not in KINDS:
            raise AsmgenError(
                f"template: unknown patch kind {kind!r}; known: {', '.join(sorted(KINDS))}"
            )
        pkind = KINDS[kind]
        use = FieldUse(name, kind)
        index = len(fields)
        value = field_value(index, use)
        fields.append(use)
        field_lines.append(_caller_line(template, template_path))
        marker = f"{_FIELD}{index}{_FIELD}"
        if not pkind.carries_address:
            return marker
        if signed and value >> (pkind.bits - 1):
            value -= 1 << pkind.bits
        return hex(value) + marker

    def label(name: str) -> int:
        if not isinstance(name, str):
            raise AsmgenError(f"template: label({name!r}): a label name is a string")
        used.add(name)
        if labels is None:
            return 0
        if name not in labels:
            raise AsmgenError(f"template: label({name!r}): no such label")
        return labels[name]

    context = {
        "spec": spec,
        "arch": spec.arch_info,
        "call": spec.call,
        "resolver": spec.resolver,
        "trampoline": reentry.trampoline if reentry is not None else spec.trampoline,
        "frame": frame,
        "reentry": reentry,
        "cfi": (lambda text: text) if reentry is not None else (lambda text: ""),
        "table": spec.table,
        "patch": patch,
        "label": label,
        "hex": hex,
    }
    try:
        text = template.environment.render_bounded(template, context)
    except RecursionError as exc:
        located = _template_error(exc, template_path)
        message = "template: calls nest too deeply (a macro that calls itself without end?)"
        raise AsmgenError(message, template_path, located.line) from None
    except MemoryError:
        raise AsmgenError("template: out of memory", template_path) from None
    except AsmgenError as exc:
        if exc.path is None:
            located = _template_error(exc, template_path)
            raise AsmgenError(exc.message, template_path, located.line) from None
        raise
    except jinja2.TemplateError as exc:
        raise _template_error(exc, template_path) from None
    except Exception as exc:
        # 1/0, a wrong call, ...: the template's fault unless our code raised it.
        if _raised_in_asmgen(exc, template_path):
            raise
        raise _template_error(exc, template_path) from None

    lines = []
    for raw in text.split("\n"):
        numbers = re.findall(f"{_MARK}(\\d+){_MARK}", raw)
        uses = tuple(int(n) for n in re.findall(f"{_FIELD}(\\d+){_FIELD}", raw))
        body = re.sub(f"{_MARK}\\d+{_MARK}|{_FIELD}\\d+{_FIELD}", "", raw).rstrip()
        if body.strip():
            lines.append(SourceLine(body, int(numbers[-1]) if numbers else 0, uses))
        elif uses:
            raise AsmgenError(
                "template: a patch field is rendered on a line without a statement",
                template_path,
                int(numbers[-1]) if numbers else None,
            )
    return Rendered(template_path, tuple(lines), tuple(fields), frozenset(used), tuple(field_lines))
