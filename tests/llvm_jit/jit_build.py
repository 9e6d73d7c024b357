"""Build and run lazy_jit_test.cpp, asmgen's ORC-ready classes in LLVM 19's
lazy JIT, and judge what it measured against expected.yaml.

The program is one g++ -O0 translation unit against Debian's llvm-19-dev
(`make llvm-dev` installs it).  Built executables are kept in a cache keyed
by the SHA-256 of everything the build reads: the compiler and LLVM versions,
the flags, the C++ source, the generated rows, the ORC-ready header and the
hook inputs below.  So a test session builds at most once, and not at all
while nothing changed.

LLVM's own classes run next to asmgen's: every `abi` row of expected.yaml
also declares the outcome of LLVM's class for that ABI wherever the
OrcABISupport.h the test compiles against defines one (`llvm::orc::Orc<ABI>`
or the spec's `llvm_class`): in LLVM 19, OrcX86_64_SysV; after `asmgen
patch`, every x86-64 System V class the patch adds.  Such a row runs
WithEHFrames<llvm::orc::CLASS, ABI_ORCABI> (the frames of the asmgen class
with the same code), and the test checks the two write the same bytes.

Hooks (environment variables, or an LlvmCode given to `build`), for building
LLVM's own code into the test:

  ASMGEN_JIT_EXTRA_SOURCES  C++ sources, objects or archives, separated by
      os.pathsep, compiled and linked into the test executable.  A patched
      OrcABISupport.cpp linked in replaces libLLVM's writers for LLVM's own
      classes (OrcX86_64_SysV, ...): the templates that call them are
      instantiated in the test's translation unit, so the executable's
      definitions are the ones called.
  ASMGEN_JIT_INCLUDE_FIRST  a folder searched for headers before LLVM's
      (the patched llvm/ExecutionEngine/Orc/OrcABISupport.h).
  ASMGEN_JIT_EXPECTED       an expected.yaml to judge by instead of this
      folder's.
  ASMGEN_JIT_CACHE_DIR      where executables are kept
      (default: ~/.cache/asmgen/llvm_jit).

`run_patched_tree` does it for a tree `asmgen patch` was applied to
(tests/llvm_jit/test_patched_llvm.py, tests/llvm_release.py).

As a script it builds, runs and prints the tables:
`python tests/llvm_jit/jit_build.py [--mode clobber] [--cpu NAME] [--iters N]`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from held_values import held_registers

from asmgen.emit.orc_header import SUFFIX, orcabi_class
from asmgen.patch import orc_source as orc
from asmgen.spec.files import spec_files

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
SOURCE = HERE / "lazy_jit_test.cpp"
EXPECTED = HERE / "expected.yaml"
HEADER = ROOT / "generated" / "orc_resolvers_llvm.h"
ORC_HEADER_REL = "llvm/ExecutionEngine/Orc/OrcABISupport.h"
LLVM_CONFIG = "llvm-config-19"
CXX = "g++"
# -O0: the test checks the resolver, not the test's own code, and -O1 builds
# no faster.  One translation unit: the LLVM headers are parsed once.
OPT = ("-O0", "-g0")
WARN = ("-Wall",)
VECTOR_UPPER = ("kept", "lost")
BACKTRACE_ENDS = ("complete", "complete-without-trampoline", "after-resolver", "at-trampoline")
# The conventions of lazy_jit_test.cpp's conv cases, and what a row may declare.
CALLER_CONVENTIONS = ("coldcc", "preserve_mostcc", "preserve_allcc")
CALLER_OUTCOMES = ("kept", "upper-lost", "lost")
# What the test session measured, printed at its end (conftest.py).
REPORTS: list[str] = []

# --------------------------------------------------------------- declarations


@dataclass(frozen=True)
class Row:
    label: str
    call_through: str
    stubs: str
    vector_upper: str
    backtrace: str
    abi: str | None = None
    # LLVM's class whose writers the row runs (a class of OrcABISupport.h).
    llvm_class: str | None = None
    # convention (CALLER_CONVENTIONS) -> outcome (CALLER_OUTCOMES)
    callers: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Writers:
    llvm: str
    asmgen: str
    same: bool


@dataclass(frozen=True)
class Expected:
    path: Path
    rows: tuple[Row, ...]
    writers: tuple[Writers, ...]
    # The classes of the OrcABISupport.h the rows were derived for.
    header_classes: frozenset[str] = frozenset()
    # conv case -> why every row loses its ymm values on every call
    callee_defects: dict = field(default_factory=dict)

    def running_llvm(self) -> Expected:
        """Only the rows that run LLVM's classes, and the writer comparisons."""
        rows = tuple(row for row in self.rows if row.llvm_class)
        return Expected(self.path, rows, self.writers, self.header_classes, self.callee_defects)

    def llvm_classes(self) -> list[str]:
        """LLVM's classes the rows run, in row order."""
        return list(dict.fromkeys(row.llvm_class for row in self.rows if row.llvm_class))


