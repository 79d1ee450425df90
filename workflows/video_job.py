"""VideoJobWorkflow: one workflow per video job, from queued to a finished video."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import Priority, RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError
from temporalio.exceptions import TimeoutError as TemporalTimeoutError

with workflow.unsafe.imports_passed_through():
    from activities.render import (
        RENDER_ATTEMPT_FAILED_SIGNAL,
        RENDER_STARTED_SIGNAL,
        RenderAttemptFailed,
        RenderInput,
        RenderResult,
        RenderStarted,
    )
    from videoq import errors, search_attributes
    from videoq.jobs import JobStatus
    from videoq.projection import JobSnapshot
    from workflows.models import JobState, VideoJobInput, VideoJobResult

# Projection writes are retried until the database accepts them. The job waits for them only at
# its very end, so that the row is final before the workflow closes.
PROJECTION_TIMEOUT = timedelta(seconds=10)
PROJECTION_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30)
)


@workflow.defn
class VideoJobWorkflow:
    def __init__(self) -> None:
        self._state: JobState | None = None
        self._input: VideoJobInput | None = None
        # Every change of the state bumps _version; the projection task writes the newest
        # version with seq = _version, so the table can drop late or repeated writes.
        self._version = 0
        self._projected = 0
        self._status_attribute = JobStatus.QUEUED.value

    @workflow.run
    async def run(self, input: VideoJobInput) -> VideoJobResult:
        self._begin(input)
        projection = asyncio.create_task(self._project_changes())

        try:
            result = await self._render(input)
        except ActivityError as err:
            if isinstance(err.cause, CancelledError):
                await self._end_cancelled(projection)
                raise asyncio.CancelledError() from err
            reason = _failure_reason(err)
            await self._end(JobStatus.FAILED, projection, error=reason)
            raise ApplicationError(
                f"job {input.job.id} failed after {self._state.attempt} attempt(s): {reason}",
                type=errors.JOB_FAILED,
                non_retryable=True,
            ) from err
        except asyncio.CancelledError:
            await self._end_cancelled(projection)
            raise

        self._state.attempt = max(self._state.attempt, result.attempt)
        self._state.worker = result.worker
        await self._end(JobStatus.COMPLETED, projection, output=result.output)
        return VideoJobResult(
            job_id=input.job.id,
            output=result.output,
            attempts=result.attempt,
            render_seconds=result.duration_seconds,
        )

    def _begin(self, input: VideoJobInput) -> None:
        job = input.job
        self._input = input
        self._state = JobState(
            job_id=job.id,
            job_type=job.job_type,
            engine=job.engine,
            priority=job.priority,
            user_id=job.user_id,
            phase=JobStatus.QUEUED,
            max_attempts=input.policy.max_attempts,
            enqueued_at=job.enqueued_at,
        )
        if input.queued_row_written:
            # Version 1 is the queued state, whose row the submitter writes.
            self._projected = 1
        workflow.logger.info(
            "job queued: %s %s on %s",
            job.job_type.value,
            job.engine.value,
            input.render_task_queue,
            extra={"action": "job_queued", "job_id": job.id},
        )
        self._changed()

    async def _render(self, input: VideoJobInput) -> RenderResult:
        policy = input.policy
        return await workflow.execute_activity(
            "render_video",
            RenderInput(job=input.job),
            result_type=RenderResult,
            task_queue=input.render_task_queue,
            start_to_close_timeout=timedelta(seconds=policy.timeout_seconds),
            heartbeat_timeout=timedelta(seconds=policy.heartbeat_timeout_seconds),
            retry_policy=policy.retry_policy(),
            # Wait for the renderer to be killed before the job counts as cancelled.
            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            # Only the key is set: the fairness key, if any, is inherited from the workflow.
            priority=Priority(priority_key=input.job.priority_key),
        )

    @workflow.query
    def state(self) -> JobState:
        if self._state is None:
            raise ApplicationError("the workflow has not started yet")
        return self._state

    @workflow.signal(name=RENDER_STARTED_SIGNAL)
    def render_started(self, started: RenderStarted) -> None:
        state = self._state
        if state is None or state.phase.is_final or started.attempt < state.attempt:
            return  # a late report of an older attempt
        if started.attempt > 1 and state.phase is not JobStatus.RETRYING:
            # The previous attempt ended without reporting a failure: it timed out or its worker
            # was lost.
            state.last_error = f"attempt {started.attempt - 1} timed out or lost its worker"
        state.attempt = started.attempt
        state.phase = JobStatus.RENDERING
        state.started_at = state.started_at or started.started_at
        state.worker = started.worker
        self._changed()
        workflow.logger.info(
            "render attempt %d started on %s",
            started.attempt,
            started.worker,
            extra={"action": "render_attempt_started", "job_id": state.job_id},
        )

    @workflow.signal(name=RENDER_ATTEMPT_FAILED_SIGNAL)
    def render_attempt_failed(self, failed: RenderAttemptFailed) -> None:
        state = self._state
        if state is None or state.phase.is_final or failed.attempt < state.attempt:
            return
        state.last_error = failed.error
        if failed.attempt < state.max_attempts:
            state.phase = JobStatus.RETRYING
        self._changed()

    def _changed(self) -> None:
        self._version += 1
        assert self._state is not None
        if self._state.phase.value != self._status_attribute:
            # Keeps "VideoqStatus" in the Web UI's searches current.
            workflow.upsert_search_attributes(
                [search_attributes.STATUS.value_set(self._state.phase.value)]
            )
            self._status_attribute = self._state.phase.value

    async def _project_changes(self) -> None:
        """Write the newest state to the projection whenever it changes; runs until cancelled."""
        while True:
            await workflow.wait_condition(lambda: self._version > self._projected)
            version = self._version
            await workflow.execute_local_activity(
                "record_job_state",
                self._snapshot(version),
                result_type=bool,
                start_to_close_timeout=PROJECTION_TIMEOUT,
                retry_policy=PROJECTION_RETRY,
            )
            self._projected = version

    async def _flush_projection(self, projection: asyncio.Task[None]) -> None:
        await workflow.wait_condition(lambda: self._projected >= self._version)
        projection.cancel()

    def _snapshot(self, version: int) -> JobSnapshot:
        assert self._state is not None and self._input is not None
        state = self._state
        return JobSnapshot.of_job(
            self._input.job,
            status=state.phase,
            max_attempts=state.max_attempts,
            generation=self._input.generation,
            seq=version,
            attempt=state.attempt,
            started_at=state.started_at,
            finished_at=state.finished_at,
            error=state.last_error,
            output=state.output,
            worker=state.worker,
        )

    async def _end(
        self,
        phase: JobStatus,
        projection: asyncio.Task[None],
        *,
        output: str | None = None,
        error: str | None = None,
    ) -> None:
        """Record the final phase and wait until the projection has it."""
        assert self._state is not None
        self._state.phase = phase
        self._state.finished_at = workflow.now()
        self._state.output = output
        if error is not None:
            self._state.last_error = error
        self._changed()
        level = workflow.logger.error if phase is JobStatus.FAILED else workflow.logger.info
        level(
            "job %s: %s",
            phase.value,
            error or output,
            extra={"action": f"job_{phase.value}", "job_id": self._state.job_id},
        )
        await self._flush_projection(projection)

    async def _end_cancelled(self, projection: asyncio.Task[None]) -> None:
        assert self._state is not None
        where = "queued" if self._state.phase is JobStatus.QUEUED else "rendering"
        await self._end(JobStatus.CANCELLED, projection, error=f"cancelled while {where}")


def _failure_reason(err: ActivityError) -> str:
    """Describe why the last attempt failed: the application error or the timeout type."""
    cause = err.cause
    if isinstance(cause, ApplicationError):
        return cause.message
    if isinstance(cause, TemporalTimeoutError):
        kind = cause.type.name.lower().replace("_", "-") if cause.type else "unknown"
        return f"render timed out ({kind} timeout)"
    return str(cause or err)
