"""The API's Temporal calls: start a run of a job, read a run's input and live state, and load a
job from the projection with the workflow as a fallback."""

from __future__ import annotations

import logging
from datetime import timedelta

from psycopg_pool import AsyncConnectionPool
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowQueryFailedError, WorkflowQueryRejectedError
from temporalio.service import RPCError, RPCStatusCode

from api.backends import Backends
from api.errors import TemporalUnavailable
from videoq.db import ProjectionUnavailable
from videoq.jobs import Job, JobStatus
from videoq.projection import JobSnapshot, get_job, record_snapshot
from videoq.settings import Settings
from videoq.temporal import start_job
from workflows.models import JobState, VideoJobInput
from workflows.video_job import VideoJobWorkflow

logger = logging.getLogger("videoq.api")

# NOTE: a start that times out may still have created the workflow. A client that retries with
# the same Idempotency-Key then gets that job, but a client without a key gets a second one.
START_TIMEOUT = timedelta(seconds=10)
# A query waits for a workflow worker; without one it fails after this and the projection row
# is used instead.
QUERY_TIMEOUT = timedelta(seconds=2)


async def start_run(
    client: Client,
    settings: Settings,
    pool: AsyncConnectionPool,
    job: Job,
    *,
    generation: int = 1,
) -> None:
    """Start a run of the job's workflow, whose id is the job id, and write its queued row.

    Generation 1 is a submission, and an id used before is rejected, so a repeated
    Idempotency-Key never makes a second job. An admin retry runs the next generation, which
    reuses the id of a failed or cancelled run.

    The row is written after the start, so that a start that fails leaves no row of a job that
    does not exist. The job then counts in positions from the response on, even while the
    workflow stage is backlogged. If the write fails, the workflow's next write (when the render
    starts) creates the row, and until then ``load_job`` reads the run from Temporal.

    Raises:
        temporalio.exceptions.WorkflowAlreadyStartedError: the id is taken.
        RPCError: the server did not accept the start.
    """
    await start_job(
        client,
        settings,
        job,
        generation=generation,
        rpc_timeout=START_TIMEOUT,
        queued_row_written=True,
    )
    # Seq 1 is the queued state, the write the workflow leaves to its submitter.
    queued = JobSnapshot.of_job(
        job,
        status=JobStatus.QUEUED,
        max_attempts=settings.max_attempts,
        generation=generation,
        seq=1,
    )
    try:
        await record_snapshot(pool, queued)
    except ProjectionUnavailable as err:
        logger.warning(
            "queued row write failed: %s. The workflow writes the row when the render starts",
            err,
            extra={"action": "database_unavailable", "job_id": job.id},
        )


async def read_run_input(client: Client, job_id: str) -> VideoJobInput | None:
    """Return the input of the job's latest run, or None if Temporal has no such workflow.

    Raises:
        RPCError: the history could not be read for another reason.
    """
    handle = client.get_workflow_handle(job_id)
    try:
        async for event in handle.fetch_history_events():
            if event.event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
                break
            payloads = event.workflow_execution_started_event_attributes.input.payloads
            [run_input] = await client.data_converter.decode(payloads, [VideoJobInput])
            return run_input
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    return None


async def query_state(client: Client, job_id: str) -> JobState | None:
    """Return the live state of the job's latest run, or None if the query fails."""
    handle = client.get_workflow_handle_for(VideoJobWorkflow.run, job_id)
    try:
        return await handle.query(VideoJobWorkflow.state, rpc_timeout=QUERY_TIMEOUT)
    except (RPCError, WorkflowQueryFailedError, WorkflowQueryRejectedError) as err:
        logger.debug(
            "state query failed, using the projection: %s",
            err,
            extra={"action": "job_query_failed", "job_id": job_id},
        )
        return None


async def load_job(backends: Backends, job_id: str, *, user_id: str | None) -> JobSnapshot | None:
    """Return the job's projection row, with the live state of its workflow while it runs.

    A job that has no row yet (the workflow has not written it) is read from the input of its
    run. Returns None for an unknown job, and for a job of another user than ``user_id``
    unless ``user_id`` is None. The live state is queried only after that check.

    Raises:
        ProjectionUnavailable: the database cannot be reached.
        TemporalUnavailable: the job has no row and Temporal cannot be reached.
    """
    row = await get_job(await backends.database(), job_id)
    if row is not None and row.status.is_final:
        return row if user_id in (None, row.user_id) else None
    try:
        client = await backends.temporal()
    except TemporalUnavailable:
        if row is None:
            raise
        return row if user_id in (None, row.user_id) else None

    if row is None:
        run_input = await read_run_input(client, job_id)
        if run_input is None:
            return None
        row = snapshot_of_input(run_input)
    if user_id not in (None, row.user_id):
        return None
    state = await query_state(client, job_id)
    return row if state is None else with_live_state(row, state)


def snapshot_of_input(run_input: VideoJobInput) -> JobSnapshot:
    """Describe a run that has not written its projection row yet: queued, no attempt."""
    return JobSnapshot.of_job(
        run_input.job,
        status=JobStatus.QUEUED,
        max_attempts=run_input.policy.max_attempts,
        generation=run_input.generation,
        seq=0,
    )


def with_live_state(row: JobSnapshot, state: JobState) -> JobSnapshot:
    return row.model_copy(
        update={
            "status": state.phase,
            "attempt": state.attempt,
            "max_attempts": state.max_attempts,
            "started_at": state.started_at,
            "finished_at": state.finished_at,
            "error": state.last_error,
            "output": state.output,
            "worker": state.worker,
        }
    )
