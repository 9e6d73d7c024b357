"""Run a build's independent parts in threads, and gather the tool runs they
wait on into batches.

Starting llvm-mc costs far more than assembling a resolver, and a cold
build of every spec asks for dozens of runs, each spec a chain of them (the
table, its probes, the units, the reentry sources).  `parallel` runs such
chains side by side, in threads; a part that needs a tool run calls
`submit`, which waits until every part still running waits too, and then
hands all the waiting jobs of one kind to their runner in one call (which
may serve them with a single process).  The parts' own Python work is
serial (the GIL), but the tools run while it is blocked, and once for many
jobs.

Outside `parallel`, `submit` runs its job at once.  Results never depend on
the batching: a runner returns for each job what it would have returned for
that job alone.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Sequence
from typing import Any

# runner(jobs) -> one result per job, in order.
Runner = Callable[[list[Any]], list[Any]]


class _Slot:
    __slots__ = ("done", "error", "result")

    def __init__(self) -> None:
        self.done = False
        self.result: Any = None
        self.error: BaseException | None = None


class _Gathering:
    """The parts running under one top-level `parallel`, and the jobs they wait on."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.running = 1  # the thread that called the top-level `parallel`
        self.pending: list[tuple[Hashable, Runner, Any, _Slot]] = []

    def flush_if_idle(self) -> None:
        """With the lock held: when no part runs, serve every pending job, a
        batch per key and runner, each in a thread of its own; the parts go
        on when all are served.  (Letting each part go on as soon as its own
        batch was served, or sending jobs off after a short wait, made more and
        smaller batches, and was slower.)"""
        if self.running or not self.pending:
            return
        batches: dict[tuple[Hashable, Runner], list[tuple[Any, _Slot]]] = {}
        for key, runner, job, slot in self.pending:
            batches.setdefault((key, runner), []).append((job, slot))
        self.pending = []
        threads = [
            threading.Thread(target=_serve, args=(runner, entries), daemon=True)
            for (_, runner), entries in batches.items()
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.cond.notify_all()


def _serve(runner: Runner, entries: list[tuple[Any, _Slot]]) -> None:
    try:
        results = runner([job for job, _ in entries])
        for (_, slot), result in zip(entries, results, strict=True):
            slot.result = result
    except BaseException as exc:  # every job of the batch gets the runner's error
        for _, slot in entries:
            slot.error = exc
    for _, slot in entries:
        slot.done = True


_local = threading.local()


def submit(key: Hashable, runner: Runner, job: Any) -> Any:
    """`runner([job])[0]`, with `job` batched with the other parts' jobs of the same
    `key` and runner when called from inside `parallel`."""
    gathering: _Gathering | None = getattr(_local, "gathering", None)
    if gathering is None:
        return runner([job])[0]
    slot = _Slot()
    with gathering.cond:
        gathering.pending.append((key, runner, job, slot))
        gathering.running -= 1
        gathering.flush_if_idle()
        while not slot.done:
            gathering.cond.wait()
        gathering.running += 1
    if slot.error is not None:
        raise slot.error
    return slot.result


def parallel(calls: Sequence[Callable[[], Any]]) -> list[Any]:
    """Each call's result, the calls run side by side; the exception of the first
    call (by position) that raised one is raised, as a loop would."""
    gathering: _Gathering | None = getattr(_local, "gathering", None)
    top = gathering is None
    if top:
        gathering = _local.gathering = _Gathering()
    results: list[Any] = [None] * len(calls)
    errors: list[BaseException | None] = [None] * len(calls)

    def part(index: int) -> None:
        _local.gathering = gathering
        try:
            results[index] = calls[index]()
        except BaseException as exc:
            errors[index] = exc
        finally:
            with gathering.cond:
                gathering.running -= 1
                gathering.flush_if_idle()

    try:
        with gathering.cond:
            gathering.running += len(calls) - 1  # the caller waits while they run
        threads = [threading.Thread(target=part, args=(i,), daemon=True) for i in range(len(calls))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with gathering.cond:
            gathering.running += 1
    finally:
        if top:
            del _local.gathering
    for error in errors:
        if error is not None:
            raise error
    return results
