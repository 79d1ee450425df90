"""Queue statistics for admins, read from the projection: queue depth, renders against capacity,
throughput, wait and render times, failures and a page of recent jobs."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from urllib.parse import quote

import psycopg
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel, Field

from api.models import JobFields
from videoq.capacity import PeakWindow
from videoq.db import connection
from videoq.jobs import Engine, JobStatus, Priority
from videoq.projection import JobSnapshot, list_jobs
from videoq.settings import Settings

# Every figure of the last hour covers this window, ending at the request's time.
WINDOW = timedelta(hours=1)
THROUGHPUT_BUCKET = timedelta(minutes=1)
THROUGHPUT_BUCKETS = int(WINDOW / THROUGHPUT_BUCKET)

# The queries of the last hour use the indexes of migrations 0001 and 0002. The counts of active
# jobs and the oldest queued job are index-only scans of the partial index of active jobs.
COUNT_ACTIVE_JOBS = """
SELECT engine, priority, status, count(*)
FROM video_jobs
WHERE status IN ('queued', 'rendering', 'retrying')
GROUP BY engine, priority, status
"""

SELECT_OLDEST_QUEUED_JOB = """
SELECT id, priority, engine, enqueued_at
FROM video_jobs
WHERE status = 'queued'
ORDER BY enqueued_at, id
LIMIT 1
"""

# minutes_ago is 0 for jobs completed in the last minute before %(now)s, 59 for the oldest.
COUNT_COMPLETED_PER_MINUTE = """
SELECT floor(extract(epoch FROM %(now)s - finished_at) / 60)::int AS minutes_ago, count(*)
FROM video_jobs
WHERE status = 'completed' AND finished_at > %(since)s AND finished_at <= %(now)s
GROUP BY minutes_ago
"""

# percentile_cont interpolates linearly between the two nearest values.
WAIT_PERCENTILES_BY_PRIORITY = """
SELECT priority,
       count(*),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM started_at - enqueued_at)),
       percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM started_at - enqueued_at))
FROM video_jobs
WHERE started_at > %(since)s AND started_at <= %(now)s
GROUP BY priority
"""

RENDER_PERCENTILES = """
SELECT count(*),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - started_at)),
       percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - started_at))
FROM video_jobs
WHERE status = 'completed' AND started_at IS NOT NULL
  AND finished_at > %(since)s AND finished_at <= %(now)s
"""

# A job's row keeps only its last error. The workflow writes "render timed out (...)" when the
# last attempt timed out and "attempt N timed out or lost its worker" when an earlier one did.
COUNT_FAILURES = """
SELECT count(*) FILTER (WHERE status = 'failed' AND finished_at > %(since)s),
       count(*) FILTER (WHERE error ILIKE '%%timed out%%' OR error ILIKE '%%timeout%%'),
       count(*) FILTER (WHERE attempt > 1)
FROM video_jobs
WHERE updated_at > %(since)s
"""


class QueueDepth(BaseModel):
    """Queued jobs of one priority and engine."""

    priority: Priority
    engine: Engine
    queued: int


class EngineRenders(BaseModel):
    """Renders of one engine against the fleet's capacity for it."""

    engine: Engine
    rendering: int
    retrying: int = Field(description="Jobs waiting for their next attempt, holding no slot.")
    workers: int = Field(description="Worker processes polling the engine's render task queue.")
    per_worker_limit: int = Field(description="Render limit of one worker now, peak included.")
    capacity: int = Field(description="per_worker_limit times workers.")


class ThroughputBucket(BaseModel):
    """Jobs completed in the minute that starts at ``start``."""

    start: datetime
    completed: int


class Percentiles(BaseModel):
    """p50 and p95 in seconds over ``jobs`` jobs, both null when ``jobs`` is 0."""

    jobs: int
    p50_seconds: float | None = None
    p95_seconds: float | None = None


class PriorityPercentiles(Percentiles):
    priority: Priority


