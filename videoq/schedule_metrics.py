"""Order and utilization figures of a finished scheduling run, from the renderer's record."""

from __future__ import annotations

import bisect
import math
from collections import deque
from dataclasses import dataclass

# A job waiting less than this is not yet counted as passed over by a lower-priority start:
# its workflow task and the dispatch of its render take some milliseconds.
INVERSION_GRACE_SECONDS = 0.25
# Jobs submitted closer together than this may start in either order without a FIFO violation.
FIFO_MIN_GAP_SECONDS = 0.1


@dataclass(frozen=True)
class Run:
    """One job as the benchmark saw it: submit time, then its render's start and finish.

    Times are seconds since the epoch. A render that never started or never finished has
    ``math.inf`` there. ``worker`` names the worker process that rendered it; runs with the
    same value share that worker's slots.
    """

    job_id: str
    engine: str
    priority_key: int
    submitted: float
    started: float
    finished: float
    worker: str = ""


def max_running(runs: list[Run], engine: str | None = None) -> int:
    """Maximum number of renders running at once.

    A render that ends at the instant another starts does not overlap it.
    """
    events = sorted(
        point
        for run in runs
        if (engine is None or run.engine == engine) and math.isfinite(run.started)
        for point in ((run.started, 1), (run.finished, -1))
    )
    running = peak = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    return peak


def priority_inversions(runs: list[Run]) -> int:
    """Starts made while a higher-priority job of the same engine had waited past the grace."""
    count = 0
    for run in runs:
        if not math.isfinite(run.started):
            continue
        for other in runs:
            if (
                other.engine == run.engine
                and other.priority_key < run.priority_key
                and other.submitted + INVERSION_GRACE_SECONDS <= run.started < other.started
            ):
                count += 1
                break
    return count


def fifo_violations(runs: list[Run]) -> int:
    """Pairs of the same engine and priority, submitted far enough apart, started reversed.

    A render that never started counts as starting after every one that did.
    """
    groups: dict[tuple[str, int], list[Run]] = {}
    for run in runs:
        groups.setdefault((run.engine, run.priority_key), []).append(run)
    return sum(_reversed_pairs(group) for group in groups.values())


def _reversed_pairs(group: list[Run]) -> int:
    """Count pairs submitted at least FIFO_MIN_GAP_SECONDS apart whose later one started first.

    Runs are visited in submit order. A run becomes a candidate "earlier" run once the
    visited run was submitted at least the gap after it, and a sorted list of the candidates'
    start times gives how many of them started after the visited run.
    """
    ordered = sorted(group, key=lambda run: run.submitted)
    candidates: list[float] = []
    next_candidate = count = 0
    for later in ordered:
        while (
            next_candidate < len(ordered)
            and later.submitted - ordered[next_candidate].submitted >= FIFO_MIN_GAP_SECONDS
        ):
            bisect.insort(candidates, ordered[next_candidate].started)
            next_candidate += 1
        count += len(candidates) - bisect.bisect_right(candidates, later.started)
    return count


def _allowed(waiting: dict[str, int], running: dict[str, int], total: int, manim: int) -> int:
    """Renders the limits allow given the work present: running plus waiting, capped."""
    manim_work = min(manim, running["manim"] + waiting["manim"])
    return min(total, manim_work + running["standard"] + waiting["standard"])


def utilization(runs: list[Run], total: int, manim: int) -> float:
    """Running renders over what the limits allow, integrated over the time a backlog exists.

    The integral ends at the last finite time in ``runs``, so a run cut short (renders still
    waiting or running) is measured up to its last recorded start or finish.
    """
    events = []
    for run in runs:
        events += [
            (run.submitted, "submit", run.engine),
            (run.started, "start", run.engine),
            (run.finished, "finish", run.engine),
        ]
    events = [event for event in events if math.isfinite(event[0])]
    events.sort(key=lambda event: event[0])
    waiting = {"manim": 0, "standard": 0}
    running = {"manim": 0, "standard": 0}
    used = allowed = 0.0
    previous = events[0][0] if events else 0.0
    for time, kind, engine in events:
        span = time - previous
        if span > 0 and sum(waiting.values()) > 0:
            used += span * sum(running.values())
            allowed += span * _allowed(waiting, running, total, manim)
        previous = time
        if kind == "submit":
            waiting[engine] += 1
        elif kind == "start":
            waiting[engine] -= 1
            running[engine] += 1
        else:
            running[engine] -= 1
    return used / allowed if allowed else 1.0


def dispatch_gaps(runs: list[Run], manim: int) -> list[float]:
    """Seconds from each render end that frees a usable slot to the start that fills it.

    A slot counts as freed when work it may run waits at its end: any job after a Manim end,
    a standard job or (below ``manim`` Manim renders on that worker) a Manim job after a
    standard end. Each start on a worker fills the oldest slot freed there, one start per
    slot, so renders ending together do not share one start. Freed slots beyond the number of
    waiting jobs cannot be filled, and the most recently freed ones are dropped.
    """
    # At one instant, ends come before submits and submits before starts.
    order = {"finish": 0, "submit": 1, "start": 2}
    events = []
    for run in runs:
        for time, kind in (
            (run.submitted, "submit"),
            (run.started, "start"),
            (run.finished, "finish"),
        ):
            if math.isfinite(time):
                events.append((time, order[kind], kind, run))
    events.sort(key=lambda event: (event[0], event[1]))

    waiting = {"manim": 0, "standard": 0}
    manim_running: dict[str, int] = {}
    freed: dict[str, deque[float]] = {}
    gaps = []
    for time, _, kind, run in events:
        slots = freed.setdefault(run.worker, deque())
        if kind == "submit":
            waiting[run.engine] += 1
        elif kind == "finish":
            if run.engine == "manim":
                manim_running[run.worker] -= 1
            manim_room = manim_running.get(run.worker, 0) < manim
            if waiting["standard"] or (waiting["manim"] and manim_room):
                slots.append(time)
        else:
            waiting[run.engine] -= 1
            if run.engine == "manim":
                manim_running[run.worker] = manim_running.get(run.worker, 0) + 1
            if slots:
                gaps.append(time - slots.popleft())
            _drop_unfillable(freed, sum(waiting.values()))
    return gaps


def _drop_unfillable(freed: dict[str, deque[float]], waiting: int) -> None:
    """Drop the most recently freed slots until no more slots than waiting jobs remain."""
    while sum(len(slots) for slots in freed.values()) > waiting:
        newest = max((slots for slots in freed.values() if slots), key=lambda slots: slots[-1])
        newest.pop()


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile, ``fraction`` in (0, 1]; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    index = min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1)
    return ordered[max(index, 0)]


def drain_ratio(runs: list[Run], total: int, manim: int) -> float:
    """Time from the first submit to the last finish, over the ideal for the same work."""
    if not runs:
        return math.nan
    span = max(run.finished for run in runs) - min(run.submitted for run in runs)
    work = sum(run.finished - run.started for run in runs)
    manim_work = sum(run.finished - run.started for run in runs if run.engine == "manim")
    ideal = max(work / total, manim_work / manim if manim else 0.0)
    return span / ideal if ideal else math.nan
