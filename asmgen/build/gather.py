"""Run a build's independent parts side by side, and gather the tool runs they
wait on into batches.

Starting llvm-mc costs far more than assembling a resolver, and a cold
build of every spec asks for dozens of runs, each spec a chain of them (the
table, its probes, the units, the reentry sources).  `parallel` runs such
chains side by side, in threads; a part that needs a tool run calls
`submit`, which waits until every part still running waits too, and then
hands all the waiting jobs of one kind to their runner in one call (which
may serve them with a single process).

The parts take turns: one runs Python at a time, and the turn passes only
where a part waits (in `submit`, in `blocking`, or for parts it started).
Python runs one thread at a time anyway (the GIL), and threads that contend
for it cost a third more CPU than the same work done in one: taking turns
keeps the threads from contending, and the tools run while the parts wait.

Outside `parallel`, `submit` runs its job at once.  Results never depend on
the batching: a runner returns for each job what it would have returned for
that job alone.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from typing import Any

# runner(jobs) -> one result per job, in order.
Runner = Callable[[list[Any]], list[Any]]


class _Cancelled(BaseException):
    """Raised in a part whose result no longer matters (see `parallel`); a
    BaseException, so that no `except Exception` in the part takes it for
    the part's own failure."""


def _never() -> bool:
    return False


class _Slot:
    __slots__ = ("cancelled", "done", "error", "result")

    def __init__(self, cancelled: Callable[[], bool]) -> None:
        self.cancelled = cancelled  # the submitting part's (see `parallel`)
        self.done = False
        self.result: Any = None
        self.error: BaseException | None = None


class _Gathering:
    """The parts running under one top-level `parallel`, and the jobs they wait on."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.turn = threading.Lock()  # held by the one part that runs Python
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
            if slot.cancelled():  # its part failed meanwhile: no run for it
                slot.error, slot.done = _Cancelled(), True
            else:
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


def _gathering() -> _Gathering | None:
    """The gathering of the part this thread runs, None outside `parallel`."""
    return getattr(_local, "gathering", None) if getattr(_local, "in_part", False) else None


@contextmanager
def blocking() -> Iterator[None]:
    """Around a wait for something outside Python (a process): the other parts
    take their turns meanwhile."""
    gathering = _gathering()
    if gathering is None:
        yield
        return
    gathering.turn.release()
    try:
        yield
    finally:
        gathering.turn.acquire()


def checkpoint() -> None:
    """Stop here if this part of a `parallel` call was cancelled (see there)."""
    if getattr(_local, "cancelled", _never)():
        raise _Cancelled


def submit(key: Hashable, runner: Runner, job: Any) -> Any:
    """`runner([job])[0]`, with `job` batched with the other parts' jobs of the same
    `key` and runner when called from inside `parallel`."""
    gathering = _gathering()
    if gathering is None:
        return runner([job])[0]
    checkpoint()
    slot = _Slot(getattr(_local, "cancelled", _never))
    gathering.turn.release()
    try:
        with gathering.cond:
            gathering.pending.append((key, runner, job, slot))
            gathering.running -= 1
            gathering.flush_if_idle()
            while not slot.done:
                gathering.cond.wait()
            gathering.running += 1
    finally:
        gathering.turn.acquire()
    if slot.error is not None:
        raise slot.error
    return slot.result


def parallel(calls: Sequence[Callable[[], Any]]) -> list[Any]:
    """Each call's result, the calls run side by side; the exception of the first
    call (by position) that raised one is raised, as a loop would.

    Once a call has raised, the calls after it can change nothing of that:
    they are cancelled at their next `submit` or `checkpoint` (and so are the
    parts they started), so that a failing build does not go on assembling
    what it will throw away.  The calls before it run on: one of them may
    raise first."""
    if not calls:
        return []
    gathering = _gathering()
    top = gathering is None
    if top:
        gathering = _Gathering()
    outer = getattr(_local, "cancelled", _never)
    results: list[Any] = [None] * len(calls)
    errors: list[BaseException | None] = [None] * len(calls)

    def cancelled(index: int) -> bool:
        return any(error is not None for error in errors[:index]) or outer()

    def part(index: int, holding: bool = False) -> None:
        """Run call `index` as a part: with the turn (`holding`: this thread has
        it already), and with this part's gathering and cancellation."""
        saved = (getattr(_local, "gathering", None), getattr(_local, "cancelled", _never))
        _local.gathering, _local.cancelled = gathering, partial(cancelled, index)
        if not holding:
            gathering.turn.acquire()
        was_part, _local.in_part = getattr(_local, "in_part", False), True
        try:
            results[index] = calls[index]()
        except BaseException as exc:
            errors[index] = exc
        finally:
            _local.in_part = was_part
            _local.gathering, _local.cancelled = saved
            gathering.turn.release()
            with gathering.cond:
                gathering.running -= 1
                gathering.flush_if_idle()

    with gathering.cond:
        gathering.running += len(calls) - 1  # the caller's count passes to the calls
    # The first call runs in this thread (a thread fewer to start), the rest in
    # threads of their own; all take turns.
    threads = [threading.Thread(target=part, args=(i,), daemon=True) for i in range(1, len(calls))]
    for thread in threads:
        thread.start()
    try:
        part(0, holding=not top)
        for thread in threads:
            thread.join()
    finally:
        if not top:
            gathering.turn.acquire()
    with gathering.cond:
        gathering.running += 1
    for error in errors:
        if error is not None:
            raise error  # never a _Cancelled: a call before it raised
    return results