def expected_path() -> Path:
    return Path(os.environ.get("ASMGEN_JIT_EXPECTED") or EXPECTED)


def llvm_header_classes(header: Path) -> frozenset[str]:
    """The classes an OrcABISupport.h defines."""
    return frozenset(orc.classes(orc.load(header.parent, header.name)))


def load_expected(path: Path | None = None, header: Path | None = None) -> Expected:
    """The declared outcomes, with a row and a writer comparison for LLVM's
    class of every `abi` row that `header` (default: the OrcABISupport.h the
    build compiles against) defines; a malformed file raises ValueError
    naming it."""
    path = path or expected_path()
    header = header or LlvmCode.from_environment().orc_header()
    defined = llvm_header_classes(header)
    llvm_class_of = {f.spec.abi: f.spec.class_name for f in spec_files()}
    data = yaml.safe_load(path.read_text())

    def fail(message: str):
        raise ValueError(f"{path}: {message}")

    def row(item: dict, llvm_class: str | None = None) -> Row:
        if item["vector_upper"] not in VECTOR_UPPER:
            fail(f"row {item['label']}: vector_upper is one of {VECTOR_UPPER}")
        end = item.get("backtrace", "complete")
        if end not in BACKTRACE_ENDS:
            fail(f"row {item['label']}: backtrace is one of {BACKTRACE_ENDS}")
        return Row(
            item["label"],
            item["call_through"],
            item["stubs"],
            item["vector_upper"],
            end,
            item.get("abi"),
            llvm_class,
            dict(item["callers"]),
        )

    if not isinstance(data, dict) or set(data) - {"writers"} != {"rows", "callee_defects"}:
        fail("needs the keys `rows` and `callee_defects`, and may have `writers`")
    rows, writers = [], []
    for item in data["rows"]:
        keys = set(item)
        callers = item.get("callers", {})
        if set(callers) != set(CALLER_CONVENTIONS) or not set(callers.values()) <= set(
            CALLER_OUTCOMES
        ):
            fail(
                f"row {item}: callers maps each of {', '.join(CALLER_CONVENTIONS)} to one "
                f"of {', '.join(CALLER_OUTCOMES)}"
            )
        keys.discard("callers")
        if item.get("abi"):
            if keys - {"abi", "vector_upper", "backtrace"}:
                fail(f"row {item}: an `abi` row takes vector_upper, backtrace and callers only")
            abi = item["abi"]
            if abi not in llvm_class_of:
                fail(f"row {item}: no spec has the ABI {abi}")
            name, llvm = abi + SUFFIX, llvm_class_of[abi]
            if llvm in defined:
                qualified = f"llvm::orc::{llvm}"
                rows.append(
                    row(
                        {
                            **item,
                            "label": f"{qualified} + WithEHFrames",
                            "call_through": f"WithEHFrames<{qualified}, {name}>",
                            "stubs": qualified,
                        },
                        llvm,
                    )
                )
                # The frames are borrowed: right only for the same code.
                writers.append(Writers(qualified, name, True))
            item = {**item, "label": name, "call_through": f"WithEHFrames<{name}>", "stubs": name}
            rows.append(row(item))
        elif keys - {"label", "call_through", "stubs", "vector_upper", "backtrace"} or not (
            keys >= {"label", "call_through", "stubs", "vector_upper"}
        ):
            fail(f"row {item}: needs label, call_through, stubs, vector_upper")
        else:
            named = re.findall(r"\w+", f"{item['call_through']} {item['stubs']}")
            rows.append(row(item, next((n for n in named if n in defined), None)))
    labels = [r.label for r in rows]
    if len(set(labels)) != len(labels):
        fail("row labels repeat")
    for w in data.get("writers") or ():
        writers.append(Writers(w["llvm"], w["asmgen"], bool(w["same"])))
    if len({(w.llvm, w.asmgen) for w in writers}) != len(writers):
        fail("writer comparisons repeat")
    return Expected(path, tuple(rows), tuple(writers), defined, dict(data["callee_defects"]))


