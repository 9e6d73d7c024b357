"""LLVM 19's own answer to what each caller convention passes and keeps.

`llc-19` (Debian's llvm-19) compiles small probe functions declared with a
convention and prints the machine IR:

- arguments: a callee that stores every parameter; the registers live into
  its entry (MIR `liveins`) are where LLVM 19 passes them.  Probes: 24
  integers, 24 doubles, 24 128-bit vectors, 24 256- and 512-bit vectors (with
  the widest vector feature), the parameter attributes nest, sret, swiftself,
  swifterror and swiftasync, and a variadic callee (its hidden register).  A
  probe LLVM refuses for a convention (varargs with fastcc) is left out, with
  llc's reason.
- callee-saved: a callee whose inline asm clobbers every register; what its
  prologue saves (MIR `callee-saved-register`) is what the convention keeps,
  at the width the prologue saves it (xmm, ymm, zmm), per vector feature.

Register names come back as asmgen's (`normalize`): x86 sub-registers as
their full register, ymm/zmm as xmm with their width, AArch64 w registers as
x, and FP argument registers as the q register that carries them.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

LLC = "llc-19"
COUNT = 24

_X86_FULL = {
    **{f"{p}{s}": f"r{p}x" for p in "abcd" for s in ("l", "h", "x")},
    **{f"e{p}x": f"r{p}x" for p in "abcd"},
    **{n: "r" + n for n in ("si", "di", "bp", "sp")},
    **{"e" + n: "r" + n for n in ("si", "di", "bp", "sp")},
    **{n + "l": "r" + n for n in ("si", "di", "bp", "sp")},
    **{f"r{i}{s}": f"r{i}" for i in range(8, 16) for s in ("d", "w", "b")},
}


@dataclass(frozen=True)
class Fn:
    name: str
    cc: str
    params: tuple[tuple[str, str, str], ...] = ()  # (type, attributes, name)
    varargs: bool = False
    clobbers: str = ""  # inline asm clobber list: the callee-saved probe


@dataclass
class Probed:
    """What llc-19 said for one caller convention."""

    args: set[str] = field(default_factory=set)
    # By vector feature ("" = none): the registers the prologue saves.
    callee_saved: dict[str, set[str]] = field(default_factory=dict)
    # By vector feature: vector register -> the widest bits an argument or a
    # saved register takes there.
    bits: dict[str, dict[str, int]] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)


def available() -> bool:
    return shutil.which(LLC) is not None


def normalize(name: str, arch: str, role: str) -> tuple[str, int | None]:
    """An llc register name as asmgen's: (name, bits of a vector register)."""
    from asmgen.arches import ARCHES

    for pattern, replacement in ARCHES[arch].llvm_names:
        if re.fullmatch(pattern, name):
            return re.sub(pattern, replacement, name), None
    if arch in ("x86_64", "i386"):
        m = re.fullmatch(r"([xyz])mm(\d+)", name)
        if m:
            return f"xmm{m.group(2)}", {"x": 128, "y": 256, "z": 512}[m.group(1)]
        full = _X86_FULL.get(name, name)
        return ("e" + full[1:] if arch == "i386" and full[0] == "r" else full), None
    name = {"fp": "x29", "lr": "x30"}.get(name, name)
    # A width suffix on a numbered register (SystemZ's r2d, f8d: 64-bit views).
    m = re.fullmatch(r"([a-z]+\d+)[dhl]", name)
    if m:
        name = m.group(1)
    if re.fullmatch(r"w\d+", name):
        name = "x" + name[1:]
    m = re.fullmatch(r"([bhsdq])(\d+)", name)
    if m and (role == "args" or m.group(1) == "q"):
        return f"q{m.group(2)}", None
    return name, None


def _many(ty: str, var: str) -> tuple[tuple[str, str, str], ...]:
    return tuple((ty, "", f"%{var}{k}") for k in range(COUNT))


def arg_probes(cc: str, wide: bool) -> list[Fn]:
    probes = {
        "ints": _many("i64", "i"),
        "doubles": _many("double", "d"),
        "v128": _many("<2 x i64>", "v"),
        "nest": (("ptr", "nest", "%n"), ("i64", "", "%a")),
        "swift": (("ptr", "swiftself", "%s"), ("ptr", "swiftasync", "%y")),
        "swifterror": (("ptr", "swifterror", "%e"),),
        "sret": (("ptr", "sret(i64)", "%r"), ("i64", "", "%a")),
    }
    if wide:
        probes["v256"] = _many("<4 x i64>", "w")
        probes["v512"] = _many("<8 x i64>", "z")
    fns = [Fn(f"a.{cc}.{name}", cc, params) for name, params in probes.items()]
    return [*fns, Fn(f"a.{cc}.varargs", cc, (("i64", "", "%a"),), varargs=True)]


