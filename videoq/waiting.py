"""Following jobs through their workflow's ``state`` query until they end."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from temporalio.client import Client
from temporalio.service import RPCError

from videoq.jobs import JobStatus
from workflows.video_job import JobState, VideoJobWorkflow

POLL_SECONDS = 0.5


def describe_state(state: JobState) -> str:
    if state.phase is JobStatus.RENDERING:
        return f"rendering attempt {state.attempt} of {state.max_attempts} on {state.worker}"
    if state.phase is JobStatus.RETRYING:
        return f"retrying after attempt {state.attempt}: {state.last_error}"
    if state.phase is JobStatus.COMPLETED:
        return f"completed: {state.output}"
    if state.phase in (JobStatus.FAILED, JobStatus.CANCELLED):
        return f"{state.phase.value}: {state.last_error}"
    return state.phase.value


async def follow_jobs(
    client: Client, job_ids: list[str], report: Callable[[str], None]
) -> dict[str, JobState]:
    """Query each job until all have ended, reporting every change of phase or attempt."""
    last: dict[str, str] = {}
    states: dict[str, JobState] = {}
    while len(states) < len(job_ids) or not all(s.phase.is_final for s in states.values()):
        for job_id in job_ids:
            if job_id in states and states[job_id].phase.is_final:
                continue
            try:
                state = await client.get_workflow_handle(job_id).query(VideoJobWorkflow.state)
            except RPCError:
                continue  # the first workflow task has not run yet
            states[job_id] = state
            line = describe_state(state)
            if last.get(job_id) != line:
                report(f"{job_id}: {line}")
                last[job_id] = line
        await asyncio.sleep(POLL_SECONDS)
    return states