def native_family(specs) -> list:
    """The specs whose code runs on this host with its C convention: on
    x86-64 Linux, the System V ABIs."""
    host = (platform.machine(), platform.system())
    found = []
    for spec in specs:
        facts = spec.arch_info.emulator
        if facts and host in facts.native_hosts and spec.call.int_args == facts.native_int_args:
            found.append(spec)
    return found


def every_class(expected: Expected) -> list[str]:
    """The classes rows.inc instantiates LLVM's templates with: every class of
    the ORC-ready header, and LLVM's class of every spec the OrcABISupport.h
    defines (after a patch, the classes it adds too)."""
    specs = [f.spec for f in spec_files()]
    return [orcabi_class(spec) for spec in specs] + [
        f"llvm::orc::{spec.class_name}"
        for spec in specs
        if spec.class_name in expected.header_classes
    ]


def rows_source(expected: Expected, classes: list[str]) -> str:
    """rows.inc: the rows to run, the writer comparisons, and an
    instantiation of LLVM's templates for every class in `classes`."""
    lines = [
        "// Generated by tests/llvm_jit/jit_build.py from expected.yaml.",
        "void runRows() {",
    ]
    for w in expected.writers:
        lines.append(f'  compareWriters<{w.llvm}, {w.asmgen}>("{w.llvm}", "{w.asmgen}");')
    for row in expected.rows:
        lines.append(f'  runRow<{row.call_through}, {row.stubs}>("{row.label}");')
    lines += ["}", "", "void instantiateEveryClass(ExecutionSession &ES) {"]
    lines += [f"  instantiate<{name}>(ES);" for name in classes]
    lines += ["}", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------------- build


class BuildError(RuntimeError):
    pass


def _tool_output(command: list[str]) -> str:
    if not shutil.which(command[0]):
        raise BuildError(
            f"{command[0]} not found: `make llvm-dev` installs Debian's llvm-19-dev "
            "(LLVM 19's headers, library and llvm-config-19)"
        )
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()


def installed_orc_header() -> Path:
    """LLVM 19's OrcABISupport.h as llvm-19-dev installs it."""
    return Path(_tool_output([LLVM_CONFIG, "--includedir"])) / ORC_HEADER_REL


@dataclass(frozen=True)
class LlvmCode:
    """LLVM's own code built into the test: sources compiled and linked in,
    a folder of headers searched before LLVM's, preprocessor definitions."""

    sources: tuple[Path, ...] = ()
    include_first: Path | None = None
    defines: tuple[str, ...] = ()

    @classmethod
    def from_environment(cls) -> LlvmCode:
        """ASMGEN_JIT_EXTRA_SOURCES and ASMGEN_JIT_INCLUDE_FIRST."""
        extra = os.environ.get("ASMGEN_JIT_EXTRA_SOURCES", "").split(os.pathsep)
        first = os.environ.get("ASMGEN_JIT_INCLUDE_FIRST")
        code = cls(
            tuple(Path(p).resolve() for p in extra if p),
            Path(first).resolve() if first else None,
        )
        for path in code.sources:
            if not path.is_file():
                raise BuildError(f"ASMGEN_JIT_EXTRA_SOURCES: {path} is not a file")
        if first and not code.include_first.is_dir():
            raise BuildError(f"ASMGEN_JIT_INCLUDE_FIRST: {first} is not a folder")
        return code

    def orc_header(self) -> Path:
        """The OrcABISupport.h the test compiles against."""
        if self.include_first and (self.include_first / ORC_HEADER_REL).is_file():
            return self.include_first / ORC_HEADER_REL
        return installed_orc_header()


def _digest_tree(folder: Path, digest) -> None:
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())


@dataclass
class Build:
    executable: Path
    seconds: float  # 0 when taken from the cache
    cached: bool
    command: list[str] = field(default_factory=list)


def cache_dir() -> Path:
    configured = os.environ.get("ASMGEN_JIT_CACHE_DIR")
    return Path(configured) if configured else Path.home() / ".cache" / "asmgen" / "llvm_jit"


