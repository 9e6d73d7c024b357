"""Spec values that become names or text in generated code, and what each may be.

`abi` names a global of the generated Python module, a tables.json key, the
files `docs/abi/<abi>.md` and `.svg`, and the ORC-ready class `<abi>_ORCABI`
of orc_resolvers_llvm.h; `llvm_class` (default `Orc<abi>`) names a C++ struct
in orc_resolvers.h and a class in LLVM's sources.  Both headers open
namespace asmgen and may be included together, so a class of one must not be
a name of the other.
`description` and `expected_violations[].reason` are copied into comments,
docstrings and Markdown.  A value that would break any of those files is
refused when the spec loads, so every command agrees on it.

The names the generated files define themselves are listed here;
tests/test_bad_input.py reads the checked-in outputs and fails when an
emitter adds a name this module does not know.
"""

from __future__ import annotations

import builtins
import keyword
import re
import unicodedata
from typing import Annotated

from pydantic import AfterValidator

MAX_NAME = 64
MAX_CLASS_NAME = MAX_NAME + len("Orc")  # the default class is Orc<abi>
MAX_DESCRIPTION = 200
MAX_REASON = 2000

# Globals of generated/orc_resolvers.py besides the tables.
PYTHON_MODULE_NAMES = frozenset(
    {
        "Callable",
        "ENCODERS",
        "Field",
        "Mapping",
        "PatchPoint",
        "RESOLVER_ADDR",
        "RESOLVER_PTR",
        "ResolverTable",
        "STUB_PTR",
        "TABLES",
        "Unit",
        "UnitField",
        "VALUE_BITS",
        "annotations",
        "apply_field",
        "apply_patches",
        "dataclass",
        "field_value",
        "pointer_slot_offset",
        "write_stubs",
        "write_trampolines",
        "write_units",
    }
)

# The suffix of orc_resolvers_llvm.h's classes (<abi>_ORCABI).
ORCABI_SUFFIX = "_ORCABI"

# Names generated/orc_resolvers.h and orc_resolvers_llvm.h declare in their
# namespace, the namespaces they qualify names with (a struct `llvm` in
# namespace asmgen would hide ::llvm), and the standard names they rely on.
CPP_HEADER_NAMES = frozenset(
    {
        "asmgen",
        "detail",
        "displacement",
        "patchField",
        "writeWord",
        "orcabi_detail",
        "placeFrame",
        "EHFrameRegistry",
        "WithEHFrames",
        "registerResolverEHFrame",
        "registerTrampolineEHFrame",
        "llvm",
        "std",
        "assert",
        "memcpy",
        "size_t",
        "ptrdiff_t",
        "intptr_t",
        "uintptr_t",
        *(f"{sign}int{bits}_t" for sign in ("", "u") for bits in (8, 16, 32, 64)),
    }
)

# C++20 keywords and alternative tokens.
_CPP_KEYWORDS = """
alignas alignof and and_eq asm auto bitand bitor bool break case catch char char8_t
char16_t char32_t class compl concept const consteval constexpr constinit const_cast
continue co_await co_return co_yield decltype default delete do double dynamic_cast else
enum explicit export extern false float for friend goto if inline int long mutable
namespace new noexcept not not_eq nullptr operator or or_eq private protected public
register reinterpret_cast requires return short signed sizeof static static_assert
static_cast struct switch template this thread_local throw true try typedef typeid
typename union unsigned using virtual void volatile wchar_t while xor xor_eq
"""
CPP_KEYWORDS = frozenset(_CPP_KEYWORDS.split())

# Files asmgen docs writes beside the per-ABI pages.
DOCS_FILES = frozenset({"index"})

_CPP_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def valid(problem: str | None, value):
    """`value`, or the validation error `problem` (a pydantic field validator's
    result): `valid(abi_problem(abi), abi)`."""
    if problem:
        raise ValueError(problem)
    return value


def abi_problem(abi: str) -> str | None:
    """Why `abi` cannot name a table, or None.  (The schema checks its pattern.)"""
    if len(abi) > MAX_NAME:
        return f"{len(abi)} characters; at most {MAX_NAME}"
    if keyword.iskeyword(abi):
        return f"{abi!r} is a Python keyword, and the generated module names a global after it"
    if abi in PYTHON_MODULE_NAMES or hasattr(builtins, abi):
        return f"{abi!r} is a name the generated Python module already uses"
    if abi.lower() in DOCS_FILES:
        return f"{abi!r} is the name of a page asmgen docs writes (docs/abi/{abi.lower()}.md)"
    if "__" in abi + ORCABI_SUFFIX:
        return (
            f"{abi + ORCABI_SUFFIX!r}, its orc_resolvers_llvm.h class, would be reserved to "
            "the C++ implementation (a double underscore)"
        )
    if abi.endswith(ORCABI_SUFFIX):
        return f"it ends in {ORCABI_SUFFIX}, the suffix asmgen adds to name its ORC-ready classes"
    return None


def class_problem(name: str) -> str | None:
    """Why `name` cannot be the C++ class, or None."""
    if not _CPP_IDENTIFIER.fullmatch(name):
        return f"{name!r} is not a C++ identifier"
    if len(name) > MAX_CLASS_NAME:
        return f"{len(name)} characters; at most {MAX_CLASS_NAME}"
    if name in CPP_KEYWORDS:
        return f"{name!r} is a C++ keyword"
    if "__" in name or re.match(r"_[A-Z]", name):
        return f"{name!r} is reserved to the C++ implementation (a double underscore, or _X)"
    if name in CPP_HEADER_NAMES:
        return f"{name!r} is a name the generated C++ headers already use"
    if name.endswith(ORCABI_SUFFIX):
        return f"it ends in {ORCABI_SUFFIX}, the suffix of orc_resolvers_llvm.h's classes"
    return None


def _bad_character(text: str, newlines: bool) -> str | None:
    for char in text:
        if char == "\n" and newlines:
            continue
        # Letters, marks, numbers, punctuation, symbols and spaces; not control,
        # format (a byte-order mark), private-use or unassigned characters.
        if not (char.isprintable() or unicodedata.category(char) == "Zs"):
            return f"U+{ord(char):04X} ({unicodedata.name(char, 'a control character')})"
    return None


def description_problem(text: str) -> str | None:
    if len(text) > MAX_DESCRIPTION:
        return f"{len(text)} characters; one line of at most {MAX_DESCRIPTION}"
    if bad := _bad_character(text, newlines=False):
        return f"holds {bad}; it is one line of text"
    return None


def reason_problem(text: str) -> str | None:
    if len(text) > MAX_REASON:
        return f"{len(text)} characters; at most {MAX_REASON}"
    if bad := _bad_character(text, newlines=True):
        return f"holds {bad}"
    return None


# Field types of free text, for the spec's and the convention files' models.
OneLine = Annotated[str, AfterValidator(lambda text: valid(description_problem(text), text))]
Text = Annotated[str, AfterValidator(lambda text: valid(reason_problem(text), text))]
