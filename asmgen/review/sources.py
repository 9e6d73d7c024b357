"""Turn `asmgen review` arguments into tables: ABI name -> tables.json record.

Every kind of input becomes the same thing, the records `emit_json` writes, so
the comparison never asks where a table came from:

- a git revision: its committed `generated/tables.json` (`git show`), which CI
  keeps equal to what that revision's specs and templates generate;
- a checkout (a folder with `abi_specs/`), such as the working tree: built
  fresh in memory, so uncommitted spec, template and generator edits count
  (the working tree's tables.json comes through the build cache, keyed by
  all of those);
- a folder of specs, or one spec file: built in memory with `--templates`;
- a `tables.json` file: read as it is;
- LLVM's sources (an LLVM checkout, a git revision of one, or either with a
  `.patch`/`.diff` applied): every ORC ABI class's tables read from
  OrcABISupport.h/.cpp (llvm_inputs, llvm_side), keyed by class name, with
  the side's trampoline and stub writers as records of their own.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from asmgen.build.pipeline import build_all
from asmgen.emit.cached import cached_outputs
from asmgen.emit.json_tables import table_record
from asmgen.errors import AsmgenError
from asmgen.review.llvm_side import LlvmSide
from asmgen.review.llvm_tables import Finding
from asmgen.spec import Spec, load_spec
from asmgen.spec.files import SpecFile, spec_files

TABLES_IN_REPO = "generated/tables.json"


@dataclass(frozen=True)
class Source:
    label: str  # how the review names this side
    records: dict[str, dict]  # ABI -> tables.json record
    specs: dict[str, tuple[Spec, Path]] = field(default_factory=dict)  # ABI -> its contract
    # LLVM sources: the side as read (classes, writers); None for asmgen's tables.
    llvm: LlvmSide | None = None

    def findings(self, name: str | None) -> list[Finding]:
        """What is wrong in this side's sources for `name`, found without running it."""
        if self.llvm is None or name not in self.llvm.classes:
            return []
        return self.llvm.classes[name].findings

    def notes(self, name: str | None) -> list[str]:
        if self.llvm is None or name is None:
            return []
        return self.llvm.notes.get(name, [])

    def users(self, name: str) -> set[str]:
        """The classes whose trampolines or stubs the unit record `name` is."""
        if self.llvm is None:
            return set()
        return {c for c, cls in self.llvm.classes.items() if name in cls.units.values()}


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, text=True, check=False
        )
    except FileNotFoundError as exc:
        raise AsmgenError("git not found; name tables.json files or specs instead") from exc


def repo_root(start: Path) -> Path | None:
    done = _git(start, "rev-parse", "--show-toplevel")
    return Path(done.stdout.strip()) if done.returncode == 0 else None


def _from_tables_json(text: str, where: str) -> dict[str, dict]:
    try:
        document = json.loads(text)
        abis = document["abis"]
    except (ValueError, KeyError, TypeError) as exc:
        raise AsmgenError(f"not a tables.json (no 'abis' object): {exc}", where) from exc
    if not isinstance(abis, dict) or not all(
        isinstance(r, dict) and "hex" in r and "arch" in r for r in abis.values()
    ):
        raise AsmgenError("not a tables.json: every ABI needs 'hex' and 'arch'", where)
    return abis


def _from_specs(label: str, items: list[SpecFile], templates: Path) -> Source:
    # Specs load without the contract checks (spec.py): a review shows what an
    # edit that breaks a contract does, and old revisions predate some checks.
    tables = build_all(items, templates)
    records = {item.spec.abi: table_record(t) for item, t in zip(items, tables, strict=True)}
    return Source(label, records, {item.spec.abi: (item.spec, item.path) for item in items})


def _revision_specs(commit: str, repo: Path) -> dict[str, tuple[Spec, Path]]:
    """The specs as they were at `commit` (for verify), read into a scratch folder
    with that revision's convention files.  A spec this asmgen cannot read (one
    older than convention files, with a `call:` block) is left out, and the
    review says that side has no spec."""
    listed = _git(repo, "ls-tree", "-r", "--name-only", commit, "abi_specs/")
    names = [n for n in listed.stdout.split() if n.endswith((".yaml", ".yml"))]
    found = {}
    with tempfile.TemporaryDirectory(prefix="asmgen-review-") as scratch:
        for name in names:
            path = Path(scratch) / Path(name).relative_to("abi_specs")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(_git(repo, "show", f"{commit}:{name}").stdout, encoding="utf-8")
        for name in names:
            path = Path(scratch) / Path(name).relative_to("abi_specs")
            if path.parent != Path(scratch):
                continue
            try:
                spec = load_spec(path, contract=False)
            except AsmgenError:
                continue
            found[spec.abi] = (spec, Path(name))
    return found


