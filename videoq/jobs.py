"""The job model: job types, engines, priorities, statuses and content limits."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator


class JobType(StrEnum):
    DOUBT = "doubt"
    TOPIC_SHORT = "topic_short"
    DAILY_CA = "daily_ca"


class Engine(StrEnum):
    MANIM = "manim"
    STANDARD = "standard"


class Priority(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class JobStatus(StrEnum):
    QUEUED = "queued"
    RENDERING = "rendering"
    RETRYING = "retrying"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)


PRIORITY_BY_JOB_TYPE: dict[JobType, Priority] = {
    JobType.DOUBT: Priority.HIGH,
    JobType.TOPIC_SHORT: Priority.MEDIUM,
    JobType.DAILY_CA: Priority.LOW,
}

# Temporal priority keys: a smaller key is dispatched first. The server's default range is 1-5
# with 3 for tasks that carry no key, so the three levels sit at 1, 3 and 5.
PRIORITY_KEYS: dict[Priority, int] = {Priority.HIGH: 1, Priority.MEDIUM: 3, Priority.LOW: 5}

MAX_TITLE_CHARS = 120
MAX_TEXT_CHARS = 2000
MAX_STEPS = 12
MAX_STEP_CHARS = 200


class JobContent(BaseModel):
    """The content a video explains; renderers draw it and never execute it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: str = Field(min_length=1, max_length=MAX_TITLE_CHARS)
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    steps: list[str] = Field(default_factory=list, max_length=MAX_STEPS)

    @field_validator("steps")
    @classmethod
    def _check_steps(cls, steps: list[str]) -> list[str]:
        for index, step in enumerate(steps):
            if not step or len(step) > MAX_STEP_CHARS:
                raise ValueError(
                    f"step {index} must have 1 to {MAX_STEP_CHARS} characters, has {len(step)}"
                )
        return steps


class JobRequest(BaseModel):
    """A job as a client submits it."""

    model_config = ConfigDict(extra="forbid")

    job_type: JobType
    engine: Engine
    user_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.@:-]+$")
    content: JobContent


class Job(JobRequest):
    """A submitted job: the request plus its id and enqueue time."""

    id: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:-]+$")
    enqueued_at: datetime

    @property
    def priority(self) -> Priority:
        return PRIORITY_BY_JOB_TYPE[self.job_type]

    @property
    def priority_key(self) -> int:
        return PRIORITY_KEYS[self.priority]
