"""Build each spec's table: the resolver, then its trampoline and stub units."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from asmgen.build.disasm import listing
from asmgen.build.gather import parallel
from asmgen.build.layout import build_table
from asmgen.build.patchkinds import ADDRESS_PARAMS
from asmgen.build.reentry import build_reentry
from asmgen.build.table import Table
from asmgen.build.units import build_units
from asmgen.build.unwind import Unwind, UnwindError, resolver_unwind, trampoline_unwind
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
    def resolver() -> tuple[Table, Unwind | None]:
        table = build_table(item.spec, item.path, template_for(item, templates_dir))
        _check_addresses(table)
        return table, _resolver_unwind(item, table.code)

    try:
        # Independent parts, side by side: their llvm-mc runs are gathered (gather.py).
        (table, unwind), units, reentry = parallel(
            [
                resolver,
                lambda: build_units(item.spec, templates_dir),
                lambda: build_reentry(item.spec, templates_dir),
            ]
        )
        table = replace(table, units=units, reentry=reentry)
        return with_listings(replace(table, unwind=_unwind(item, table, unwind)))
    except AsmgenError as exc:
        if exc.path is not None:
            raise
        # Naming no file, it is about the tools the spec's backend picked
        # (llvm-mc not found, say): point at that choice.
        line = item.spec.line_of("backend")
        raise AsmgenError(exc.message, item.path, line, hint=exc.hint) from None


def with_listings(table: Table) -> Table:
    """The table with its own and its units' annotated listings, computed once
    here for every emitter."""
    units = table.units
    if units is not None:
        units = replace(
            units,
            trampoline=replace(units.trampoline, listing=tuple(listing(units.trampoline))),
            stub=replace(units.stub, listing=tuple(listing(units.stub))),
        )
    return replace(table, units=units, listing=tuple(listing(table)))


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


def _resolver_unwind(item: SpecFile, code: bytes):
    """The unwind information the spec asks for, of its resolver; None if none."""
    if item.spec.unwind is None:
        return None
    try:
        return resolver_unwind(item.spec, code)
    except UnwindError as exc:
        raise AsmgenError(f"unwind: {exc}", item.path, item.spec.line_of("unwind")) from None


def _unwind(item: SpecFile, table: Table, resolver) -> Unwind | None:
    """The table's unwind information: the resolver's, and one trampoline's."""
    if resolver is None:
        return None
    trampoline = None
    if table.units is not None:
        try:
            trampoline = trampoline_unwind(item.spec, table.units.trampoline.code)
        except ValueError as exc:
            raise AsmgenError(
                f"unwind: {item.spec.unwind} cannot describe the trampoline: {exc}",
                item.path,
                item.spec.line_of("unwind"),
            ) from None
    return Unwind(item.spec.unwind, resolver, trampoline)


def build_all(items: list[SpecFile], templates_dir: Path = TEMPLATES_DIR) -> list[Table]:
    """Every spec's table, built side by side; the first spec's error is raised."""
    return parallel([lambda item=item: build(item, templates_dir) for item in items])
