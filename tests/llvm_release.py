"""`make test-llvm LLVM_ROOT=<checkout>`: `asmgen patch` on a real LLVM checkout,
proven by applying, compiling and running it.  The checkout is only read.

  1. `asmgen patch --llvm-root <checkout>` (every ABI, or the ones named);
  2. `git apply --check` in the checkout (when it is a git work tree), then the
     patch applied to a scratch copy of the two files;
  3. `asmgen patch` on the patched copy: an empty patch;
  4. `git clang-format` on the patched copy: nothing to change;
  5. the patched OrcABISupport.cpp compiled against LLVM 19's headers, with the
     patched header first, and linked into the differential driver: its writers
     against the generated Python module, every difference declared
     (tests/llvm19/differences.yaml, `patched`); the factory files the patch
     gave an arch's cases (IndirectionUtils.cpp, LazyReexports.cpp) compiled
     the same way (g++ -fsyntax-only), if the checkout's own do;
  6. the lazy JIT (tests/llvm_jit/): its LLLazyJIT and compile-callback test
     built with the patched OrcABISupport.cpp linked in and the patched header
     first, run on LLVM's x86-64 System V classes as the patch defines them
     (OrcX86_64_SysV and the classes it adds), every outcome as declared in
     tests/llvm_jit/expected.yaml (`run_lazy_jit`).

It prints a summary to paste into the commit message, and exits 1 if a step fails.

    python tests/llvm_release.py --llvm-root ~/llvm-project [ABI...] [--keep DIR]
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import llvm_oracle as oracle
import llvm_trees

from asmgen import __version__
from asmgen.cli import main as asmgen
from asmgen.patch import orc_factories
from asmgen.patch import orc_source as orc
from asmgen.resources import SPECS_DIR
from asmgen.spec.files import select, spec_files

ROOT = Path(__file__).resolve().parent.parent


def run_lazy_jit(tree: Path) -> str:
    """The lazy-JIT test (tests/llvm_jit/) with `tree`'s patched
    OrcABISupport.cpp linked in place of libLLVM's writers and its patched
    header first: LLVM's System V classes as the patch defines them, on both
    paths, with the deliberate clobber.  A one-line result; raises
    RuntimeError on a failure."""
    sys.path.insert(0, str(ROOT / "tests" / "llvm_jit"))  # the script's folder is tests/
    import jit_build

    if not jit_build.native_family(f.spec for f in spec_files(SPECS_DIR)):
        return "not run (needs an x86-64 Linux host to run the System V classes)"
    run = jit_build.run_patched_tree(tree)
    if run.problems():
        raise RuntimeError(run.report())
    return run.summary()


def llvm_version(root: Path) -> str:
    """The checkout's LLVM version, from its CMake files, and its git revision."""
    version = "unknown version"
    for rel in ("cmake/Modules/LLVMVersion.cmake", "llvm/CMakeLists.txt"):
        path = root / rel
        if not path.exists():
            continue
        text = path.read_text(errors="replace")
        parts = [
            re.search(rf"set\(LLVM_VERSION_{p}\s+(\d+)", text) for p in ("MAJOR", "MINOR", "PATCH")
        ]
        if all(parts):
            version = ".".join(m.group(1) for m in parts)
            break
    rev = llvm_trees.git(root, "rev-parse", "--short=12", "HEAD")
    return f"LLVM {version}" + (f" at {rev.stdout.strip()}" if rev.returncode == 0 else "")