class FailureCounts(BaseModel):
    """Problem counts of the last hour."""

    failed: int = Field(description="Jobs that failed in the last hour.")
    timed_out: int = Field(
        description="Jobs changed in the last hour whose last error mentions a timeout."
    )
    retried: int = Field(description="Jobs changed in the last hour that needed attempt 2 or more.")


class OldestQueuedJob(BaseModel):
    id: str
    priority: Priority
    engine: Engine
    enqueued_at: datetime
    age_seconds: float


class AdminJob(JobFields):
    """A job as the dashboard lists it, with a link to its workflow in the Temporal Web UI."""

    worker: str | None = None
    temporal_ui_url: str


class AdminJobPage(BaseModel):
    """One page of jobs, newest enqueued first."""

    items: list[AdminJob]
    status: JobStatus | None
    limit: int
    offset: int
    has_more: bool


class AdminStats(BaseModel):
    """Response of ``GET /v1/admin/stats``."""

    generated_at: datetime
    window_seconds: float = Field(description="Span of the figures of the last hour.")
    queue_depth: list[QueueDepth]
    renders: list[EngineRenders]
    peak: bool = Field(description="Whether a peak window raises the render limits now.")
    peak_multiplier: float
    peak_windows: list[str] = Field(description="HH:MM-HH:MM spans of local time.")
    timezone: str
    throughput: list[ThroughputBucket] = Field(description="60 minutes, oldest first.")
    wait_seconds: list[PriorityPercentiles] = Field(
        description="started_at - enqueued_at of jobs that started in the last hour."
    )
    render_seconds: Percentiles = Field(
        description="finished_at - started_at of jobs completed in the last hour, retries included."
    )
    failures: FailureCounts
    oldest_queued_job: OldestQueuedJob | None
    jobs: AdminJobPage


async def read_stats(
    pool: AsyncConnectionPool,
    settings: Settings,
    workers: Mapping[Engine, int],
    *,
    now: datetime,
    status: JobStatus | None,
    limit: int,
    offset: int,
) -> AdminStats:
    """Read every figure of the dashboard as of the aware instant ``now``.

    ``workers`` is the number of render workers of each engine. The capacity assumes that every
    worker runs with this API's limits and peak windows.

    Raises:
        ProjectionUnavailable: the database cannot be reached.
    """
    params = {"now": now, "since": now - WINDOW}
    async with connection(pool) as conn:
        active = await _count_active_jobs(conn)
        oldest = await _oldest_queued_job(conn, now)
        throughput = await _throughput(conn, params)
        wait = await _wait_percentiles(conn, params)
        render = await _render_percentiles(conn, params)
        failures = await _failures(conn, params)
    # A row beyond the page means that another page follows.
    rows = await list_jobs(pool, user_id=None, status=status, limit=limit + 1, offset=offset)

    plan = settings.capacity_plan()
    limits = plan.limits_at(now)
    # NOTE: both engines draw from one budget of limits.total slots per worker, so standard
    # renders can reach their capacity only while no Manim render runs.
    per_worker = {engine: limits.for_engine(engine) for engine in Engine}
    return AdminStats(
        generated_at=now,
        window_seconds=WINDOW.total_seconds(),
        queue_depth=[
            QueueDepth(
                priority=priority,
                engine=engine,
                queued=active.get((engine, priority, JobStatus.QUEUED), 0),
            )
            for priority in Priority
            for engine in Engine
        ],
        renders=[
            EngineRenders(
                engine=engine,
                rendering=_sum_of(active, engine, JobStatus.RENDERING),
                retrying=_sum_of(active, engine, JobStatus.RETRYING),
                workers=workers[engine],
                per_worker_limit=per_worker[engine],
                capacity=per_worker[engine] * workers[engine],
            )
            for engine in Engine
        ],
        peak=plan.in_peak(now),
        peak_multiplier=plan.peak_multiplier,
        peak_windows=[_format_window(window) for window in plan.peak_windows],
        timezone=settings.timezone,
        throughput=throughput,
        wait_seconds=wait,
        render_seconds=render,
        failures=failures,
        oldest_queued_job=oldest,
        jobs=AdminJobPage(
            items=[_admin_job(row, settings) for row in rows[:limit]],
            status=status,
            limit=limit,
            offset=offset,
            has_more=len(rows) > limit,
        ),
    )


