"""Queue positions and start and finish estimates of queued jobs.

The estimates assume that every render of an engine takes the mean of its recent renders and
that jobs start in position order. They ignore how long the running renders have already run,
so they are rough by design.
"""

from __future__ import annotations

import asyncio
import logging
import math
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from psycopg_pool import AsyncConnectionPool
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.service import RPCError

from api.models import QueuePosition
from videoq.jobs import Engine, JobStatus
from videoq.projection import count_by_status, queue_position, recent_render_seconds
from videoq.settings import Settings

logger = logging.getLogger("videoq.api")

# Mean render time of an engine that has no completed job yet, seconds.
DEFAULT_RENDER_SECONDS = {Engine.STANDARD: 60.0, Engine.MANIM: 120.0}
# How many of the latest completed renders the mean covers.
RENDER_HISTORY = 50
WORKER_COUNT_TTL_SECONDS = 5.0
DESCRIBE_TIMEOUT = timedelta(seconds=2)


@dataclass(frozen=True)
class EngineLoad:
    """Measurements of one engine that its estimates need, taken once per request."""

    capacity: int
    rendering: int
    mean_render_seconds: float

    @property
    def free_slots(self) -> int:
        return max(self.capacity - self.rendering, 0)


def estimate_start_seconds(jobs_ahead: int, load: EngineLoad) -> float | None:
    """Estimate the seconds until a queued job with ``jobs_ahead`` jobs before it starts.

    While free slots outnumber the jobs ahead, the job starts at once. Otherwise it waits for
    ``ceil((jobs_ahead - free + 1) / capacity)`` rounds of renders of the mean length. Returns
    None when the engine has no capacity, because the job then never starts.
    """
    if load.capacity <= 0:
        return None
    free = load.free_slots
    if jobs_ahead < free:
        return 0.0
    rounds = math.ceil((jobs_ahead - free + 1) / load.capacity)
    return rounds * load.mean_render_seconds


def queued_position(jobs_ahead: int, load: EngineLoad) -> QueuePosition:
    start = estimate_start_seconds(jobs_ahead, load)
    finish = None if start is None else start + load.mean_render_seconds
    return QueuePosition(
        position=jobs_ahead + 1,
        jobs_ahead=jobs_ahead,
        estimated_start_seconds=None if start is None else round(start, 1),
        estimated_finish_seconds=None if finish is None else round(finish, 1),
    )


class RenderWorkerCounter:
    """Counts the worker processes that poll an engine's render task queue, cached 5 seconds.

    A process counts once however many pollers it runs, because its pollers share its client
    identity. NOTE: the Temporal server lists a poller until it has not polled for its poller
    history TTL (5 minutes by default). So a stopped worker still counts for a while, and a
    worker whose slots stay busy for longer than that is no longer counted.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._cache: dict[Engine, tuple[float, int]] = {}
        self._locks = {engine: asyncio.Lock() for engine in Engine}

    async def count(self, client: Client | None, engine: Engine) -> int:
        """Return the number of render workers of ``engine``, at least 1.

        Without a client, or when Temporal does not respond, this assumes one worker.
        """
        async with self._locks[engine]:
            cached = self._cache.get(engine)
            if cached is not None and time.monotonic() < cached[0]:
                return cached[1]
            workers = await self._describe(client, engine)
            self._cache[engine] = (time.monotonic() + WORKER_COUNT_TTL_SECONDS, workers)
            return workers

    async def _describe(self, client: Client | None, engine: Engine) -> int:
        if client is None:
            return 1
        task_queue = self._settings.render_task_queue(engine)
        request = DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
        )
        try:
            response = await client.workflow_service.describe_task_queue(
                request, timeout=DESCRIBE_TIMEOUT
            )
        except RPCError as err:
            logger.warning(
                "cannot count the workers of %s, assuming 1: %s",
                task_queue,
                err,
                extra={"action": "worker_count_failed"},
            )
            return 1
        identities = {poller.identity for poller in response.pollers}
        return max(len(identities), 1)


async def engine_load(
    pool: AsyncConnectionPool,
    client: Client | None,
    settings: Settings,
    workers: RenderWorkerCounter,
    engine: Engine,
) -> EngineLoad:
    """Measure the capacity, the running renders and the mean render time of ``engine``.

    The capacity is this API's own render limit per worker now (VIDEOQ_MAX_RENDERS, or
    VIDEOQ_MAX_MANIM_RENDERS for Manim, raised in peak windows) times the number of render
    workers, so it is right only when the workers run with the same settings.

    Raises:
        ProjectionUnavailable: the database cannot be reached.
    """
    per_worker = settings.capacity_plan().limits_at(datetime.now(UTC)).for_engine(engine)
    worker_count, counts, durations = await asyncio.gather(
        workers.count(client, engine),
        count_by_status(pool),
        recent_render_seconds(pool, engine, limit=RENDER_HISTORY),
    )
    rendering = sum(
        count
        for (row_engine, _, status), count in counts.items()
        if row_engine is engine and status is JobStatus.RENDERING
    )
    mean = statistics.fmean(durations) if durations else DEFAULT_RENDER_SECONDS[engine]
    return EngineLoad(
        capacity=per_worker * worker_count, rendering=rendering, mean_render_seconds=mean
    )


async def estimate_position(
    pool: AsyncConnectionPool,
    client: Client | None,
    settings: Settings,
    workers: RenderWorkerCounter,
    *,
    job_id: str,
    engine: Engine,
    priority_key: int,
    enqueued_at: datetime,
) -> QueuePosition:
    """Return the position and estimates of a queued job.

    The job need not be in the projection yet: only its own engine, priority key, enqueue time
    and id are used, and queued jobs before it in dispatch order are counted.

    Raises:
        ProjectionUnavailable: the database cannot be reached.
    """
    jobs_ahead, load = await asyncio.gather(
        queue_position(
            pool,
            engine=engine,
            priority_key=priority_key,
            enqueued_at=enqueued_at,
            job_id=job_id,
        ),
        engine_load(pool, client, settings, workers, engine),
    )
    return queued_position(jobs_ahead, load)
