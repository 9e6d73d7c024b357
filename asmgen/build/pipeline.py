"""Build each spec's table: the resolver, then its trampoline and stub units."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from asmgen.build.layout import build_table
from asmgen.build.patchkinds import ADDRESS_PARAMS
from asmgen.build.reentry import build_reentry
from asmgen.build.table import Table
from asmgen.build.units import build_units
from asmgen.build.unwind import BUILDERS, UnwindError
from asmgen.errors import AsmgenError
from asmgen.resources import TEMPLATES_DIR
from asmgen.spec.files import SpecFile


def template_for(item: SpecFile, templates_dir: Path = TEMPLATES_DIR) -> Path:
    path = templates_dir / item.spec.arch / item.spec.template
    if not path.is_file():
        raise AsmgenError(
            f"template {path} not found for arch {item.spec.arch!r}",
            item.path,
            item.spec.line_of("template") or item.spec.line_of("arch"),
        )
    return path


def build(item: SpecFile, templates_dir: Path = TEMPLATES_DIR) -> Table:
    try:
        table = build_table(item.spec, item.path, template_for(item, templates_dir))
        _check_addresses(table)
        _check_unwind(item, table.code)
        units = build_units(item.spec, templates_dir)
        return replace(table, units=units, reentry=build_reentry(item.spec, templates_dir))
    except AsmgenError as exc:
        if exc.path is not None:
            raise
        # Naming no file, it is about the tools the spec's backend picked
        # (llvm-mc not found, say): point at that choice.
        line = item.spec.line_of("backend")
        raise AsmgenError(exc.message, item.path, line, hint=exc.hint) from None


def _check_addresses(table: Table) -> None:
    """A patch that takes a value takes an address LLVM's writeResolverCode
    receives: every output, and `asmgen patch`, writes the resolver from them."""
    for patch in table.patches:
        if any(f.bits for f in patch.fields) and patch.name not in ADDRESS_PARAMS:
            holder = [s for s in table.statements if s.offset <= patch.offset < s.offset + s.size]
            raise AsmgenError(
                f"patch {patch.name!r} takes an address, but LLVM's writeResolverCode only "
                f"receives {' and '.join(ADDRESS_PARAMS)}",
                table.template_path,
                holder[0].template_line if holder else None,
            )


def _check_unwind(item: SpecFile, code: bytes) -> None:
    """The unwind information the spec asks for describes this code (the
    emitters build it again from the table)."""
    if item.spec.unwind is None:
        return
    try:
        BUILDERS[item.spec.unwind](code)
    except UnwindError as exc:
        raise AsmgenError(f"unwind: {exc}", item.path, item.spec.line_of("unwind")) from None


def build_all(items: list[SpecFile], templates_dir: Path = TEMPLATES_DIR) -> list[Table]:
    return [build(item, templates_dir) for item in items]
