"""Read YAML safely, refusing duplicate keys and tags, and remember each key's line."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import yaml

from asmgen.errors import AsmgenError

_PLAIN_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")


# Limits far above any real spec (a spec is ~150 nodes, 3 levels deep), so that
# nested aliases ("billion laughs") or deep nesting fail at once, not after
# minutes and gigabytes.
MAX_NODES = 10_000
MAX_DEPTH = 16


class _LineLoader(yaml.SafeLoader):
    """Safe loader that refuses duplicate keys and records each key's line."""

    nodes_built = 0
    what = "spec"  # the kind of file, for messages


# libyaml's parser builds the same nodes, with the same line marks, some 20
# times faster.  Text it refuses, or that pyyaml's reader would refuse, takes
# the pure-Python path, so every syntax error reads as pyyaml reports it.
# libyaml composes nested nodes by C recursion and crashes some twenty
# thousand levels down: text nested deeper than FAST_NESTING is refused from
# libyaml's event parser (which keeps a stack instead), at the first node
# deeper than MAX_DEPTH, as _to_python refuses shallower text.  (pyyaml's
# Python composer runs out of stack a few hundred levels down, and says
# only "nests too deeply" at line 1.)
FAST_NESTING = 2000
_FastLoader = None
if getattr(yaml, "__with_libyaml__", False):

    class _FastLoader(yaml.CSafeLoader):  # type: ignore[no-redef]
        nodes_built = 0
        what = "spec"


def _refuse_deep(text: str, path: Path) -> bool:
    """Raise if a collection in `text` nests deeper than FAST_NESTING; False
    if libyaml cannot parse the text, True if it can."""
    # Each level takes a bracket, or a column of the line it starts on.
    lines = text.splitlines()
    if text.count("[") + text.count("{") + max(map(len, lines), default=0) <= FAST_NESTING:
        return True
    events = _FastLoader(text)
    depth, first = 0, None
    try:
        while events.check_event():
            event = events.get_event()
            if isinstance(event, yaml.NodeEvent) and depth > MAX_DEPTH and first is None:
                first = event.start_mark
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > FAST_NESTING:
                    problem = f"YAML nests deeper than {MAX_DEPTH} levels"
                    raise AsmgenError(problem, path, first.line + 1, first.column + 1)
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError:
        return False
    finally:
        events.dispose()
    return True


def _compose(text: str, what: str, path: Path) -> tuple[_LineLoader, yaml.Node | None]:
    """A loader for `text` and the root node it composed (None: no document)."""
    if (
        _FastLoader is not None
        and not yaml.reader.Reader.NON_PRINTABLE.search(text)
        and _refuse_deep(text, path)
    ):
        fast = _FastLoader(text)
        fast.what = what
        try:
            return fast, fast.get_single_node()
        except yaml.YAMLError:
            fast.dispose()
    loader = _LineLoader(text)
    loader.what = what
    try:
        return loader, loader.get_single_node()
    except BaseException:
        loader.dispose()
        raise


def _to_python(
    loader: _LineLoader, node: yaml.Node, key: tuple, where: dict, path: Path, open_=()
) -> Any:
    where[key] = node.start_mark.line + 1
    loader.nodes_built += 1
    if len(key) > MAX_DEPTH:
        problem = f"YAML nests deeper than {MAX_DEPTH} levels"
    elif loader.nodes_built > MAX_NODES:
        problem = f"YAML expands to more than {MAX_NODES} values (an alias counts each use)"
    else:
        problem = None
    if problem:
        raise AsmgenError(problem, path, node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.CollectionNode):
        if node.tag not in _PLAIN_TAGS:
            # Built here rather than by the loader, so a tag would be ignored.
            raise AsmgenError(
                f"YAML tag {node.tag!r} is not allowed in a {loader.what}",
                path,
                node.start_mark.line + 1,
                node.start_mark.column + 1,
            )
        # An alias to an enclosing node (`a: &x [*x]`) would recurse forever.
        if any(node is o for o in open_):
            raise AsmgenError(
                "recursive YAML alias", path, node.start_mark.line + 1, node.start_mark.column + 1
            )
        open_ = (*open_, node)
    if isinstance(node, yaml.MappingNode):
        result: dict = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise AsmgenError(
                    f"YAML merge keys (<<) are not allowed in a {loader.what}; write the "
                    "fields out",
                    path,
                    key_node.start_mark.line + 1,
                    key_node.start_mark.column + 1,
                )
            name = _construct(loader, key_node, path)
            if not isinstance(name, str):
                raise AsmgenError(
                    f"key {name!r} is not a string", path, key_node.start_mark.line + 1
                )
            if name in result:
                raise AsmgenError(
                    f"duplicate key {name!r}",
                    path,
                    key_node.start_mark.line + 1,
                    key_node.start_mark.column + 1,
                )
            result[name] = _to_python(loader, value_node, (*key, name), where, path, open_)
            where[(*key, name)] = key_node.start_mark.line + 1
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _to_python(loader, item, (*key, i), where, path, open_)
            for i, item in enumerate(node.value)
        ]
    return _construct(loader, node, path)


