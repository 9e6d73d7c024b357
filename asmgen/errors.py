"""The one error type every pipeline stage raises.

It carries the file and line of the spec or template at fault, so the CLI can
print ``path:line[:col]: error: message`` and exit 2 instead of a traceback.
"""

from __future__ import annotations

import re
from pathlib import Path


class AsmgenError(Exception):
    def __init__(
        self,
        message: str,
        path: str | Path | None = None,
        line: int | None = None,
        col: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = str(path) if path is not None else None
        self.line = line
        self.col = col
        self.hint = hint

    def __str__(self) -> str:
        where = self.path or "asmgen"
        if self.line is not None:
            where += f":{self.line}"
            if self.col is not None:
                where += f":{self.col}"
        text = f"{where}: error: {self.message}"
        if self.hint:
            text += f" (hint: {self.hint})"
        # One line, whatever a tool's or a template's message held: each run
        # of white space that breaks the line becomes one space.  (Matching
        # whole runs keeps this linear; a pattern that starts with `\s*`
        # tries every start in a long run of spaces, quadratic in its length.)
        return _SPACE.sub(_one_line, text)


_SPACE = re.compile(r"\s+")


def _one_line(run: re.Match) -> str:
    space = run.group()
    return " " if "\n" in space or "\r" in space else space