def _from_revision(rev: str, repo: Path, with_specs: bool) -> Source:
    commit = _git(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    if commit.returncode != 0:
        raise AsmgenError(
            f"{rev!r} is not a file, a folder or a git revision of {repo}", "asmgen review"
        )
    shown = _git(repo, "show", f"{commit.stdout.strip()}:{TABLES_IN_REPO}")
    if shown.returncode != 0:
        raise AsmgenError(f"revision {rev} has no {TABLES_IN_REPO}", repo)
    records = _from_tables_json(shown.stdout, f"{rev}:{TABLES_IN_REPO}")
    specs = _revision_specs(commit.stdout.strip(), repo) if with_specs else {}
    return Source(rev, records, specs)


def resolve(arg: str, repo: Path | None, templates: Path, with_specs: bool = False) -> Source:
    """One side of a review from its command-line argument."""
    path = Path(arg)
    if path.is_file():
        if path.suffix == ".json":
            return Source(arg, _from_tables_json(path.read_text(encoding="utf-8"), arg))
        if path.suffix in (".yaml", ".yml"):
            return _from_specs(arg, [SpecFile(path, load_spec(path, contract=False))], templates)
        raise AsmgenError("expected a tables.json, a spec (.yaml) or a folder", path)
    if path.is_dir():
        if (path / "abi_specs").is_dir():
            items = spec_files(path / "abi_specs", contract=False)
            return _from_specs(arg, items, path / "templates")
        return _from_specs(arg, spec_files(path, contract=False), templates)
    if repo is None:
        raise AsmgenError(f"{arg!r} is not a file or a folder, and there is no git repository")
    return _from_revision(arg, repo, with_specs)


def working_tree(repo: Path | None, fallback: Path) -> Source:
    """The checkout of the git repository, or asmgen's own outside any repository."""
    root = fallback if repo is None else repo
    if not (root / "abi_specs").is_dir():
        raise AsmgenError("no abi_specs/ folder here; name NEW explicitly", root)
    items = spec_files(root / "abi_specs", contract=False)
    try:
        # What `asmgen generate` would write, usually from the build cache.
        built = cached_outputs(root / "abi_specs", root / "templates")
    except AsmgenError:
        # A spec that breaks its contract (refused by generate) still reviews.
        return _from_specs("working tree", items, root / "templates")
    records = _from_tables_json(built["tables.json"], "working tree")
    return Source("working tree", records, {i.spec.abi: (i.spec, i.path) for i in items})


# --- LLVM's sources -------------------------------------------------------------------------


def _llvm_tree(arg: str, repo: Path | None):
    """`arg` as an LLVM tree (a checkout folder or a revision of an LLVM repository),
    or None when it is not one."""
    from asmgen.review import llvm_inputs

    path = Path(arg)
    if path.is_dir():
        return llvm_inputs.from_checkout(path) if llvm_inputs.checkout_root(path) else None
    if not path.exists() and llvm_inputs.is_llvm_repo(repo):
        return llvm_inputs.from_revision(repo, arg)
    return None


def is_llvm_input(arg: str | None, repo: Path | None) -> bool:
    from asmgen.review import llvm_inputs

    if arg is None:
        return llvm_inputs.is_llvm_repo(repo)
    path = Path(arg)
    if llvm_inputs.is_patch(path):
        return True
    if path.is_dir():
        return llvm_inputs.checkout_root(path) is not None
    return not path.exists() and llvm_inputs.is_llvm_repo(repo)


def llvm_pair(old: str, new: str | None, repo: Path | None, conventions, compile_writers: bool):
    """OLD and NEW from LLVM's sources.  NEW may be a patch applied to OLD; a lone
    patch (OLD) applies to the checkout around the current folder."""
    from asmgen.review import llvm_inputs
    from asmgen.review.llvm_side import read_side

    def tree(arg: str):
        found = _llvm_tree(arg, repo)
        if found is None:
            raise AsmgenError(
                f"{arg!r} is not LLVM's sources: review an LLVM checkout, a revision of one, "
                "or a .patch/.diff against one",
                "asmgen review",
            )
        return found

    if llvm_inputs.is_patch(Path(old)) and new is None:
        if not llvm_inputs.is_llvm_repo(repo):
            raise AsmgenError(
                "a lone patch applies to the LLVM checkout around the current folder; "
                "name the checkout first: asmgen review LLVM_CHECKOUT PATCH"
            )
        base = llvm_inputs.from_checkout(repo)
        old_tree, new_tree = base, llvm_inputs.with_patch(base, Path(old))
    elif new is None:
        old_tree = tree(old)
        new_tree = llvm_inputs.from_checkout(repo)
        new_tree = llvm_inputs.Tree(new_tree.root, "working tree")
    else:
        old_tree = tree(old)
        if llvm_inputs.is_patch(Path(new)):
            new_tree = llvm_inputs.with_patch(old_tree, Path(new))
        else:
            new_tree = tree(new)
    sides = [read_side(t, conventions, compile_writers) for t in (old_tree, new_tree)]
    return tuple(
        Source(
            side.label, {**{n: c.record for n, c in side.classes.items()}, **side.units}, llvm=side
        )
        for side in sides
    )
