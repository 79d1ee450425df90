"""Reading the render task queues' backlogs for the render slots' arbitration."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.service import RPCError

from videoq.jobs import Engine
from videoq.settings import Settings
from videoq.slots import Backlog, RenderSlots

logger = logging.getLogger("videoq.backlog")

READ_TIMEOUT = timedelta(seconds=2)


async def read_backlog(client: Client, task_queue: str) -> Backlog:
    """Return the activity tasks of ``task_queue`` that wait for a poll, by priority key."""
    response = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
            report_stats=True,
        ),
        timeout=READ_TIMEOUT,
    )
    return Backlog(
        {
            key: stats.approximate_backlog_count
            for key, stats in response.stats_by_priority_key.items()
            if stats.approximate_backlog_count > 0
        }
    )


async def watch_backlogs(client: Client, settings: Settings, slots: RenderSlots) -> None:
    """Report both render task queues' backlogs to ``slots`` every backlog refresh interval.

    Runs until cancelled. While the server does not respond, the slots fall back to arbitrating
    by the outcome of polls, and one warning is logged until it responds again.
    """
    failing = False
    while True:
        try:
            backlogs = {
                engine: await read_backlog(client, settings.render_task_queue(engine))
                for engine in Engine
            }
        except Exception as err:  # noqa: BLE001 - any failure only costs the arbitration
            slots.observe_backlog(None)
            if not failing:
                logger.warning(
                    "cannot read the render queues' backlogs, slots fall back to poll outcomes: %s",
                    err,
                    exc_info=not isinstance(err, RPCError),
                    extra={"action": "backlog_unavailable"},
                )
            failing = True
        else:
            slots.observe_backlog(backlogs)
            failing = False
        await asyncio.sleep(settings.backlog_refresh_seconds)
