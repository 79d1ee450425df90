"""Inputs, results and live state of VideoJobWorkflow, with the render policy's defaults.

The workflow's sandbox runs a workflow module again for every new workflow instance, so these
models live apart from it, in a module the sandbox passes through. Building them for every
instance took about a fifth of the workflow worker's CPU in a profile of the scheduling
benchmark.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, Field
from temporalio.common import RetryPolicy

from videoq import errors
from videoq.jobs import Engine, Job, JobStatus, JobType
from videoq.jobs import Priority as JobPriority

# A render attempt fails after 10 minutes and is retried twice, 5 minutes apart, at a fixed
# interval (backoff 1.0), so a job fails for good after 3 attempts.
RENDER_TIMEOUT = timedelta(minutes=10)
RETRY_INTERVAL = timedelta(minutes=5)
RETRY_BACKOFF = 1.0
MAX_ATTEMPTS = 3
# Renderers heartbeat every 5 s; 30 s without one means the worker died, and the attempt is
# retried elsewhere without waiting for the full 10-minute timeout.
HEARTBEAT_TIMEOUT = timedelta(seconds=30)


class RenderPolicy(BaseModel):
    """Timeouts and retries of the render activity; operators shorten them only for tests."""

    timeout_seconds: float = Field(default=RENDER_TIMEOUT.total_seconds(), gt=0)
    retry_interval_seconds: float = Field(default=RETRY_INTERVAL.total_seconds(), gt=0)
    max_attempts: int = Field(default=MAX_ATTEMPTS, ge=1)
    heartbeat_timeout_seconds: float = Field(default=HEARTBEAT_TIMEOUT.total_seconds(), gt=0)

    def retry_policy(self) -> RetryPolicy:
        interval = timedelta(seconds=self.retry_interval_seconds)
        return RetryPolicy(
            initial_interval=interval,
            backoff_coefficient=RETRY_BACKOFF,
            maximum_interval=interval,
            maximum_attempts=self.max_attempts,
            non_retryable_error_types=[errors.INVALID_CONTENT],
        )


class VideoJobInput(BaseModel):
    job: Job
    render_task_queue: str
    # 1 for the first run; an admin retry of a failed or cancelled job runs generation + 1.
    generation: int = Field(default=1, ge=1)
    policy: RenderPolicy = Field(default_factory=RenderPolicy)
    # True when the submitter writes the queued row (seq 1) itself once the start succeeds. The
    # workflow then writes from seq 2 on, so its first task schedules the render at once.
    queued_row_written: bool = False


class VideoJobResult(BaseModel):
    job_id: str
    output: str
    attempts: int
    render_seconds: float


class JobState(BaseModel):
    """The live state of a job, as the ``state`` query returns it."""

    job_id: str
    job_type: JobType
    engine: Engine
    priority: JobPriority
    user_id: str
    phase: JobStatus
    attempt: int = 0
    max_attempts: int
    enqueued_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    worker: str | None = None
    last_error: str | None = None
    output: str | None = None
