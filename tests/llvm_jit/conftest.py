"""Prints the lazy-JIT outcome tables after the session (pytest captures the
tests' own output)."""

from __future__ import annotations


def pytest_terminal_summary(terminalreporter):
    from jit_build import REPORTS

    if REPORTS:
        terminalreporter.section("LLVM 19 lazy JIT: outcome by class")
        for text in REPORTS:
            terminalreporter.write_line(text)
            terminalreporter.write_line("")
