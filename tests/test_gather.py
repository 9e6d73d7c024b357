"""gather.py: parts run side by side, their tool runs batched, errors as a loop's."""

from __future__ import annotations

import threading
import time

import pytest

from asmgen.build import gather


class Recorder:
    """A runner that records each batch it is given and doubles every job."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.lock = threading.Lock()

    def __call__(self, jobs: list[int]) -> list[int]:
        with self.lock:
            self.batches.append(sorted(jobs))
        return [2 * job for job in jobs]


def test_outside_parallel_a_job_runs_at_once_alone():
    runner = Recorder()
    assert gather.submit("k", runner, 21) == 42
    assert runner.batches == [[21]]


def test_parts_waiting_at_once_share_one_batch_per_key():
    runner = Recorder()

    def chain(start: int) -> list[int]:
        # Three runs in a row, with Python work of uneven length between them.
        out = []
        for step in range(3):
            time.sleep(0.001 * start)
            out.append(gather.submit("k", runner, start * 10 + step))
        return out

    results = gather.parallel([lambda s=s: chain(s) for s in range(8)])
    assert results == [[2 * (s * 10 + step) for step in range(3)] for s in range(8)]
    # However the threads interleave, a batch goes out only when all wait.
    assert runner.batches == [[s * 10 + step for s in range(8)] for step in range(3)]


def test_keys_and_runners_batch_apart():
    first, second = Recorder(), Recorder()
    calls = [
        lambda: gather.submit("a", first, 1),
        lambda: gather.submit("b", first, 2),
        lambda: gather.submit("a", second, 3),
        lambda: gather.submit("a", first, 4),
    ]
    assert gather.parallel(calls) == [2, 4, 6, 8]
    assert sorted(first.batches) == [[1, 4], [2]]
    assert second.batches == [[3]]


def test_nested_parallel_batches_across_levels():
    runner = Recorder()

    def outer(n: int) -> list[int]:
        return gather.parallel(
            [lambda j=j: gather.submit("k", runner, n * 10 + j) for j in range(3)]
        )

    assert gather.parallel([lambda n=n: outer(n) for n in range(4)]) == [
        [2 * (n * 10 + j) for j in range(3)] for n in range(4)
    ]
    assert runner.batches == [sorted(n * 10 + j for n in range(4) for j in range(3))]


def test_the_first_error_by_position_is_raised_as_a_loop_would():
    finished = []

    def late_failure():
        time.sleep(0.05)
        raise ValueError("first by position")

    def early_failure():
        raise KeyError("second by position")

    def fine():
        finished.append(True)
        return 1

    with pytest.raises(ValueError, match="first by position"):
        gather.parallel([fine, late_failure, early_failure, fine])
    assert finished == [True, True]


def test_a_runner_error_reaches_every_job_of_its_batch():
    def broken(jobs):
        raise RuntimeError(f"batch of {len(jobs)}")

    outcomes = []

    def part(job):
        try:
            gather.submit("k", broken, job)
        except RuntimeError as exc:
            outcomes.append(str(exc))

    gather.parallel([lambda j=j: part(j) for j in range(3)])
    assert outcomes == ["batch of 3"] * 3


def test_a_part_that_ends_without_submitting_does_not_hold_the_others():
    runner = Recorder()
    results = gather.parallel(
        [
            lambda: "done",
            lambda: gather.submit("k", runner, 1),
            lambda: gather.submit("k", runner, 2),
        ]
    )
    assert results == ["done", 2, 4]
    assert runner.batches == [[1, 2]]
