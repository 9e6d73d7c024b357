"""Cross-check the two assemblers: keystone and llvm-mc must agree.

For a spec keystone builds whose arch llvm-mc knows too (a `keystone` and an
`llvm_triple` binding in its record), the template is rendered and assembled
by each, twice: with every patch field at its placeholder, and with every
field's bits all set.  Statements are compared one by one.  Any difference
that remains must be listed in ``crosscheck_allow.yaml`` (next to this
module) with the reason it is harmless; `Difference.allowed` carries that
reason, and `unexplained()` keeps the differences nobody has explained.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from asmgen.build.discover import assemble_template
from asmgen.build.frame import compute_frame
from asmgen.build.patchkinds import KINDS
from asmgen.build.render import FieldUse
from asmgen.build.source import Assembly
from asmgen.errors import AsmgenError
from asmgen.resources import TEMPLATES_DIR
from asmgen.spec import Spec, load_spec

ALLOW_LIST = Path(__file__).resolve().parent / "crosscheck_allow.yaml"
BACKENDS = ("keystone", "llvm-mc")


@dataclass(frozen=True)
class Difference:
    abi: str
    variant: str  # "placeholders" or "fields set"
    statement: str
    template_line: int
    keystone_offset: int
    llvm_mc_offset: int
    keystone: bytes
    llvm_mc: bytes
    allowed: str | None = None  # the allow-list's reason, if it explains this difference

    def __str__(self) -> str:
        text = (
            f"{self.abi} ({self.variant}) line {self.template_line}: {self.statement!r}: "
            f"keystone {self.keystone.hex() or '-'} @ {self.keystone_offset:#x}, "
            f"llvm-mc {self.llvm_mc.hex() or '-'} @ {self.llvm_mc_offset:#x}"
        )
        return text + (f" (allowed: {self.allowed})" if self.allowed else "")


@dataclass(frozen=True)
class Allowance:
    arch: str
    statement: re.Pattern
    keystone: str
    llvm_mc: str
    reason: str

    def explains(self, arch: str, diff: Difference) -> bool:
        return (
            self.arch == arch
            and self.statement.fullmatch(diff.statement) is not None
            and self.keystone == diff.keystone.hex()
            and self.llvm_mc == diff.llvm_mc.hex()
        )


@cache
def load_allow_list(path: Path = ALLOW_LIST) -> tuple[Allowance, ...]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise AsmgenError(f"cannot read the cross-check allow-list: {exc}", path) from None
    entries = []
    for i, entry in enumerate(data.get("allow") or ()):
        try:
            entries.append(
                Allowance(
                    arch=str(entry["arch"]),
                    statement=re.compile(str(entry["statement"])),
                    keystone=str(entry["keystone"]).lower(),
                    llvm_mc=str(entry["llvm_mc"]).lower(),
                    reason=str(entry["reason"]).strip(),
                )
            )
        except (KeyError, TypeError, re.error) as exc:
            raise AsmgenError(f"allow[{i}]: malformed entry ({exc})", path) from None
        if not entries[-1].reason:
            raise AsmgenError(f"allow[{i}]: an entry needs a reason", path)
    return tuple(entries)


def supports_both(spec: Spec) -> bool:
    """keystone builds the spec and llvm-mc knows its arch.  A spec that names
    `backend: llvm-mc` on an arch keystone has uses instructions keystone
    0.9.2 lacks (a vector facility newer than it), so only llvm-mc assembles
    it."""
    arch = spec.arch_info
    keystone = arch.keystone is not None and spec.backend == "keystone"
    return keystone and arch.triple(spec.endian) is not None


def _assemble(spec: Spec, backend: str, template: Path, field_value) -> Assembly:
    variant = spec.model_copy(update={"backend": backend})
    return assemble_template(variant, template, compute_frame(variant), field_value)[1]


def _compare(spec: Spec, variant: str, ks: Assembly, mc: Assembly) -> list[Difference]:
    if len(ks.statements) != len(mc.statements):
        raise AsmgenError(f"{spec.abi}: the backends parsed different statement lists")
    diffs = []
    for a, b in zip(ks.statements, mc.statements, strict=True):
        ks_bytes = ks.code[a.offset : a.offset + a.size]
        mc_bytes = mc.code[b.offset : b.offset + b.size]
        if ks_bytes != mc_bytes or a.offset != b.offset:
            diffs.append(
                Difference(
                    spec.abi,
                    variant,
                    a.text,
                    a.template_line,
                    a.offset,
                    b.offset,
                    ks_bytes,
                    mc_bytes,
                )
            )
    return diffs


def cross_check(spec_path: Path, templates_dir: Path = TEMPLATES_DIR) -> list[Difference]:
    """Every statement on which keystone and llvm-mc disagree, for one spec.

    Returns [] for a spec whose arch only one backend supports.  Differences
    the allow-list explains carry its reason in `allowed`.
    """
    spec = load_spec(spec_path)
    if not supports_both(spec):
        return []
    template = templates_dir / spec.arch / spec.template

    def placeholder(index: int, use: FieldUse) -> int:
        kind = KINDS[use.kind]
        return kind.encode(spec.placeholders.get(use.patch, 0)) if kind.carries_address else 0

    def full(index: int, use: FieldUse) -> int:
        return KINDS[use.kind].mask

    diffs = []
    for variant, values in (("placeholders", placeholder), ("fields set", full)):
        ks, mc = (_assemble(spec, backend, template, values) for backend in BACKENDS)
        diffs += _compare(spec, variant, ks, mc)
    allowances = load_allow_list()
    explained = []
    for diff in diffs:
        reason = next((a.reason for a in allowances if a.explains(spec.arch, diff)), None)
        explained.append(Difference(**{**diff.__dict__, "allowed": reason}) if reason else diff)
    return explained


def unexplained(diffs: list[Difference]) -> list[Difference]:
    return [d for d in diffs if d.allowed is None]
