"""Order and utilization figures of a finished scheduling run, from the renderer's record."""

from __future__ import annotations

import math
from dataclasses import dataclass

# A job waiting less than this is not yet counted as passed over by a lower-priority start:
# its workflow task and the dispatch of its render take some milliseconds.
INVERSION_GRACE_SECONDS = 0.25
# Jobs submitted closer together than this may start in either order without a FIFO violation.
FIFO_MIN_GAP_SECONDS = 0.1


@dataclass(frozen=True)
class Run:
    """One job as the benchmark saw it: submit time, then its render's start and finish."""

    job_id: str
    engine: str
    priority_key: int
    submitted: float
    started: float
    finished: float


def max_running(runs: list[Run], engine: str | None = None) -> int:
    events = sorted(
        point
        for run in runs
        if engine is None or run.engine == engine
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
    """Pairs of the same engine and priority, submitted far enough apart, started reversed."""
    count = 0
    groups: dict[tuple[str, int], list[Run]] = {}
    for run in runs:
        groups.setdefault((run.engine, run.priority_key), []).append(run)
    for group in groups.values():
        group.sort(key=lambda run: run.submitted)
        for index, earlier in enumerate(group):
            for later in group[index + 1 :]:
                if later.submitted - earlier.submitted < FIFO_MIN_GAP_SECONDS:
                    continue
                if later.started < earlier.started:
                    count += 1
    return count


def _allowed(waiting: dict[str, int], running: dict[str, int], total: int, manim: int) -> int:
    """Renders the limits allow given the work present: running plus waiting, capped."""
    manim_work = min(manim, running["manim"] + waiting["manim"])
    return min(total, manim_work + running["standard"] + waiting["standard"])


def utilization(runs: list[Run], total: int, manim: int) -> float:
    """Running renders over what the limits allow, integrated over the time a backlog exists."""
    events = []
    for run in runs:
        events += [
            (run.submitted, "submit", run.engine),
            (run.started, "start", run.engine),
            (run.finished, "finish", run.engine),
        ]
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


def dispatch_gaps(runs: list[Run], total: int, manim: int) -> list[float]:
    """For each render end with eligible work waiting, the time to the next start it allows."""
    gaps = []
    for run in runs:
        end = run.finished
        waiting = [
            other
            for other in runs
            if other.submitted <= end < other.started
            and (
                run.engine == "manim" or other.engine == "standard" or _manim_room(runs, end, manim)
            )
        ]
        if not waiting:
            continue
        next_start = min(other.started for other in waiting)
        gaps.append(next_start - end)
    return gaps


def _manim_room(runs: list[Run], moment: float, manim: int) -> bool:
    running = sum(
        1 for run in runs if run.engine == "manim" and run.started <= moment < run.finished
    )
    return running < manim


def percentile(values: list[float], fraction: float) -> float:
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