def temporal_ui_url(settings: Settings, job_id: str) -> str:
    """Return the address of the job's workflow in the Temporal Web UI."""
    base = settings.temporal_ui_url.rstrip("/")
    namespace = quote(settings.temporal_namespace, safe="")
    return f"{base}/namespaces/{namespace}/workflows/{quote(job_id, safe='')}"


async def _count_active_jobs(
    conn: psycopg.AsyncConnection,
) -> dict[tuple[Engine, Priority, JobStatus], int]:
    cursor = await conn.execute(COUNT_ACTIVE_JOBS)
    return {
        (Engine(engine), Priority(priority), JobStatus(status)): count
        for engine, priority, status, count in await cursor.fetchall()
    }


async def _oldest_queued_job(
    conn: psycopg.AsyncConnection, now: datetime
) -> OldestQueuedJob | None:
    cursor = await conn.execute(SELECT_OLDEST_QUEUED_JOB)
    row = await cursor.fetchone()
    if row is None:
        return None
    job_id, priority, engine, enqueued_at = row
    return OldestQueuedJob(
        id=job_id,
        priority=priority,
        engine=engine,
        enqueued_at=enqueued_at,
        age_seconds=round((now - enqueued_at).total_seconds(), 3),
    )


async def _throughput(conn: psycopg.AsyncConnection, params: dict) -> list[ThroughputBucket]:
    cursor = await conn.execute(COUNT_COMPLETED_PER_MINUTE, params)
    by_minutes_ago = dict(await cursor.fetchall())
    now = params["now"]
    return [
        ThroughputBucket(
            start=now - (minutes_ago + 1) * THROUGHPUT_BUCKET,
            completed=by_minutes_ago.get(minutes_ago, 0),
        )
        for minutes_ago in reversed(range(THROUGHPUT_BUCKETS))
    ]


async def _wait_percentiles(
    conn: psycopg.AsyncConnection, params: dict
) -> list[PriorityPercentiles]:
    cursor = await conn.execute(WAIT_PERCENTILES_BY_PRIORITY, params)
    rows = {Priority(priority): rest for priority, *rest in await cursor.fetchall()}
    return [
        PriorityPercentiles(priority=priority, **_percentiles(*rows.get(priority, (0, None, None))))
        for priority in Priority
    ]


async def _render_percentiles(conn: psycopg.AsyncConnection, params: dict) -> Percentiles:
    cursor = await conn.execute(RENDER_PERCENTILES, params)
    row = await cursor.fetchone()
    assert row is not None  # an aggregate without GROUP BY always returns one row
    return Percentiles(**_percentiles(*row))


async def _failures(conn: psycopg.AsyncConnection, params: dict) -> FailureCounts:
    cursor = await conn.execute(COUNT_FAILURES, params)
    row = await cursor.fetchone()
    assert row is not None
    failed, timed_out, retried = row
    return FailureCounts(failed=failed, timed_out=timed_out, retried=retried)


def _percentiles(jobs: int, p50: float | None, p95: float | None) -> dict:
    return {"jobs": jobs, "p50_seconds": _seconds(p50), "p95_seconds": _seconds(p95)}


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _sum_of(
    counts: dict[tuple[Engine, Priority, JobStatus], int], engine: Engine, status: JobStatus
) -> int:
    return sum(counts.get((engine, priority, status), 0) for priority in Priority)


def _format_window(window: PeakWindow) -> str:
    return f"{window.start:%H:%M}-{window.end:%H:%M}"


def _admin_job(row: JobSnapshot, settings: Settings) -> AdminJob:
    fields = row.model_dump(exclude={"priority_key", "seq", "output"})
    return AdminJob(**fields, temporal_ui_url=temporal_ui_url(settings, row.id))