def build(rows: str, code: LlvmCode | None = None) -> Build:
    """The test executable for `rows` (rows.inc), with `code` (default: the
    environment's hooks) built in; built or from the cache."""
    code = code or LlvmCode.from_environment()
    extra, first = code.sources, code.include_first
    cxxflags = _tool_output([LLVM_CONFIG, "--cxxflags"]).split()
    ldflags = _tool_output([LLVM_CONFIG, "--ldflags", "--libs"]).split()
    libdir = _tool_output([LLVM_CONFIG, "--libdir"])
    versions = [_tool_output([CXX, "--version"]), _tool_output([LLVM_CONFIG, "--version"])]
    key = hashlib.sha256()
    for part in (*versions, *cxxflags, *ldflags, *OPT, *WARN, *code.defines, rows):
        key.update(part.encode() + b"\0")
    for path in (SOURCE, HEADER, *extra):
        key.update(path.name.encode() + b"\0" + path.read_bytes())
    if first:
        _digest_tree(first, key)
    target = cache_dir() / key.hexdigest()[:32] / "lazy_jit_test"
    if target.is_file():
        target.parent.touch()  # recently used: kept by _prune
        return Build(target, 0.0, True)
    target.parent.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent.parent) as scratch:
        work = Path(scratch)
        (work / "rows.inc").write_text(rows)
        out = work / "lazy_jit_test"
        command = [
            CXX,
            *([f"-I{first}"] if first else []),
            *cxxflags,
            *code.defines,
            *OPT,
            *WARN,
            f"-I{work}",
            f"-I{HEADER.parent}",
            str(SOURCE),
            *map(str, extra),
            "-o",
            str(out),
            *ldflags,
            f"-Wl,-rpath,{libdir}",
        ]
        start = time.monotonic()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        seconds = time.monotonic() - start
        if done.returncode:
            raise BuildError(f"{' '.join(command)}\n{done.stderr[-20000:]}")
        # Warnings in the test, the ORC-ready header or LLVM's code built in
        # fail the build (a patched OrcABISupport.cpp or .h must be clean).
        names = {SOURCE.name, "rows.inc", HEADER.name, *(p.name for p in extra)}
        if first:
            names.add(Path(ORC_HEADER_REL).name)
        ours = [
            line
            for line in done.stderr.splitlines()
            if "warning:" in line and any(name in line for name in names)
        ]
        if ours:
            raise BuildError(
                "warnings in the test, the headers or LLVM's code:\n" + "\n".join(ours)
            )
        target.parent.mkdir(exist_ok=True)
        os.replace(out, target)
    _prune(target.parent.parent, keep=KEEP_BUILDS)
    return Build(target, seconds, False, command)


KEEP_BUILDS = 6


