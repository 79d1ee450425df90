"""The workflow keeps the Postgres projection current as a job moves."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowFailureError

from tests.conftest import fake_render_command
from tests.helpers import job_request, starts, wait_until
from videoq.jobs import Engine, JobStatus
from videoq.projection import get_job
from videoq.temporal import new_job, start_job


async def start_projection_worker(make_settings, worker_for, projection_pool, tmp_path, seconds):
    """Start a projection-writing worker whose standard renders last ``seconds``."""
    render_command = fake_render_command(tmp_path / "record.jsonl", "ok", seconds)
    settings = make_settings(standard_renderer="command", render_command=render_command)
    await worker_for(settings, projection_pool)
    return settings


async def test_projection_follows_job_to_completion(
    client, make_settings, worker_for, projection_pool, tmp_path
):
    settings = await start_projection_worker(
        make_settings, worker_for, projection_pool, tmp_path, 1.5
    )
    job = new_job(job_request(engine=Engine.STANDARD))
    handle = await start_job(client, settings, job)

    seen: list[JobStatus] = []

    async def status_is(expected: JobStatus) -> bool:
        row = await get_job(projection_pool, job.id)
        if row is not None and (not seen or seen[-1] is not row.status):
            seen.append(row.status)
        return row is not None and row.status is expected

    for _ in range(200):
        if await status_is(JobStatus.RENDERING):
            break
        await asyncio.sleep(0.02)
    result = await handle.result()
    row = await get_job(projection_pool, job.id)

    assert JobStatus.RENDERING in seen
    assert row.status is JobStatus.COMPLETED
    assert row.attempt == 1
    assert row.output == result.output
    assert row.started_at is not None and row.finished_at > row.started_at
    assert row.enqueued_at == job.enqueued_at
    assert row.worker is not None
    assert row.generation == 1


async def test_projection_skips_row_submitter_wrote(
    client, make_settings, worker_for, projection_pool, tmp_path
):
    settings = await start_projection_worker(
        make_settings, worker_for, projection_pool, tmp_path, 0.2
    )
    job = new_job(job_request(engine=Engine.STANDARD))

    handle = await start_job(client, settings, job, queued_row_written=True)
    await handle.result()

    events = [event.event_type async for event in handle.fetch_history_events()]
    first_task_done = events.index(EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)
    second_task = events.index(EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED, first_task_done)
    first_task_events = events[first_task_done + 1 : second_task]
    # The first workflow task scheduled the render and waited for no projection write, whose
    # local activity would have left a marker.
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED in first_task_events
    assert EventType.EVENT_TYPE_MARKER_RECORDED not in first_task_events
    assert EventType.EVENT_TYPE_MARKER_RECORDED in events[second_task:]
    row = await get_job(projection_pool, job.id)
    assert row.status is JobStatus.COMPLETED
    assert row.seq > 1


async def test_projection_records_failure_and_cancel(
    client, make_settings, worker_for, projection_pool, tmp_path
):
    record = tmp_path / "record.jsonl"
    settings = make_settings(
        standard_renderer="command",
        render_command=fake_render_command(record, "invalid"),
        max_manim_renders=0,
    )
    await worker_for(settings, projection_pool)
    failing = await start_job(client, settings, new_job(job_request(engine=Engine.STANDARD)))
    queued = await start_job(client, settings, new_job(job_request(engine=Engine.MANIM)))

    with pytest.raises(WorkflowFailureError):
        await failing.result()
    await wait_until(lambda: len(starts(record)) == 1)
    await queued.cancel()
    with pytest.raises(WorkflowFailureError):
        await queued.result()

    failed_row = await get_job(projection_pool, failing.id)
    assert failed_row.status is JobStatus.FAILED
    assert "exit code 3" in failed_row.error
    cancelled_row = await get_job(projection_pool, queued.id)
    assert cancelled_row.status is JobStatus.CANCELLED
    assert cancelled_row.attempt == 0
