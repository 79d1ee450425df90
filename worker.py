"""Worker process: the workflow worker plus one render activity worker per engine."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from datetime import timedelta

from psycopg_pool import AsyncConnectionPool
from temporalio.client import Client
from temporalio.worker import FixedSizeSlotSupplier, Worker, WorkerTuner

from activities.projection import ProjectionActivities
from activities.render import RenderActivities
from videoq.backlog import watch_backlogs
from videoq.capacity import LimitsClock
from videoq.db import migrate, open_pool
from videoq.jobs import Engine
from videoq.logs import configure_logging
from videoq.settings import Settings
from videoq.slots import RenderSlots
from videoq.workflow_slots import WorkflowTaskSlots
from workflows.video_job import VideoJobWorkflow

logger = logging.getLogger("videoq.worker")

# How long a stopping worker lets running renders finish before it cancels them. A cancelled
# render fails its attempt, which the retry policy gives to another worker.
GRACEFUL_SHUTDOWN_SECONDS = 10
# The SDK's default slot count for each kind of task that the tuner does not limit otherwise.
SDK_DEFAULT_SLOTS = 100


def build_workers(
    client: Client,
    settings: Settings,
    slots: RenderSlots,
    pool: AsyncConnectionPool | None,
) -> list[Worker]:
    """Build the workers of the role in ``settings.worker_role``."""
    workers = []
    if settings.runs_workflows:
        projection = ProjectionActivities(pool)
        workers.append(
            Worker(
                client,
                task_queue=settings.workflow_task_queue,
                workflows=[VideoJobWorkflow],
                # Projection writes run as local activities of this worker, outside render slots.
                activities=[projection.record_job_state],
                # New jobs' first tasks run one at a time, so that their renders are queued in
                # the order the server handed them out (see WorkflowTaskSlots).
                tuner=WorkerTuner.create_composite(
                    workflow_supplier=WorkflowTaskSlots(settings.workflow_task_slots - 1),
                    activity_supplier=FixedSizeSlotSupplier(SDK_DEFAULT_SLOTS),
                    local_activity_supplier=FixedSizeSlotSupplier(SDK_DEFAULT_SLOTS),
                    nexus_supplier=FixedSizeSlotSupplier(SDK_DEFAULT_SLOTS),
                ),
            )
        )
    if not settings.runs_renders:
        return workers
    render = RenderActivities(client, settings, slots)
    for engine in Engine:
        workers.append(
            Worker(
                client,
                task_queue=settings.render_task_queue(engine),
                activities=[render.render_video],
                tuner=WorkerTuner.create_composite(
                    workflow_supplier=FixedSizeSlotSupplier(1),
                    activity_supplier=slots.supplier(engine),
                    local_activity_supplier=FixedSizeSlotSupplier(1),
                    nexus_supplier=FixedSizeSlotSupplier(1),
                ),
                # One poller per queue: each poll keeps a reserved slot while it waits, so
                # more pollers would strand more of the shared budget on an idle queue.
                max_concurrent_activity_task_polls=1,
                graceful_shutdown_timeout=timedelta(seconds=GRACEFUL_SHUTDOWN_SECONDS),
            )
        )
    return workers


@contextlib.asynccontextmanager
async def running_workers(
    client: Client, settings: Settings, pool: AsyncConnectionPool | None = None
) -> AsyncIterator[RenderSlots]:
    """Run every worker of this process until the context exits.

    Without ``pool`` the workers keep no projection: jobs run, but the API cannot list them.
    """
    slots = RenderSlots(LimitsClock(settings.capacity_plan()))
    workers = build_workers(client, settings, slots, pool)
    async with contextlib.AsyncExitStack() as stack:
        for worker in workers:
            await stack.enter_async_context(worker)
        limits = slots.limits()
        renders = "no renders"
        if settings.runs_renders:
            watch = asyncio.create_task(watch_backlogs(client, settings, slots))
            stack.callback(watch.cancel)
            renders = f"at most {limits.total} renders ({limits.manim} Manim) now"
        logger.info(
            "worker started (role %s): queues %s, %s",
            settings.worker_role,
            ", ".join(worker.task_queue for worker in workers),
            renders,
            extra={"action": "worker_started"},
        )
        yield slots
    logger.info("worker stopped", extra={"action": "worker_stopped"})


async def main(settings: Settings | None = None) -> None:
    from videoq.temporal import connect, metrics_runtime

    settings = settings or Settings()
    configure_logging(settings.log_level)
    runtime = None
    if settings.worker_metrics_port:
        runtime = metrics_runtime(settings.worker_metrics_host, settings.worker_metrics_port)
        logger.info(
            "SDK metrics at http://%s:%d/metrics",
            settings.worker_metrics_host,
            settings.worker_metrics_port,
            extra={"action": "metrics_started"},
        )
    client = await connect(settings, runtime)
    pool = None
    # Projection writes belong to the workflow worker, so a render-only worker needs no database.
    if settings.runs_workflows and settings.database_url:
        await migrate(settings.database_url)
        pool = await open_pool(settings.database_url)
    elif settings.runs_workflows:
        logger.warning(
            "VIDEOQ_DATABASE_URL is not set: jobs run, but no projection is written",
            extra={"action": "projection_disabled"},
        )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with running_workers(client, settings, pool):
            await stop.wait()
            logger.info("worker stopping", extra={"action": "worker_stopping"})
    finally:
        if pool is not None:
            await pool.close()


if __name__ == "__main__":
    from videoq.cli import run_async

    run_async(main())