def _load_module():
    path = ROOT / "generated" / "orc_resolvers.py"
    spec = importlib.util.spec_from_file_location("orc_resolvers_release", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def changes(before: Path, after: Path) -> list[str]:
    """What the patch changed, class by class, in LLVM's terms."""
    old_h, new_h = (orc.classes(orc.load(r, orc.HEADER_PATH)) for r in (before, after))
    old_f, new_f = (orc.resolver_functions(orc.load(r, orc.CPP_PATH)) for r in (before, after))
    lines, constants = [], {}
    tables = [
        name.split("::")[0]
        for name, fn in old_f.items()
        if name in new_f
        and fn.values is not None
        and new_f[name].values is not None
        and fn.values.text != new_f[name].values.text
    ]
    if tables:
        lines.append(f"- Resolver tables from the specs: {', '.join(tables)}")
    for name, decl in old_h.items():
        for member, node in decl.constants.items():
            new = new_h[name].constants.get(member)
            if new is not None and new.text != node.text:
                constants.setdefault(member, []).append(
                    f"{name} {node.text.decode()} -> {new.text.decode()}"
                )
    for member, items in constants.items():
        lines.append(f"- {member}: " + "; ".join(items))
    added = [name for name in new_h if name not in old_h]
    if added:
        lines.append(f"- New classes: {', '.join(added)}")
    for fn in orc_factories.FACTORIES:
        if not (before / fn.path).exists():
            continue
        old, new = (orc_factories.cases(orc.load(r, fn.path), fn.name) for r in (before, after))
        cases = [f"{e} -> {', '.join(sorted(new[e]))}" for e in new if e not in old]
        if cases:
            lines.append(f"- {fn.name}: new cases {'; '.join(cases)}")
    return lines


def compile_factories(base: Path, tree: Path) -> list[tuple[str, str | None]]:
    """(what, error) for each factory file the patch changed, compiled against
    LLVM 19's headers with the patched header first; error None when the
    checkout's own file does not compile against them (a later LLVM's API),
    so the patched one is not tried."""
    out: list[tuple[str, str | None]] = []
    for rel in orc_factories.FACTORY_PATHS:
        if not (base / rel).exists() or (base / rel).read_bytes() == (tree / rel).read_bytes():
            continue
        name = Path(rel).name
        if oracle.syntax_check(base, rel):
            out.append(
                (f"{name}: the checkout's own does not compile against LLVM 19's headers", None)
            )
            continue
        what = f"{name} with the new cases compiles against LLVM 19's headers, patched header first"
        out.append((what, oracle.syntax_check(tree, rel)))
    return out


def _unpatched(tree: Path, abis: list[str]) -> dict[str, str]:
    """LLVM's ABIs a partial patch left alone (their writers are LLVM's: they
    differ as LLVM 19's do) -> "llvm"; a class shares its fate with the base
    its writeResolverCode forwards to (MIPS32's byte orders)."""
    if not abis:
        return {}
    chosen = {item.spec.abi for item in select(spec_files(SPECS_DIR), abis)}
    decls = orc.classes(orc.load(tree, orc.HEADER_PATH))

    def home(abi: str) -> str:
        name = f"Orc{abi}"
        return decls[name].forwards_to or name if name in decls else name

    patched = {home(abi) for abi in chosen}
    return {abi: "llvm" for abi in oracle.LLVM_ABIS if home(abi) not in patched}


def check(root: Path, abis: list[str], work: Path) -> tuple[list[str], list[str], bool]:
    """Run every step; (changes, checks, all passed)."""
    steps: list[str] = []
    patch = work / "asmgen.patch"
    if asmgen(["patch", "--llvm-root", str(root), *abis, "-o", str(patch)]) != 0:
        return [], ["asmgen patch: failed (see the error above)"], False
    for name in ("patched", "base"):
        shutil.rmtree(work / name, ignore_errors=True)
    tree = llvm_trees.scratch_tree(work / "patched", llvm_trees.llvm_files(root))
    base = llvm_trees.scratch_tree(work / "base", llvm_trees.llvm_files(root))
    if not patch.read_text():
        return [], ["asmgen patch: empty, LLVM already has the generated tables"], True
    ok = True

    def step(name: str, error: str) -> None:
        nonlocal ok
        steps.append(f"{name}: " + ("ok" if not error else f"FAILED\n{error}"))
        ok &= not error

    if llvm_trees.git(root, "rev-parse", "--is-inside-work-tree").returncode == 0:
        done = llvm_trees.git(root, "apply", "--check", str(patch))
        step("git apply --check in the checkout", done.stderr.strip())
    step("git apply", llvm_trees.apply(tree, patch))
    again = work / "again.patch"
    code = asmgen(["patch", "--llvm-root", str(tree), *abis, "-o", str(again)])
    step("second asmgen patch is empty", "" if code == 0 and not again.read_text() else "not empty")
    step("git clang-format finds nothing", llvm_trees.clang_format_diff(tree))
    try:
        driver = oracle.patched_driver(work / "drivers", tree, orc.CPP_PATH)
        step("compiles against LLVM 19's headers, patched header first", "")
    except RuntimeError as exc:
        step("compiles against LLVM 19's headers, patched header first", str(exc))
        return changes(base, tree), steps, False
    for what, error in compile_factories(base, tree):
        if error is None:
            steps.append(f"{what}: not compiled")
        else:
            step(what, error)
    module = _load_module()
    llvm = oracle.constants(oracle.llvm_driver(work / "drivers"))
    declarations = oracle.Declarations.load()
    labels = _unpatched(tree, abis)
    all_cases = oracle.cases(module, llvm)
    outcome = oracle.compare("patched", driver, module, declarations, all_cases, labels)
    problems = [
        f"{case}: {d.where} {d.at:#x}: {d.llvm!r} vs {d.asmgen!r}"
        for case, d in outcome.undeclared[:10]
    ] + [f"overflow: {case}" for case in outcome.overflows[:10]]
    declared = ", ".join(sorted(outcome.declared))
    step(
        f"patched writers against the generated module ({outcome.compared} blocks, "
        f"{outcome.identical} identical; declared differences: {declared or 'none'})",
        "\n".join(problems),
    )
    try:
        steps.append(f"lazy JIT: {run_lazy_jit(tree)}")
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        step("lazy JIT", str(exc))
    return changes(base, tree), steps, ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--llvm-root", type=Path, required=True)
    parser.add_argument("abi", nargs="*", help="ABIs to patch (default: all)")
    parser.add_argument("--keep", type=Path, help="keep the scratch trees and patch here")
    args = parser.parse_args(argv)
    root = args.llvm_root.resolve()
    with tempfile.TemporaryDirectory(prefix="asmgen-test-llvm-") as temp:
        work = args.keep.resolve() if args.keep else Path(temp)
        work.mkdir(parents=True, exist_ok=True)
        changed, steps, ok = check(root, args.abi, work)
    head = llvm_trees.git(ROOT, "rev-parse", "--short=12", "HEAD").stdout.strip()
    print()
    print(f"[ORC] Regenerate the ORC ABI support tables with asmgen ({llvm_version(root)})")
    print()
    print(f"Generated by asmgen {__version__} ({head or 'no git revision'}) from its")
    print("abi_specs/ and templates/; every offset and field found by assembling.")
    print(*changed, sep="\n")
    print()
    print("Checked with asmgen's make test-llvm:")
    print(*(f"- {line}" for line in steps), sep="\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