def _define(fn: Fn) -> str:
    params = ", ".join(f"{ty} {attrs} {var}".replace("  ", " ") for ty, attrs, var in fn.params)
    body = ""
    if fn.clobbers:
        body = f'  call void asm sideeffect "", "{fn.clobbers}"()\n'
    elif fn.varargs:
        params += ", ..."
        body = (
            "  %ap = alloca [32 x i8]\n  call void @llvm.va_start.p0(ptr %ap)\n"
            "  call void @use(ptr %ap)\n"
        )
    for ty, attrs, var in fn.params:
        if fn.varargs:
            break
        if attrs == "swifterror":
            body += f"  %l = load ptr, ptr {var}\n  store volatile ptr %l, ptr @g\n"
        else:
            body += f"  store volatile {ty} {var}, ptr @g\n"
    return f'define {fn.cc} void @"{fn.name}"({params}) {{\n{body}  ret void\n}}\n'


def _module(fns: list[Fn]) -> str:
    head = (
        "@g = global [64 x i8] zeroinitializer\ndeclare void @use(ptr)\n"
        "declare void @llvm.va_start.p0(ptr)\n"
    )
    return head + "".join(_define(fn) for fn in fns)


def _llc(triple: str, mattr: str, stop: str, ir: str) -> tuple[str, str]:
    cmd = [LLC, f"-mtriple={triple}", *([f"-mattr={mattr}"] if mattr else [])]
    cmd += [f"-stop-after={stop}", "-o", "-"]
    done = subprocess.run(cmd, input=ir, capture_output=True, text=True, check=False)
    if done.returncode:
        lines = done.stderr.strip().splitlines() or ["llc failed"]
        return "", next((ln for ln in lines if "error" in ln.lower()), lines[0]).strip()
    return done.stdout, ""


def _documents(mir: str) -> dict[str, str]:
    """Function name -> its MIR document."""
    found = {}
    for doc in mir.split("\n---\n"):
        m = re.search(r"^name:\s+'?([^'\n]+)'?$", doc, re.MULTILINE)
        if m:
            found[m.group(1)] = doc
    return found


def _compile(triple: str, mattr: str, stop: str, fns: list[Fn]) -> tuple[dict, list[str]]:
    """MIR per function.  Functions llc refuses are dropped (the set is halved
    until every group compiles) and named with llc's reason."""
    mir, error = _llc(triple, mattr, stop, _module(fns))
    if not error:
        return _documents(mir), []
    if len(fns) == 1:
        return {}, [f"{fns[0].name}: {error}"]
    half = len(fns) // 2
    a, refused_a = _compile(triple, mattr, stop, fns[:half])
    b, refused_b = _compile(triple, mattr, stop, fns[half:])
    return a | b, refused_a + refused_b


def probe(
    arch: str,
    triple: str,
    conventions: list[str],
    clobbers: list[str],
    features: list[str],
    base_mattr: str = "",
) -> dict[str, Probed]:
    """llc-19's facts for each convention on `triple`: arguments with every
    vector feature on, callee-saved registers without and with each feature."""
    found = {cc: Probed() for cc in conventions}
    levels = ["", *features]

    def mattr(level: str) -> str:
        upto = features[: features.index(level) + 1] if level else []
        return ",".join(filter(None, [base_mattr, *(f"+{f}" for f in upto)]))

    asm = ",".join(f"~{{{r}}}" for r in clobbers)
    jobs = []
    for level in levels:
        fns = [fn for cc in conventions for fn in arg_probes(cc, bool(level))]
        jobs.append(("args", level, mattr(level), "finalize-isel", fns))
        fns = [Fn(f"s.{cc}", cc, clobbers=asm) for cc in conventions]
        jobs.append(("saved", level, mattr(level), "prologepilog", fns))
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda job: _compile(triple, *job[2:]), jobs))
    for (kind, level, *_), (docs, refused) in zip(jobs, results, strict=True):
        for fn, doc in docs.items():
            probed = found[fn.split(".")[1]]
            widths = probed.bits.setdefault(level, {})
            if kind == "args":
                m = re.search(r"^liveins:\n((?:\s+- .*\n)*)", doc, re.MULTILINE)
                regs = re.findall(r"reg: '\$(\w+)'", m.group(1) if m else "")
                found_in = probed.args
            else:
                regs = re.findall(r"callee-saved-register: '\$(\w+)'", doc)
                found_in = probed.callee_saved.setdefault(level, set())
            for reg in regs:
                name, bits = normalize(reg, arch, kind)
                found_in.add(name)
                if bits:
                    widths[name] = max(widths.get(name, 0), bits)
        for text in refused:
            found[text.split(".")[1]].refused.append(f"{kind} ({level or 'base'}): {text}")
    return found
