"""`asmgen verify`: prove each table's ABI contract by running it.

model (subjects, results) -> emulate (unicorn chain), native (real CPU),
static (frame check) -> runner (declared expected violations) -> report.
Per-arch knowledge is data: facts.py (emulator); chain.py links the table's own
stubs and trampolines and holds the caller/return scaffolding.
"""

from asmgen.verify.runner import AbiReport, subject_from_table, subjects_from_generated, verify

__all__ = ["AbiReport", "subject_from_table", "subjects_from_generated", "verify"]
