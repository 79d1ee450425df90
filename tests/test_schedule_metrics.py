"""Unit tests of the scheduling figures, on hand-made runs."""

from __future__ import annotations

import math
import random

import pytest

from videoq.schedule_metrics import (
    Run,
    dispatch_gaps,
    drain_ratio,
    fifo_violations,
    max_running,
    percentile,
    priority_inversions,
    utilization,
)

NEVER = math.inf


def run(
    job_id: str,
    submitted: float,
    started: float,
    finished: float,
    engine: str = "standard",
    priority_key: int = 5,
    worker: str = "w1",
) -> Run:
    return Run(job_id, engine, priority_key, submitted, started, finished, worker)


def test_max_running_counts_overlap():
    runs = [run("a", 0, 0, 2), run("b", 0, 1, 3), run("c", 0, 1.5, 4, engine="manim")]

    assert max_running(runs) == 3
    assert max_running(runs, "manim") == 1
    assert max_running(runs, "standard") == 2


def test_max_running_end_at_start_is_no_overlap():
    runs = [run("a", 0, 0, 1), run("b", 0, 1, 2)]

    assert max_running(runs) == 1


def test_max_running_ignores_unstarted():
    runs = [run("a", 0, 0, 1), run("b", 0, NEVER, NEVER), run("c", 0, 0.5, NEVER)]

    assert max_running(runs) == 2


def test_priority_inversion_after_grace():
    runs = [
        run("low", submitted=0.0, started=1.0, finished=2.0, priority_key=5),
        run("high", submitted=0.5, started=1.1, finished=2.1, priority_key=1),
    ]

    assert priority_inversions(runs) == 1


def test_priority_inversion_within_grace_is_not_counted():
    runs = [
        run("low", submitted=0.0, started=1.0, finished=2.0, priority_key=5),
        run("high", submitted=0.8, started=1.1, finished=2.1, priority_key=1),
    ]

    assert priority_inversions(runs) == 0


def test_priority_inversion_needs_same_engine():
    runs = [
        run("low", submitted=0.0, started=1.0, finished=2.0, priority_key=5),
        run("high", 0.0, 1.1, 2.1, engine="manim", priority_key=1),
    ]

    assert priority_inversions(runs) == 0


def test_priority_inversion_with_unstarted_higher_job():
    runs = [
        run("low", submitted=0.0, started=1.0, finished=2.0, priority_key=5),
        run("high", submitted=0.0, started=NEVER, finished=NEVER, priority_key=1),
    ]

    assert priority_inversions(runs) == 1


def test_fifo_violation_counts_reversed_pairs():
    runs = [
        run("first", submitted=0.0, started=2.0, finished=3.0),
        run("second", submitted=0.2, started=1.5, finished=2.5),
        run("third", submitted=0.4, started=1.0, finished=2.0),
    ]

    assert fifo_violations(runs) == 3


def test_fifo_violation_ignores_close_submits():
    runs = [
        run("first", submitted=0.0, started=2.0, finished=3.0),
        run("second", submitted=0.05, started=1.0, finished=2.0),
    ]

    assert fifo_violations(runs) == 0


def test_fifo_violation_only_within_engine_and_priority():
    runs = [
        run("first", submitted=0.0, started=2.0, finished=3.0),
        run("manim", 0.5, 1.0, 2.0, engine="manim"),
        run("doubt", 0.5, 1.0, 2.0, priority_key=1),
    ]

    assert fifo_violations(runs) == 0


def test_fifo_violation_unstarted_earlier_job():
    runs = [
        run("first", submitted=0.0, started=NEVER, finished=NEVER),
        run("second", submitted=1.0, started=1.5, finished=2.5),
    ]

    assert fifo_violations(runs) == 1


def _fifo_violations_by_pairs(runs: list[Run]) -> int:
    count = 0
    for earlier in runs:
        for later in runs:
            same_group = (earlier.engine, earlier.priority_key) == (
                later.engine,
                later.priority_key,
            )
            if (
                same_group
                and later.submitted - earlier.submitted >= 0.1
                and later.started < earlier.started
            ):
                count += 1
    return count


@pytest.mark.parametrize("seed", range(5))
def test_fifo_violation_matches_pairwise_count(seed):
    rng = random.Random(seed)
    runs = []
    for index in range(200):
        submitted = round(rng.uniform(0, 5), 2)
        started = NEVER if rng.random() < 0.1 else submitted + rng.uniform(0, 3)
        runs.append(
            run(
                f"j{index}",
                submitted,
                started,
                started + 1,
                engine=rng.choice(["manim", "standard"]),
                priority_key=rng.choice([1, 3, 5]),
            )
        )

    assert fifo_violations(runs) == _fifo_violations_by_pairs(runs)


