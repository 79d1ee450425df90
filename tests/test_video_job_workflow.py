"""VideoJobWorkflow against a real Temporal dev server, with shortened render settings."""

from __future__ import annotations

import asyncio
from itertools import pairwise

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    TimeoutError,
    TimeoutType,
)

from tests.conftest import fake_render_command
from tests.helpers import job_request, pid_alive, starts, wait_until
from videoq import errors
from videoq.jobs import Engine, JobStatus, JobType
from videoq.temporal import new_job, start_job
from workflows.video_job import VideoJobWorkflow

SHORT = {"render_timeout": 2.0, "retry_interval": 2.0, "max_attempts": 3, "heartbeat_timeout": 10}


def _cause_chain(err: BaseException) -> list[BaseException]:
    chain = []
    while err is not None:
        chain.append(err)
        err = err.__cause__
    return chain


async def test_workflow_hung_render_times_out_three_times(
    client, make_settings, worker_for, tmp_path
):
    record = tmp_path / "record.jsonl"
    settings = make_settings(
        standard_renderer="command", render_command=fake_render_command(record, "hang"), **SHORT
    )
    await worker_for(settings)
    handle = await start_job(client, settings, new_job(job_request()))

    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()

    job_failed, activity_error, timeout, *_ = _cause_chain(failure.value.cause)
    assert isinstance(job_failed, ApplicationError)
    assert job_failed.type == errors.JOB_FAILED
    assert "after 3 attempt(s)" in job_failed.message
    assert isinstance(activity_error, ActivityError)
    assert isinstance(timeout, TimeoutError)
    assert timeout.type == TimeoutType.START_TO_CLOSE

    attempts = starts(record)
    assert [entry["attempt"] for entry in attempts] == [1, 2, 3]
    gaps = [later["time"] - earlier["time"] for earlier, later in pairwise(attempts)]
    # Each gap is one start-to-close timeout (2 s) plus one retry interval (2 s).
    for gap in gaps:
        assert 3.8 <= gap <= 6.5, gaps

    # Every hung renderer and the child it spawned were killed with their process group.
    for entry in attempts:
        await wait_until(lambda e=entry: not pid_alive(e["pid"]), 15, "renderer exit")
        await wait_until(lambda e=entry: not pid_alive(e["child_pid"]), 15, "child exit")

    state = await handle.query(VideoJobWorkflow.state)
    assert state.phase is JobStatus.FAILED
    assert state.attempt == 3
    assert state.last_error == "render timed out (start-to-close timeout)"


async def test_workflow_invalid_content_fails_without_retry(
    client, make_settings, worker_for, tmp_path
):
    record = tmp_path / "record.jsonl"
    settings = make_settings(
        standard_renderer="command", render_command=fake_render_command(record, "invalid"), **SHORT
    )
    await worker_for(settings)
    handle = await start_job(client, settings, new_job(job_request()))

    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()

    _, _, rejected, *_ = _cause_chain(failure.value.cause)
    assert isinstance(rejected, ApplicationError)
    assert rejected.type == errors.INVALID_CONTENT
    assert rejected.non_retryable
    assert "exit code 3" in rejected.message
    assert len(starts(record)) == 1


async def test_workflow_crashing_render_retried_at_interval(
    client, make_settings, worker_for, tmp_path
):
    record = tmp_path / "record.jsonl"
    settings = make_settings(
        standard_renderer="command", render_command=fake_render_command(record, "crash"), **SHORT
    )
    await worker_for(settings)
    handle = await start_job(client, settings, new_job(job_request()))

    with pytest.raises(WorkflowFailureError):
        await handle.result()

    attempts = starts(record)
    assert [entry["attempt"] for entry in attempts] == [1, 2, 3]
    gaps = [later["time"] - earlier["time"] for earlier, later in pairwise(attempts)]
    for gap in gaps:
        assert 1.9 <= gap <= 4.0, gaps
    state = await handle.query(VideoJobWorkflow.state)
    assert state.phase is JobStatus.FAILED
    assert "exited with code 1" in state.last_error


