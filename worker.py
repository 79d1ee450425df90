"""Worker process: the workflow worker plus one render activity worker per engine."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import FixedSizeSlotSupplier, Worker, WorkerTuner

from activities.render import RenderActivities
from videoq.jobs import Engine
from videoq.logs import configure_logging
from videoq.settings import Settings
from videoq.slots import RenderSlots, SlotLimits
from workflows.video_job import VideoJobWorkflow

logger = logging.getLogger("videoq.worker")

# How long a stopping worker lets running renders finish before it cancels them; a cancelled
# render fails its attempt, which the retry policy gives to another worker.
GRACEFUL_SHUTDOWN_SECONDS = 10


def build_workers(client: Client, settings: Settings, slots: RenderSlots) -> list[Worker]:
    render = RenderActivities(client, settings)
    workers = [
        Worker(
            client,
            task_queue=settings.workflow_task_queue,
            workflows=[VideoJobWorkflow],
        )
    ]
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
                # One poller per queue: each poll holds a reserved slot while it waits, so
                # more pollers would strand more of the shared budget on an idle queue.
                max_concurrent_activity_task_polls=1,
                graceful_shutdown_timeout=timedelta(seconds=GRACEFUL_SHUTDOWN_SECONDS),
            )
        )
    return workers


def fixed_limits(settings: Settings) -> SlotLimits:
    return SlotLimits(total=settings.max_renders, manim=settings.max_manim_renders)


@contextlib.asynccontextmanager
async def running_workers(client: Client, settings: Settings) -> AsyncIterator[RenderSlots]:
    """Run every worker of this process until the context exits."""
    slots = RenderSlots(lambda: fixed_limits(settings))
    workers = build_workers(client, settings, slots)
    async with contextlib.AsyncExitStack() as stack:
        for worker in workers:
            await stack.enter_async_context(worker)
        logger.info(
            "worker started: queues %s, at most %d renders (%d Manim)",
            ", ".join(worker.task_queue for worker in workers),
            settings.max_renders,
            settings.max_manim_renders,
            extra={"action": "worker_started"},
        )
        yield slots
    logger.info("worker stopped", extra={"action": "worker_stopped"})


async def main(settings: Settings | None = None) -> None:
    from videoq.temporal import connect

    settings = settings or Settings()
    configure_logging(settings.log_level)
    client = await connect(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with running_workers(client, settings):
        await stop.wait()
        logger.info("worker stopping", extra={"action": "worker_stopping"})


if __name__ == "__main__":
    from videoq.cli import run_async

    run_async(main())