def _construct(loader: _LineLoader, node: yaml.Node, path: Path) -> Any:
    """The node's value; a tag that cannot read its text (`!!int abc`) is an error."""
    try:
        return loader.construct_object(node, deep=True)
    except yaml.YAMLError:
        raise
    except Exception:  # pyyaml's constructors raise what int(), dates, ... raise
        raise AsmgenError(
            f"YAML tag {node.tag!r} cannot read {str(node.value)[:40]!r}",
            path,
            node.start_mark.line + 1,
            node.start_mark.column + 1,
        ) from None


def freeze(value: Any) -> Any:
    """Lists become tuples so the strict, frozen models accept them."""
    if isinstance(value, list):
        return tuple(freeze(v) for v in value)
    if isinstance(value, dict):
        return {k: freeze(v) for k, v in value.items()}
    return value


# A spec is 1-3 KiB and a convention file up to ~9 KiB; reading stops past
# this, whatever the file's size.
MAX_FILE_BYTES = 0x10000


def yaml_files(folder: Path) -> list[Path]:
    """The folder's *.yaml files, sorted.  Hidden names are editors' lock, swap
    and backup files (`.#x.yaml`, often a dangling symlink); only regular files
    are read (not a FIFO, which blocks)."""
    return sorted(p for p in folder.glob("*.yaml") if not p.name.startswith(".") and p.is_file())


def read_text(path: Path, what: str) -> str:
    """The UTF-8 text of the YAML file `path` (a spec, a convention), read up
    to MAX_FILE_BYTES; a file that is no regular file (a FIFO would block),
    larger, or not UTF-8 is one error line."""
    try:
        # Non-blocking, so that opening a FIFO returns and fstat can refuse it.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise AsmgenError(f"{what} is not a regular file", path)
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise AsmgenError(f"cannot read {what}: {exc.strerror}", path) from None
    if len(data) > MAX_FILE_BYTES:
        raise AsmgenError(f"{what} is larger than {MAX_FILE_BYTES // 1024} KiB", path, 1)
    try:
        # pyyaml skips a byte-order mark, as the templates' loader does.
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise AsmgenError(f"{what} is not UTF-8 text", path, line) from None


def read_yaml(text: str, path: Path, what: str) -> tuple[dict, dict[tuple, int]]:
    """The mapping in `text` (lists as lists) and the line of every key in it;
    errors name `what` ("spec", ...) and the line."""
    try:
        loader, root = _compose(text, what, path)
        try:
            if root is None:
                raise AsmgenError(f"{what} is empty", path, 1)
            where: dict[tuple, int] = {}
            data = _to_python(loader, root, (), where, path)
        finally:
            loader.dispose()
    except RecursionError:
        raise AsmgenError(f"{what} nests too deeply", path, 1) from None
    except yaml.reader.ReaderError as exc:
        # A character YAML does not allow (a NUL, a C0 control): it has an offset only.
        line = text[: exc.position].count("\n") + 1
        char = exc.character if isinstance(exc.character, str) else chr(exc.character)
        raise AsmgenError(
            f"YAML: the character U+{ord(char):04X} is not allowed", path, line
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise AsmgenError(
            f"YAML syntax: {problem}",
            path,
            mark.line + 1 if mark else None,
            mark.column + 1 if mark else None,
        ) from None
    if not isinstance(data, dict):
        raise AsmgenError(f"{what} must be a mapping of fields", path, root.start_mark.line + 1)
    return data, where