def test_utilization_full_while_backlog():
    # Two slots, three jobs: the third waits for the first slot to free.
    runs = [run("a", 0, 0, 1), run("b", 0, 0, 1), run("c", 0, 1, 2)]

    assert utilization(runs, total=2, manim=1) == pytest.approx(1.0)


def test_utilization_idle_slot_while_backlog():
    # Two slots, three jobs. "c" waits from 0 to 1.5, though a slot is free from 1.0. Used:
    # 2 renders for 1 s, then 1 for 0.5 s. Allowed: 2 for 1.5 s.
    runs = [run("a", 0, 0, 1), run("b", 0, 0, 2), run("c", 0, 1.5, 2.5)]

    assert utilization(runs, total=2, manim=1) == pytest.approx(2.5 / 3.0)


def test_utilization_manim_limit_lowers_allowed():
    # Two Manim jobs, a Manim limit of 1: only one may run, so one running is full use.
    runs = [run("a", 0, 0, 1, engine="manim"), run("b", 0, 1, 2, engine="manim")]

    assert utilization(runs, total=10, manim=1) == pytest.approx(1.0)


def test_utilization_stops_at_last_recorded_time():
    # "b" never finishes and "c" never starts: the one slot is busy up to the last record.
    runs = [run("a", 0, 0, 1), run("b", 0, 1, NEVER), run("c", 0, NEVER, NEVER)]

    value = utilization(runs, total=1, manim=1)

    assert value == pytest.approx(1.0)


def test_dispatch_gap_one_start_per_freed_slot():
    # Two renders end together, and their slots are refilled 0.1 s and 0.3 s later.
    runs = [
        run("a", 0, 0, 1.0),
        run("b", 0, 0, 1.0),
        run("c", 0, 1.1, 2.0),
        run("d", 0, 1.3, 2.0),
    ]

    gaps = dispatch_gaps(runs, manim=1)

    assert gaps == pytest.approx([0.1, 0.3])


def test_dispatch_gap_only_with_waiting_work():
    # "b" is submitted 0.5 s after "a" ended: no work waited at the end, so no gap.
    runs = [run("a", 0, 0, 1.0), run("b", 1.5, 1.6, 2.0)]

    assert dispatch_gaps(runs, manim=1) == []


def test_dispatch_gap_matches_starts_on_same_worker():
    runs = [
        run("a", 0, 0, 1.0, worker="w1"),
        run("b", 0, 0, 1.5, worker="w2"),
        run("c", 0, 1.6, 2.0, worker="w2"),
        run("d", 0, 1.2, 2.0, worker="w1"),
    ]

    gaps = dispatch_gaps(runs, manim=1)

    assert sorted(gaps) == pytest.approx([0.1, 0.2])


def test_dispatch_gap_drops_slots_without_work():
    # Two slots free at 1.0 with one job waiting: one gap, not a second one measured to a
    # job submitted much later.
    runs = [
        run("a", 0, 0, 1.0),
        run("b", 0, 0, 1.0),
        run("c", 0, 1.2, 2.0),
        run("d", 5.0, 5.1, 6.0),
    ]

    assert dispatch_gaps(runs, manim=1) == pytest.approx([0.2])


def test_dispatch_gap_standard_end_with_manim_at_limit():
    # A standard render ends while only Manim work waits and Manim is at its limit of 1: the
    # freed slot cannot run it, so no gap counts.
    runs = [
        run("m1", 0, 0, 2.0, engine="manim"),
        run("s1", 0, 0, 1.0),
        run("m2", 0, 2.1, 3.0, engine="manim"),
    ]

    assert dispatch_gaps(runs, manim=1) == pytest.approx([0.1])


@pytest.mark.parametrize(
    ("fraction", "expected"), [(0.5, 5), (0.99, 10), (1.0, 10), (0.01, 1)], ids=str
)
def test_percentile_nearest_rank(fraction, expected):
    assert percentile([float(value) for value in range(1, 11)], fraction) == expected


def test_percentile_empty_is_nan():
    assert math.isnan(percentile([], 0.5))


def test_drain_ratio_ideal_run_is_one():
    runs = [run("a", 0, 0, 1), run("b", 0, 0, 1), run("c", 0, 1, 2), run("d", 0, 1, 2)]

    assert drain_ratio(runs, total=2, manim=1) == pytest.approx(1.0)


def test_drain_ratio_bound_by_manim_limit():
    runs = [run(f"m{i}", 0, i, i + 1, engine="manim") for i in range(4)]

    assert drain_ratio(runs, total=10, manim=1) == pytest.approx(1.0)