async def test_workflow_reports_retrying_between_attempts(
    client, make_settings, worker_for, tmp_path
):
    record = tmp_path / "record.jsonl"
    settings = make_settings(
        standard_renderer="command",
        render_command=fake_render_command(record, "crash"),
        **{**SHORT, "retry_interval": 5.0},
    )
    await worker_for(settings)
    handle = await start_job(client, settings, new_job(job_request()))

    async def phase():
        return (await handle.query(VideoJobWorkflow.state)).phase

    await wait_until(lambda: len(starts(record)) == 1, 15, "first attempt")
    seen = set()
    for _ in range(40):
        seen.add(await phase())
        if JobStatus.RETRYING in seen:
            break
        await asyncio.sleep(0.1)
    assert JobStatus.RETRYING in seen
    state = await handle.query(VideoJobWorkflow.state)
    assert state.attempt == 1
    assert "exited with code 1" in state.last_error
    await handle.terminate("test finished")


async def test_workflow_cancel_kills_running_render(client, make_settings, worker_for, tmp_path):
    record = tmp_path / "record.jsonl"
    settings = make_settings(
        standard_renderer="command",
        render_command=fake_render_command(record, "hang"),
        **{**SHORT, "render_timeout": 60.0},
    )
    await worker_for(settings)
    handle = await start_job(client, settings, new_job(job_request()))
    await wait_until(lambda: len(starts(record)) == 1, 15, "render start")
    started = starts(record)[0]

    await handle.cancel()
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()

    assert isinstance(failure.value.cause, CancelledError)
    assert not pid_alive(started["pid"])
    await wait_until(lambda: not pid_alive(started["child_pid"]), 10, "child exit")
    assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED
    state = await handle.query(VideoJobWorkflow.state)
    assert state.phase is JobStatus.CANCELLED
    assert not (settings.output_dir / f"{handle.id}.mp4").exists()


async def test_workflow_cancel_while_queued(client, make_settings, worker_for):
    # No Manim slot at all, so the job stays queued.
    settings = make_settings(max_manim_renders=0)
    await worker_for(settings)
    handle = await start_job(client, settings, new_job(job_request(engine=Engine.MANIM)))
    await wait_until(lambda: True)
    state = await handle.query(VideoJobWorkflow.state)
    assert state.phase is JobStatus.QUEUED

    await handle.cancel()
    with pytest.raises(WorkflowFailureError):
        await handle.result()

    state = await handle.query(VideoJobWorkflow.state)
    assert state.phase is JobStatus.CANCELLED
    assert state.attempt == 0


async def test_workflow_schedules_render_with_real_policy(client, make_settings, worker_for):
    settings = make_settings(max_manim_renders=0)  # defaults: 600 s, 300 s, 3 attempts
    await worker_for(settings)
    job = new_job(job_request(job_type=JobType.DOUBT, engine=Engine.MANIM))
    handle = await start_job(client, settings, job)

    async def scheduled():
        async for event in handle.fetch_history_events():
            if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                return event.activity_task_scheduled_event_attributes
        return None

    attributes = None
    for _ in range(100):
        attributes = await scheduled()
        if attributes is not None:
            break
        await asyncio.sleep(0.1)
    await handle.terminate("test finished")

    assert attributes is not None
    assert attributes.activity_type.name == "render_video"
    assert attributes.task_queue.name == settings.render_task_queue(Engine.MANIM)
    assert attributes.start_to_close_timeout.ToSeconds() == 600
    assert attributes.heartbeat_timeout.ToSeconds() == 30
    policy = attributes.retry_policy
    assert policy.initial_interval.ToSeconds() == 300
    assert policy.maximum_interval.ToSeconds() == 300
    assert policy.backoff_coefficient == 1.0
    assert policy.maximum_attempts == 3
    assert list(policy.non_retryable_error_types) == [errors.INVALID_CONTENT]
    assert attributes.priority.priority_key == 1
