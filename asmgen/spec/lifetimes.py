"""Each register role against what the templates do with registers of their own.

A role names a register the templates write at a certain time; that register
must not be one the templates, the trampoline's caller or the landed function
still need then.  The templates' own uses are the arch's facts: the register
a push-style frame is addressed through (`frame_pointer`), the one a call
leaves its return address in (`call_link`), the registers no code may write
(`reserved`), and whether the landing address is moved before the saved
registers are restored (`landing_before_restore`).  `asmgen verify` would
find each of these broken; they are refused when the spec loads, at the role's
line, or at `convention:` when the convention's registers are what this arch's
template cannot serve.  What no code can do whatever the template (an argument
in a reserved register, or in the register a call links into) is refused in
the convention file itself (spec/convention.py).
"""

from __future__ import annotations

from pathlib import Path

from asmgen.errors import AsmgenError
from asmgen.spec.schema import REENTRY_ARGS, Spec


def check_lifetimes(spec: Spec, where: dict[tuple, int], path: Path) -> None:
    arch = spec.arch_info
    call, resolver, trampoline = spec.call, spec.resolver, spec.trampoline
    written = {
        ("resolver", "scratch"): resolver.scratch,
        ("resolver", "temp"): resolver.temp,
        ("resolver", "landing"): resolver.landing,
        ("resolver", "frame_pointer"): resolver.frame_pointer,
        ("trampoline", "link"): trampoline.link,
        ("trampoline", "saved_link"): trampoline.saved_link,
        ("trampoline", "scratch"): trampoline.scratch,
        ("trampoline", "identity"): trampoline.identity,
        ("stub", "scratch"): spec.stub.scratch,
    }
    # The re-entry call's register arguments, loaded while the frame is live.
    loaded = dict(enumerate(call.int_args[:REENTRY_ARGS]))

    def refuse(key: tuple, message: str, reg: str | None = None) -> None:
        raise AsmgenError(f"{'.'.join(key)}: {reg or written[key]} {message}", path, where.get(key))

    def refuse_convention(message: str) -> None:
        # The convention's facts are right (reviewed, confirmed by compiled
        # code); what fails is this arch's resolver template serving them.
        raise AsmgenError(f"convention: {message}", path, where.get(("convention",)))

    for key, reg in written.items():
        if reg is not None and reg in arch.reserved:
            refuse(key, f"is reserved on {arch.name}: no code may write it")
    # Written while the resolver's frame is live.
    if arch.frame_pointer:
        for key in (("resolver", "scratch"), ("resolver", "temp")):
            if written[key] == arch.frame_pointer:
                refuse(key, f"is the frame pointer the {arch.name} resolver addresses its frame by")
        for i, reg in loaded.items():
            if reg == arch.frame_pointer:
                refuse_convention(
                    f"{spec.convention} passes argument {i} in {reg}, the frame pointer the "
                    f"{arch.name} resolver addresses its frame by"
                )
    for i, reg in loaded.items():
        if reg == trampoline.saved_link:
            refuse(
                ("trampoline", "saved_link"),
                f"carries argument {i} of the re-entry call ({spec.convention}), which "
                "overwrites the caller's return address",
            )
    if not arch.landing_before_restore:
        for i, reg in enumerate(call.int_args):
            if reg in call.result_regs:
                refuse_convention(
                    f"{spec.convention} passes argument {i} in {reg}, which carries the "
                    f"re-entry function's result: the {arch.name} resolver restores the "
                    "arguments before it reads the result"
                )
    if loaded.get(0) is not None and loaded[0] == trampoline.link:
        refuse(
            ("trampoline", "link"),
            f"carries argument 0 of the re-entry call ({spec.convention}), which overwrites "
            "the trampoline's return address before the second argument reads it",
        )
    frame_pointer = resolver.frame_pointer
    if frame_pointer is not None and frame_pointer in (trampoline.saved_link, trampoline.link):
        refuse(
            ("resolver", "frame_pointer"),
            "is also trampoline.saved_link or trampoline.link, its frame-record partner",
        )
    _check_landing(spec, refuse)
    _check_units(spec, written, refuse)


def _check_landing(spec: Spec, refuse) -> None:
    """resolver.landing holds the landing address until the resolver jumps: the
    landed function finds it changed, and nothing may overwrite it before."""
    arch, call, resolver = spec.arch_info, spec.call, spec.resolver
    key = ("resolver", "landing")
    landing = resolver.landing
    if landing is None:
        return
    if landing in call.int_args or landing in call.callee_saved:
        refuse(key, "is an argument or callee-saved register, which the landed function reads")
    if landing == arch.call_link:
        refuse(key, "holds the caller's return address when the resolver lands")
    restored = (*resolver.saves, *resolver.fp_saves, resolver.frame_pointer)
    if arch.landing_before_restore and landing in restored:
        refuse(key, "is restored after the landing address is moved into it")


def _check_units(spec: Spec, written: dict, refuse) -> None:
    """Trampolines and stubs run between a caller and its callee: they may
    write only registers the call leaves free, and the resolver must keep the
    caller's return address where the trampoline put it."""
    arch, call, resolver, trampoline = spec.arch_info, spec.call, spec.resolver, spec.trampoline
    busy = {*call.int_args, *call.fp_args, *call.callee_saved, arch.stack_pointer}
    saved_link = trampoline.saved_link
    units = (("trampoline", "scratch"), ("trampoline", "saved_link"), ("stub", "scratch"))
    for key in (*units, ("trampoline", "identity")):
        reg = written[key]
        if reg is None:
            continue
        if reg in busy:
            refuse(key, "is an argument, callee-saved or stack register the callee reads")
        # A trampoline that keeps the return address in saved_link may reuse the link.
        if reg == arch.call_link and not (key == ("trampoline", "scratch") and saved_link):
            refuse(key, "holds the caller's return address")
    identity = trampoline.identity
    if identity is not None:
        if identity in (trampoline.scratch, spec.stub.scratch) or identity in resolver.saves:
            refuse(
                ("trampoline", "identity"),
                "is also a unit's scratch or a saved register: the resolver reads it after both",
            )
        if resolver.landing is None:
            refuse(
                ("trampoline", "identity"),
                "needs resolver.landing: a resolver entered by a jump leaves by one",
            )
    link_key = ("trampoline", "link")
    if saved_link is not None:
        if saved_link in (trampoline.scratch, trampoline.link):
            refuse(("trampoline", "saved_link"), "is also trampoline.scratch or trampoline.link")
        if saved_link in call.result_regs:
            refuse(("trampoline", "saved_link"), "carries the re-entry function's result")
        if saved_link not in resolver.saves and resolver.frame_pointer is None:
            refuse(("trampoline", "saved_link"), "is not kept by the resolver (resolver.saves)")
        if trampoline.link is not None and arch.call_link and trampoline.link != arch.call_link:
            refuse(link_key, f"is not {arch.call_link}, where the trampoline's call links")
    elif trampoline.link is not None and (
        trampoline.link in busy or trampoline.link == arch.call_link
    ):
        refuse(link_key, "holds a value the callee reads (an argument, or a return address)")
