"""Native check of the vector state the emulator does not model: where the
arch's record has a native harness (`Arch.native_vectors`) and this host runs
the arch, the upper parts of the wide vector registers are checked on the
real CPU with asmgen.verify.vector_harness (ABI-neutral: it calls only its own
code, so tables of any convention run).

The contract: every FP argument register (call.fp_args) reaches the landing
with its low 128 bits, and every register a served caller convention passes
or keeps wider on this CPU (its `wide` facts: 256- and 512-bit vector
arguments, registers a convention preserves whole) reaches it at that width.
A CPU without the wide registers fails the check loudly.
"""

from __future__ import annotations

import platform

from asmgen.arches.model import EmuFacts
from asmgen.verify.forked import run_forked
from asmgen.verify.model import FAIL, NA, PASS, CheckResult, Finding, Subject, broke


def vector_width_check(subject: Subject, facts: EmuFacts | None) -> CheckResult:
    from asmgen.verify.vector_harness import survival

    host = (platform.machine(), platform.system())
    arch = subject.spec.arch_info
    if arch.native_vectors is None or facts is None or host not in facts.native_hosts:
        why = f"needs {arch.name} code on this host, and a native harness for it"
        return CheckResult("vector_width", NA, "native", [], why)
    if subject.units is None:
        why = "the table has no trampolines and stubs to run"
        return CheckResult("vector_width", NA, "native", [], why)
    from asmgen.verify.vector_harness import cpu_flags, kept_bytes, run_code

    out = run_forked(lambda: run_code(arch, subject.instantiate, subject.units))
    if isinstance(out, Finding):
        return CheckResult("vector_width", FAIL, "native", [out])
    seen = survival(out)
    wide, width = out["shape"]["name"], out["shape"]["width"]
    found = []
    vectors = [r.name for r in arch.registers if r.cls == "vec"]
    for name in subject.spec.call.fp_args:
        index = vectors.index(name)
        if not seen.xmm[index]:
            found.append(Finding(f"{wide}{index} bits 0-127", "kept", "changed"))
    features = cpu_flags() & {feature for feature, _ in arch.wide_vectors}
    for name, (bits, keepers) in wide_registers(subject.spec, features).items():
        index = vectors.index(name)
        top = min(bits, 8 * width)
        if not kept_bytes(out, index, 0x10, top // 8):
            what = f"{wide}{index} bits 128-{top - 1}"
            lost = Finding(what, "as the caller left them", "changed")
            found.append(broke(lost, ", ".join(keepers)))
    note = f"{wide}, {len(seen.xmm)} registers; host: {', '.join(sorted(features)) or 'SSE only'}"
    return CheckResult("vector_width", FAIL if found else PASS, "native", found, note)


def wide_registers(spec, features: set[str]) -> dict[str, tuple[int, list[str]]]:
    """Register -> (bits, the served conventions that pass or keep it that
    wide) on a CPU with `features`."""
    found: dict[str, tuple[int, list[str]]] = {}
    for caller in spec.served:
        for name, bits in caller.widths(features).items():
            have, keepers = found.get(name, (0, []))
            found[name] = (max(have, bits), [*keepers, caller.name])
    vectors = [r.name for r in spec.arch_info.registers if r.cls == "vec"]
    return dict(sorted(found.items(), key=lambda item: vectors.index(item[0])))
