"""Where a vector-state save instruction puts each piece of state, read from
the arch's record of its area format (`Arch.vector_areas`, a VectorArea)."""

from __future__ import annotations

from asmgen.arches import Arch


def vector_slots(kind: str, arch: Arch) -> dict[str, int]:
    """Vector register -> offset of its slot inside the area (empty if unknown)."""
    area = arch.vector_area(kind)
    if area is None:
        return {}
    names = [r.name for r in arch.registers if r.cls == "vec"][: area.vectors]
    return {name: area.vector_offset + area.slot * i for i, name in enumerate(names)}


def register_slots(kind: str, arch: Arch) -> dict[str, int]:
    """Every register the image holds: the vector registers and the control words."""
    area = arch.vector_area(kind)
    if area is None:
        return {}
    control = dict(area.control)
    controls = {r.name: control[r.name] for r in arch.registers if r.name in control}
    return vector_slots(kind, arch) | controls


def fields(kind: str, arch: Arch) -> tuple[tuple[int, int, str], ...]:
    """The named fields of the area's control/status block, by which a
    finding names what an overwrite hit."""
    area = arch.vector_area(kind)
    return area.status if area is not None else ()


def parts(kind: str, arch: Arch, area_size: int) -> list[tuple[int, int, str]]:
    """(offset, size, label) of each piece of the area, lowest first."""
    area = arch.vector_area(kind)
    if area is None:
        return []
    stack_at, stack_count, stack_label = area.stack_regs
    out = [(0, area.status_size, area.status_label)]
    out += [
        (stack_at + area.slot * i, area.slot, stack_label.format(i=i)) for i in range(stack_count)
    ]
    out += [(offset, area.slot, name) for name, offset in vector_slots(kind, arch).items()]
    end = max(offset + size for offset, size, _ in out)
    if area.header and area_size > area.fixed:
        out.append((end, area.fixed - end, "reserved"))
        out.append((area.fixed, area.header, area.header_label))
        extended = area_size - area.fixed - area.header
        out.append((area.fixed + area.header, extended, area.extended_label))
        end = area_size
    if area_size > end:
        out.append((end, area_size - end, "reserved"))
    return out
