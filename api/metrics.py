"""The ``/metrics`` route: Prometheus series of the queue, computed from the projection."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field

import psycopg
from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder
from psycopg_pool import AsyncConnectionPool

from api.backends import BackendsDependency
from api.stats import COUNT_ACTIVE_JOBS
from videoq.db import connection
from videoq.jobs import Engine, JobStatus, JobType, Priority

router = APIRouter(tags=["metrics"])

# Upper bounds of the histogram buckets, seconds. A render may take up to 3 attempts of 600 s
# with 300 s between them, so the render buckets reach past 2,400 s.
WAIT_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
RENDER_BUCKETS = (5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 2400.0, 3600.0)
FINAL_STATUSES = tuple(status for status in JobStatus if status.is_final)


def _bucket_index(value: str, bounds: tuple[float, ...]) -> str:
    """SQL expression of the index of the first bound at or above ``value``, or ``len(bounds)``.

    The bounds are this module's constants, never input, so they are written into the SQL.
    """
    cases = " ".join(
        f"WHEN {value} <= {bound!r} THEN {index}" for index, bound in enumerate(bounds)
    )
    return f"CASE {cases} ELSE {len(bounds)} END"


# Both histograms count every job, not only recent ones, so that their buckets only grow, as
# Prometheus expects of a histogram. They use date_part, which returns float8, because the
# numeric that extract returns is slower to compute on every row.
# NOTE: each scrape scans the whole table three times. With 100,000 jobs the three queries of
# this module took 125 ms together on 2 cores with PostgreSQL 18. An admin retry replaces a
# job's row, so a bucket can drop by one, which Prometheus reads as a counter reset.
COUNT_WAIT_BUCKETS = f"""
SELECT priority, engine, {_bucket_index("wait", WAIT_BUCKETS)} AS bucket, count(*), sum(wait)
FROM (
    SELECT priority, engine, date_part('epoch', started_at - enqueued_at) AS wait
    FROM video_jobs
    WHERE started_at IS NOT NULL
) AS waits
GROUP BY priority, engine, bucket
"""

COUNT_RENDER_BUCKETS = f"""
SELECT priority, engine, {_bucket_index("render", RENDER_BUCKETS)} AS bucket, count(*),
       sum(render)
FROM (
    SELECT priority, engine, date_part('epoch', finished_at - started_at) AS render
    FROM video_jobs
    WHERE status = 'completed' AND started_at IS NOT NULL
) AS renders
GROUP BY priority, engine, bucket
"""

COUNT_OUTCOMES = """
SELECT job_type, status, count(*)
FROM video_jobs
WHERE status IN ('completed', 'failed', 'cancelled')
GROUP BY job_type, status
"""


@dataclass
class Histogram:
    """Counts of one labelled histogram: per bucket (not cumulative, +Inf last) and the sum."""

    counts: list[int]
    total: float = 0.0

    def add(self, bucket: int, count: int, total: float) -> None:
        self.counts[bucket] += count
        self.total += total


@dataclass
class QueueSnapshot:
    """The projection's figures that one scrape reports."""

    active: dict[tuple[Engine, Priority, JobStatus], int] = field(default_factory=dict)
    wait: dict[tuple[Priority, Engine], Histogram] = field(default_factory=dict)
    render: dict[tuple[Priority, Engine], Histogram] = field(default_factory=dict)
    outcomes: dict[tuple[JobType, JobStatus], int] = field(default_factory=dict)