def _prune(folder: Path, keep: int) -> None:
    """Remove all but the `keep` most recently used builds."""
    builds = sorted(
        (p for p in folder.iterdir() if p.is_dir() and len(p.name) == 32),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for old in builds[keep:]:
        shutil.rmtree(old, ignore_errors=True)


# ------------------------------------------------------------------------ run


def run(executable: Path, mode: str, cpu: str | None = None, iters: int = 100) -> dict:
    """One run of every row; the program's JSON, with `wall_seconds`."""
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "result.json"
        command = [str(executable), f"--mode={mode}", f"--iters={iters}", f"--json={out}"]
        if cpu:
            command.append(f"--cpu={cpu}")
        start = time.monotonic()
        done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
        if not out.is_file():
            raise RuntimeError(
                f"{' '.join(command)} exited {done.returncode}:\n{done.stderr[-5000:]}"
            )
        result = json.loads(out.read_text())
    result["wall_seconds"] = time.monotonic() - start
    result["stderr"] = done.stderr
    return result


# ---------------------------------------------------------------------- judge


def judge(result: dict, expected: Expected) -> dict[tuple[str, str], list[str]]:
    """What is wrong with each row (label, path), against the declarations.

    In every mode: every function compiled exactly once, every result and
    call count right in every iteration, every argument right after the
    first call, nothing lost but the bytes beyond 16 of a ymm/zmm argument,
    one backtrace per function ending as declared; `kept` rows lose nothing.
    With the deliberate clobber, `lost` rows lose every ymm/zmm argument.
    """
    declared = {row.label: row for row in expected.rows}
    functions = result["functions"]
    clobber = result["mode"] == "clobber"
    verdicts: dict[tuple[str, str], list[str]] = {}
    for got in result["rows"]:
        row = declared[got["label"]]
        why = []
        if not got["ran"]:
            why.append(f"did not run: {got['error']}")
        else:
            first, later = got["first"], got["later"]
            if got["compiled"] != functions or got["compiled_once"] != functions:
                why.append(
                    f"{got['compiled_once']}/{functions} functions compiled exactly once "
                    f"({got['compiled']} compiled)"
                )
            if any(s[k] for s in (first, later) for k in ("bad_results", "bad_root")):
                why.append("wrong results")
            if first["bad_counts"] or later["bad_counts"]:
                why.append("wrong call counts")
            if later["bad"]:
                why.append(f"{later['bad']} wrong arguments after the first call")
            if first["bad_low"] or first["bad_not_wide"]:
                why.append("lost more than the upper bytes of ymm/zmm arguments")
            if row.vector_upper == "kept" and first["bad"]:
                why.append(f"declared kept, lost {first['bad']} arguments")
            if row.vector_upper == "lost" and clobber and first["bad"] != first["wide_reg_args"]:
                why.append(
                    f"declared lost: {first['bad']} of {first['wide_reg_args']} "
                    "ymm/zmm arguments arrived wrong"
                )
            if got["backtraces"] != functions:
                why.append(f"{got['backtraces']} backtraces for {functions} compiled functions")
            if set(got["backtrace_ends"]) != {row.backtrace}:
                why.append(f"backtraces end {got['backtrace_ends']}, declared {row.backtrace}")
        verdicts[(got["label"], got["path"])] = why
    missing = {r.label for r in expected.rows} - {g["label"] for g in result["rows"]}
    for label in sorted(missing):
        verdicts[(label, "-")] = ["not run"]
    return verdicts


def caller_holdings(result: dict) -> dict[str, list[tuple[str, int] | None]]:
    """conv case -> where each of its values waits across the call (the
    register and the bits, or None: the stack), read from the caller's code.
    Every row's caller is the same code but for its addresses."""
    layout = result["caller_values"]
    found: dict[str, list] = {}
    for got in result["rows"]:
        for index, case in enumerate(got.get("callers", [])):
            held = held_registers(bytes.fromhex(case["code"]), layout, index)
            if found.setdefault(case["case"], held) != held:
                raise ValueError(
                    f"{got['label']}: {case['case']}'s caller holds its values elsewhere"
                )
    return found


_VECTOR_NAMES = {128: "xmm", 256: "ymm", 512: "zmm"}


def _held_name(reg: tuple[str, int]) -> str:
    """('xmm9', 256) -> 'ymm9': the register as the caller's code names it."""
    name, bits = reg
    return _VECTOR_NAMES[bits] + name[3:] if name.startswith("xmm") else name


def _lost_where(case: dict, held: list) -> list[str]:
    """'r11', 'ymm9 upper half': the registers of the values that arrived wrong."""
    out = []
    for k, status in enumerate(case["first"]):
        if status == "ok":
            continue
        reg = held[k]
        if reg is None:
            out.append(f"value {k} (on the stack)")
        else:
            out.append(_held_name(reg) + (" upper half" if status.startswith("upper-") else ""))
    return out


def judge_callers(result: dict, expected: Expected) -> dict[tuple[str, str], list[str]]:
    """What is wrong with each row's conv case (label, case), against the
    declarations: a `kept` convention loses nothing; `upper-lost` loses the
    bytes beyond 16 of every value held in a ymm register and nothing else
    (with the deliberate clobber); `lost` loses values held in registers, never
    one on the stack (with the clobber).  No declaration lets a later call lose
    a value, but a case in `callee_defects`, whose callee itself zeroes the
    upper halves: there every later call loses exactly those."""
    declared = {row.label: row for row in expected.rows}
    holdings = caller_holdings(result)
    clobber = result["mode"] == "clobber"
    iterations = result["iterations"]
    verdicts: dict[tuple[str, str], list[str]] = {}
    for got in result["rows"]:
        if not got.get("callers"):
            continue
        row = declared[got["label"]]
        for case in got["callers"]:
            held = holdings[case["case"]]
            wide = {k for k, h in enumerate(held) if h and h[1] > 128}
            bad = {k: s for k, s in enumerate(case["first"]) if s != "ok"}
            why = []
            if case["callee_calls"] != iterations:
                why.append(f"the callee ran {case['callee_calls']} times in {iterations} calls")
            if any(held[k] is None for k in bad):
                why.append("a value kept on the stack arrived wrong")
            defect = case["case"] in expected.callee_defects
            if defect:
                later = {k for k, s in enumerate(case["later"]) if s != "ok"}
                if later != wide or any(case["later"][k] != "upper-zero" for k in later):
                    why.append(
                        f"declared a callee defect: later calls lost {sorted(later)}, "
                        f"expected the upper halves of the ymm values {sorted(wide)}"
                    )
                if case["later_bad_iterations"] != (iterations - 1 if wide else 0):
                    why.append(f"{case['later_bad_iterations']} later calls lost values")
                verdicts[(got["label"], case["case"])] = why
                continue
            outcome = row.callers[case["cc"]]
            if case["later_bad_iterations"]:
                why.append(f"{case['later_bad_iterations']} later calls lost values")
            if outcome == "kept" and bad:
                why.append(f"declared kept, lost {', '.join(_lost_where(case, held))}")
            if outcome == "upper-lost":
                beyond = [k for k, s in bad.items() if k not in wide or not s.startswith("upper-")]
                if beyond:
                    why.append(f"declared upper-lost, lost {', '.join(_lost_where(case, held))}")
                if clobber and set(bad) != wide:
                    why.append(f"declared upper-lost: {len(bad)} of {len(wide)} ymm values lost")
            if outcome == "lost" and clobber and not bad:
                why.append("declared lost, nothing lost with the clobber")
            verdicts[(got["label"], case["case"])] = why
    return verdicts


def judge_writers(result: dict, expected: Expected) -> list[str]:
    wrong = []
    found = {(w["llvm"], w["asmgen"]): w for w in result["writers"]}
    for w in expected.writers:
        got = found[(w.llvm, w.asmgen)]
        same = all(got[k] for k in ("sizes", "resolver", "trampolines", "stubs"))
        if same != w.same:
            parts = ", ".join(
                f"{k} {'same' if got[k] else 'differ'}" for k in got if k not in ("llvm", "asmgen")
            )
            wrong.append(f"{w.llvm} vs {w.asmgen}: {parts}; declared same: {w.same}")
    return wrong


# ---------------------------------------------------------------------- print


def _ranges(registers: set[str]) -> str:
    """{'ymm0', 'ymm1', 'ymm2', 'zmm5'} -> 'ymm0-2, zmm5'."""
    by_kind: dict[str, list[int]] = {}
    parts = sorted(name for name in registers if not name[3:].isdigit())  # rsi, stack
    for name in registers - set(parts):
        by_kind.setdefault(name[:3], []).append(int(name[3:]))
    for kind, numbers in sorted(by_kind.items()):
        numbers.sort()
        start = prev = numbers[0]
        for n in [*numbers[1:], None]:
            if n is not None and n == prev + 1:
                prev = n
                continue
            parts.append(f"{kind}{start}" + (f"-{prev}" if prev != start else ""))
            if n is not None:
                start = prev = n
    return ", ".join(parts)


def _losses(stats: dict) -> str:
    """'447/743 ok; 296 lost bytes 16-63 of ymm0-7, zmm0-7 (all-ones, zero)'."""
    text = f"{stats['args'] - stats['bad']}/{stats['args']} ok"
    if not stats["bad"]:
        return text
    registers, spans, contents = set(), [], set()
    for key in stats["losses"]:
        register, span, content = key.split(" ")
        registers.add(register.rstrip("+"))
        low, high = (int(x) for x in span.removeprefix("bytes").split("-"))
        spans.append((low, high))
        contents.add(content)
    low, high = min(s[0] for s in spans), max(s[1] for s in spans)
    return (
        f"{text}; {stats['bad']} lost bytes {low}-{high} of {_ranges(registers)} "
        f"({', '.join(sorted(contents))})"
    )


def describe(result: dict) -> str:
    """The run's conditions in two lines."""
    widths = {64: "zmm (AVX-512)", 32: "ymm (AVX, no AVX-512)", 16: "xmm only (no AVX)"}
    lines = [
        f"JIT CPU {result['cpu']} (host {result['host_cpu']}); vectors travel in "
        f"{widths[result['vec_reg_bytes']]}; mode {result['mode']}"
        + (f" (clobbers {result['clobbered']})" if result["clobbered"] else "")
        + f"; GLIBC_TUNABLES={result['glibc_tunables'] or '(unset)'}; "
        f"{result['iterations']} iterations; run {result['wall_seconds']:.1f} s",
        f"program: {result['functions']} functions, {result['arguments']} arguments "
        f"({result['wide_register_arguments']} in ymm/zmm, {result['stack_arguments']} on the "
        "stack) + the iteration counter",
    ]
    if not result["host_avx512f"]:
        lines.append(
            "this CPU lacks AVX-512: no zmm arguments; 512-bit vectors travel as ymm pairs"
        )
    if not result["host_avx"]:
        lines.append("this CPU lacks AVX: no ymm/zmm arguments, so no upper halves to lose")
    elif result["vec_reg_bytes"] == 16:
        lines.append("JIT'd code without AVX: no ymm/zmm arguments, so no upper halves to lose")
    return "\n".join(lines)


def table(result: dict, expected: Expected, verdicts: dict) -> str:
    declared = {row.label: row for row in expected.rows}
    header = ("class", "path", "declared", "compile", "results", "later", "backtrace", "first call")
    body = []
    for got in result["rows"]:
        row = declared[got["label"]]
        ok = not verdicts[(got["label"], got["path"])]
        ends = ", ".join(f"{k} {v}" for k, v in sorted(got["backtrace_ends"].items()))
        later = got["later"]
        body.append(
            (
                got["label"],
                got["path"],
                f"{row.vector_upper}, {row.backtrace}" + ("" if ok else " FAIL"),
                f"{got['compiled_once']}/{result['functions']} once",
                "ok"
                if not any(
                    got[s][k]
                    for s in ("first", "later")
                    for k in ("bad_results", "bad_root", "bad_counts")
                )
                else "BAD",
                "ok" if not later["bad"] else f"{later['bad']} bad",
                ends or "-",
                _losses(got["first"]) if got["ran"] else f"ERROR {got['error']}",
            )
        )
    widths = [max(len(r[i]) for r in (header, *body)) for i in range(len(header) - 1)]
    lines = []
    for r in (header, *body):
        lines.append("  ".join(f"{c:<{w}}" for c, w in zip(r, widths, strict=False)) + "  " + r[-1])
    return "\n".join(lines)


def callers_table(result: dict, expected: Expected, verdicts: dict) -> str:
    """Rows x conv cases: values kept through the first, lazy call, and where
    the rest were."""
    holdings = caller_holdings(result)
    declared = {row.label: row for row in expected.rows}
    cases = [c["case"] for c in next(g for g in result["rows"] if g.get("callers"))["callers"]]
    lines = []
    for case in cases:
        held = holdings[case]
        regs = _ranges({_held_name(h) for h in held if h})
        lines.append(
            f"{case}: {sum(1 for h in held if h)} of {len(held)} values held in registers "
            f"across the call: {regs}"
        )
    header = ("class", *cases)
    body = []
    for got in result["rows"]:
        if not got.get("callers"):
            continue
        row = declared[got["label"]]
        cells = [got["label"]]
        for case in got["callers"]:
            held = holdings[case["case"]]
            ok = sum(1 for s in case["first"] if s == "ok")
            text = f"{ok}/{len(case['first'])}"
            lost = _lost_where(case, held)
            if lost:
                text += " lost " + _ranges_text(lost)
            if case["later_bad_iterations"]:
                text += f"; later calls lose them too ({case['later_bad_iterations']})"
            what = expected.callee_defects.get(case["case"]) and "callee defect"
            text += f" [{what or row.callers.get(case['cc'], '?')}]"
            if verdicts.get((got["label"], case["case"])):
                text += " FAIL"
            cells.append(text)
        body.append(cells)
    widths = [max(len(r[i]) for r in (header, *body)) for i in range(len(header))]
    for r in (header, *body):
        lines.append("  ".join(f"{c:<{w}}" for c, w in zip(r, widths, strict=True)).rstrip())
    return "\n".join(lines)


def _ranges_text(lost: list[str]) -> str:
    """['r11', 'ymm8', 'ymm9', 'ymm0 upper half'] -> 'r11, ymm8-9; ymm0 upper halves'."""
    whole = {x for x in lost if " " not in x}
    upper = {x.split(" ")[0] for x in lost if x.endswith(" upper half")}
    parts = [_ranges(whole)] if whole else []
    if upper:
        parts.append(f"{_ranges(upper)} upper halves")
    return "; ".join(parts + [x for x in lost if "stack" in x])


def report(title: str, result: dict, expected: Expected, verdicts: dict) -> str:
    text = f"{title}\n{describe(result)}\n{table(result, expected, verdicts)}"
    for (label, path), why in verdicts.items():
        if why:
            text += f"\nFAIL {label} / {path}: " + "; ".join(why)
    callers = judge_callers(result, expected)
    text += "\nCallers of other conventions (LLLazyJIT), first call:\n"
    text += callers_table(result, expected, callers)
    for (label, case), why in callers.items():
        if why:
            text += f"\nFAIL {label} / {case}: " + "; ".join(why)
    return text


# ------------------------------------------------------------- a patched tree


def defined_writers(executable: Path) -> set[str]:
    """The llvm::orc `Class::write...` functions the executable defines itself
    (so calls from the test bind to them, not to libLLVM's)."""
    listed = subprocess.run(
        ["nm", "-C", "--defined-only", str(executable)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(re.findall(r" [TtWw] llvm::orc::(Orc\w+::write\w+)\(", listed))


def written_writers(cpp: Path) -> set[str]:
    """The `Class::write...` functions an OrcABISupport.cpp defines."""
    return set(re.findall(r"^void (Orc\w+::write\w+)\(", cpp.read_text(), re.MULTILINE))


@dataclass
class PatchedRun:
    """The lazy-JIT test run on a patched tree's writers: LLVM's classes only,
    in clobber mode."""

    expected: Expected
    built: Build
    result: dict
    verdicts: dict[tuple[str, str], list[str]]
    wrong_writers: list[str]
    linked: list[str]  # the patched .cpp's writers, defined in the executable
    unlinked: list[str]  # and those it does not define
    instantiated: list[str]  # LLVM's classes instantiated in ORC's templates

    def failures(self) -> list[str]:
        """The rows whose outcome is not the declared one, and why."""
        return [
            f"{label} / {path}: {'; '.join(why)}"
            for (label, path), why in self.verdicts.items()
            if why
        ]

    def problems(self) -> list[str]:
        unlinked = [f"{name}: not linked in" for name in self.unlinked]
        return self.failures() + self.wrong_writers + unlinked

    def summary(self) -> str:
        classes = self.expected.llvm_classes()
        text = (
            f"{', '.join(classes)} as patched ({len(classes)} classes; "
            f"{len(self.expected.rows)} rows x {{LLLazyJIT, compile callbacks}}; "
            f"{self.result['functions']} functions; clobber of {self.result['clobbered']}): "
        )
        if self.problems():
            return text + f"{len(self.problems())} failures"
        return text + (
            "outcomes as declared, writers byte for byte asmgen's; "
            f"{len(self.linked)} writers linked from the patched .cpp, "
            f"{len(self.instantiated)} LLVM classes instantiated in ORC's templates"
        )

    def report(self) -> str:
        title = "Patched LLVM: its classes, writers from the patched OrcABISupport.cpp"
        lines = [report(title, self.result, self.expected, self.verdicts), *self.wrong_writers]
        return "\n".join(lines + [f"{name}: not linked in" for name in self.unlinked])


# The export macros of trees after 19, which LLVM 19's Compiler.h lacks: empty,
# as in a static build (llvm_oracle.patched_driver does the same).
EXPORT_MACROS = ("-DLLVM_ABI=", "-DLLVM_CLASS_ABI=")


def run_patched_tree(tree: Path) -> PatchedRun:
    """Build the test with `tree`'s OrcABISupport.cpp linked in and its
    OrcABISupport.h first, and run the rows of LLVM's classes (OrcX86_64_SysV
    and every System V class the patch added) with the deliberate clobber.

    The clobber run is the proof: it asserts every declared loss and every
    kept byte, the unwinding and the results.  The other runs of
    test_llvm_jit.py (natural, narrower CPUs) vary the JIT'd code, not the
    resolver: the patched writers write the bytes of the asmgen classes run
    there (checked here, in the same process)."""
    cpp = tree / orc.CPP_PATH
    code = LlvmCode((cpp,), tree / "llvm" / "include", EXPORT_MACROS)
    expected = load_expected(header=code.orc_header()).running_llvm()
    classes = every_class(expected)
    built = build(rows_source(expected, classes), code)
    result = run(built.executable, "clobber")
    written, defined = written_writers(cpp), defined_writers(built.executable)
    return PatchedRun(
        expected,
        built,
        result,
        judge(result, expected),
        judge_writers(result, expected),
        sorted(written & defined),
        sorted(written - defined),
        [name for name in classes if name.startswith("llvm::")],
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("clobber", "natural"), default="clobber")
    parser.add_argument("--cpu", help="JIT for this CPU instead of the host")
    parser.add_argument("--iters", type=int, default=100)
    args = parser.parse_args(argv)
    expected = load_expected()
    built = build(rows_source(expected, every_class(expected)))
    print(f"{built.executable} ({'cached' if built.cached else f'built in {built.seconds:.1f} s'})")
    result = run(built.executable, args.mode, args.cpu, args.iters)
    verdicts = judge(result, expected)
    print(report(f"mode {args.mode}", result, expected, verdicts))
    wrong = judge_writers(result, expected)
    print("\n".join(wrong) or "writers: as declared")
    callers = judge_callers(result, expected)
    return 1 if wrong or any(verdicts.values()) or any(callers.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
