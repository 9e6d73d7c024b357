"""Native check of the vector state beyond SSE: unicorn models no AVX, so the
upper halves of YMM/ZMM are checked on the real CPU with asmgen.verify.vector_harness's
harness (ABI-neutral: it calls only its own code, so Win64 tables run too).

The contract: every FP argument register (call.fp_args) reaches the landing
at the full width the CPU has (YMM, or ZMM with AVX-512F), since __m256 and
__m512 arguments travel there.  A CPU without AVX fails the check loudly.
"""

from __future__ import annotations

import platform

from asmgen.arches.model import EmuFacts
from asmgen.verify.forked import run_forked
from asmgen.verify.model import FAIL, NA, PASS, CheckResult, Finding, Subject


def vector_width_check(subject: Subject, facts: EmuFacts | None) -> CheckResult:
    from asmgen.verify.vector_harness import survival

    host = (platform.machine(), platform.system())
    if subject.spec.arch != "x86_64" or facts is None or host not in facts.native_hosts:
        return CheckResult("vector_width", NA, "native", [], "needs x86-64 code on this host")
    if subject.units is None:
        why = "the table has no trampolines and stubs to run"
        return CheckResult("vector_width", NA, "native", [], why)
    from asmgen.verify.vector_harness import run_code

    out = run_forked(lambda: run_code(subject.instantiate, subject.units))
    if isinstance(out, Finding):
        return CheckResult("vector_width", FAIL, "native", [out])
    seen = survival(out)
    wide = out["shape"]["name"]
    found = []
    for name in subject.spec.call.fp_args:
        index = int(name.removeprefix("xmm"))
        if not seen.xmm[index]:
            found.append(Finding(f"{wide}{index} bits 0-127", "kept", "changed"))
        if not seen.upper[index]:
            found.append(Finding(f"{wide}{index} bits 128 and up", "kept", "changed"))
    note = f"{wide}, {len(seen.xmm)} registers"
    return CheckResult("vector_width", FAIL if found else PASS, "native", found, note)