class QueueCollector:
    """Collector of the metric families of one ``QueueSnapshot``.

    Every label combination is present, with 0 where the projection has no job, so that series
    do not vanish when a queue empties.
    """

    def __init__(self, snapshot: QueueSnapshot) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        snapshot = self._snapshot
        depth = GaugeMetricFamily(
            "videoq_queue_depth",
            "Jobs queued and not yet rendering.",
            labels=["priority", "engine"],
        )
        running = GaugeMetricFamily(
            "videoq_renders_running", "Jobs rendering now.", labels=["engine"]
        )
        for engine in Engine:
            for priority in Priority:
                queued = snapshot.active.get((engine, priority, JobStatus.QUEUED), 0)
                depth.add_metric([priority.value, engine.value], queued)
            rendering = sum(
                snapshot.active.get((engine, priority, JobStatus.RENDERING), 0)
                for priority in Priority
            )
            running.add_metric([engine.value], rendering)
        yield depth
        yield running

        yield _histogram_family(
            "videoq_job_wait_seconds",
            "Time from enqueue to the start of the first render attempt, per job.",
            WAIT_BUCKETS,
            snapshot.wait,
        )
        yield _histogram_family(
            "videoq_job_render_seconds",
            "Time from the first render attempt's start to completion, retries included.",
            RENDER_BUCKETS,
            snapshot.render,
        )

        outcomes = CounterMetricFamily(
            "videoq_job_outcomes",
            "Jobs that ended, by job type and final status.",
            labels=["job_type", "status"],
        )
        for job_type in JobType:
            for status in FINAL_STATUSES:
                count = snapshot.outcomes.get((job_type, status), 0)
                outcomes.add_metric([job_type.value, status.value], count)
        yield outcomes


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_PLAIN_0_0_4: {}}, "description": "Prometheus text."}},
)
async def metrics(request: Request, backends: BackendsDependency) -> Response:
    """Return the queue's series in the Prometheus text format, or in OpenMetrics when the
    ``Accept`` header requests it.

    The endpoint needs no token, because Prometheus scrapes without one. It reveals counts and
    durations, never job ids, users or content, so keep it on a private network.
    """
    snapshot = await read_queue_snapshot(await backends.database())
    registry = CollectorRegistry(auto_describe=False)
    registry.register(QueueCollector(snapshot))
    encode, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(content=encode(registry), headers={"Content-Type": content_type})


async def read_queue_snapshot(pool: AsyncConnectionPool) -> QueueSnapshot:
    """Read the figures of one scrape.

    Raises:
        ProjectionUnavailable: the database cannot be reached.
    """
    snapshot = QueueSnapshot()
    async with connection(pool) as conn:
        cursor = await conn.execute(COUNT_ACTIVE_JOBS)
        for engine, priority, status, count in await cursor.fetchall():
            snapshot.active[(Engine(engine), Priority(priority), JobStatus(status))] = count

        await _read_histograms(conn, COUNT_WAIT_BUCKETS, len(WAIT_BUCKETS), snapshot.wait)
        await _read_histograms(conn, COUNT_RENDER_BUCKETS, len(RENDER_BUCKETS), snapshot.render)

        cursor = await conn.execute(COUNT_OUTCOMES)
        for job_type, status, count in await cursor.fetchall():
            snapshot.outcomes[(JobType(job_type), JobStatus(status))] = count
    return snapshot


async def _read_histograms(
    conn: psycopg.AsyncConnection,
    query: str,
    bound_count: int,
    histograms: dict[tuple[Priority, Engine], Histogram],
) -> None:
    cursor = await conn.execute(query)
    for priority, engine, bucket, count, total in await cursor.fetchall():
        key = (Priority(priority), Engine(engine))
        histogram = histograms.setdefault(key, Histogram([0] * (bound_count + 1)))
        histogram.add(bucket, count, total)


def _histogram_family(
    name: str,
    documentation: str,
    bounds: tuple[float, ...],
    histograms: dict[tuple[Priority, Engine], Histogram],
) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, documentation, labels=["priority", "engine"])
    labels = [*(_bucket_label(bound) for bound in bounds), "+Inf"]
    for priority in Priority:
        for engine in Engine:
            histogram = histograms.get((priority, engine), Histogram([0] * (len(bounds) + 1)))
            cumulative = itertools.accumulate(histogram.counts)
            buckets = list(zip(labels, cumulative, strict=True))
            family.add_metric([priority.value, engine.value], buckets, histogram.total)
    return family


def _bucket_label(bound: float) -> str:
    # Prometheus clients write the le label as a float, such as "5.0".
    return repr(float(bound))
