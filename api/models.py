"""Request and response bodies of the jobs API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from videoq.jobs import Engine, JobContent, JobStatus, JobType, Priority


class SubmitJobRequest(BaseModel):
    """A job as a client submits it; the user id comes from the token, never from the body."""

    model_config = ConfigDict(extra="forbid")

    job_type: JobType
    engine: Engine
    content: JobContent


class QueuePosition(BaseModel):
    """Position of a queued job among the queued jobs of its engine.

    The two times are estimates in seconds from now. They are null when the job is not queued,
    or when no worker of this deployment renders its engine (a render cap of 0).
    """

    position: int | None = Field(default=None, description="1 means the job starts next.")
    jobs_ahead: int | None = None
    estimated_start_seconds: float | None = None
    estimated_finish_seconds: float | None = None


class JobPosition(QueuePosition):
    """Response of ``GET /v1/jobs/{id}/position``."""

    id: str
    status: JobStatus


class SubmittedJob(QueuePosition):
    """Response to a submission or a retry."""

    id: str
    status: JobStatus
    priority: Priority
    enqueued_at: datetime


class JobFields(BaseModel):
    """The fields of a job that every listing of jobs returns."""

    id: str
    user_id: str
    job_type: JobType
    engine: Engine
    priority: Priority
    title: str
    status: JobStatus
    attempt: int
    max_attempts: int
    generation: int = Field(description="1 for the first run, plus 1 for each admin retry.")
    enqueued_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None


class JobView(QueuePosition, JobFields):
    """A job as returned to its owner or an admin."""

    output: str | None = Field(default=None, description="Path of the video on the workers.")


class JobPage(BaseModel):
    """One page of jobs, newest enqueued first."""

    items: list[JobView]
    limit: int
    offset: int


class Health(BaseModel):
    """``ok`` or ``unavailable`` for the API as a whole and for each backend."""

    status: str
    temporal: str
    database: str
