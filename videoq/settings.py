"""Settings read from environment variables with the prefix ``VIDEOQ_``."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from videoq.capacity import CapacityPlan, parse_peak_windows
from videoq.jobs import Engine

# Roles of a worker process: the job workflows, the render task queues, or both.
WorkerRole = Literal["all", "workflows", "renders"]

# Placeholders that VIDEOQ_RENDER_COMMAND may use; anything else in braces is rejected.
COMMAND_PLACEHOLDERS = ("job_id", "job_type", "engine", "priority", "attempt", "input", "output")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class Settings(BaseSettings):
    """Settings shared by the worker, the CLI and the API."""

    model_config = SettingsConfigDict(env_prefix="VIDEOQ_", extra="ignore")

    temporal_address: str | None = Field(
        default=None,
        description="host:port of an existing Temporal server; unset means the embedded one.",
    )
    temporal_namespace: str = "default"
    temporal_ui_url: str = Field(
        default="http://127.0.0.1:8233",
        description="Base URL of the Temporal Web UI, for links to the workflow of each job.",
    )
    database_url: str | None = Field(
        default=None,
        description="PostgreSQL URL of the projection; unset means the embedded one in dev.",
    )
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    task_queue_prefix: str = Field(
        default="videoq",
        pattern=r"^[A-Za-z0-9_.-]{1,100}$",
        description="Prefix of every task queue name, so that several deployments share a server.",
    )
    output_dir: Path = Field(default=Path("videos"), description="Folder the videos land in.")

    render_timeout: float = Field(default=600.0, gt=0, description="Start-to-close timeout, s.")
    retry_interval: float = Field(default=300.0, gt=0, description="Gap between attempts, s.")
    max_attempts: int = Field(default=3, ge=1, le=100)
    heartbeat_timeout: float = Field(default=30.0, gt=0, description="Heartbeat timeout, s.")

    manim_renderer: Literal["manim", "command"] = "manim"
    standard_renderer: Literal["slides", "command"] = "slides"
    render_command: str = Field(default="", description="argv template of the command renderer.")
    manim_quality: Literal["l", "m", "h"] = Field(
        default="l", description="Manim quality flag: l = 480p15, m = 720p30, h = 1080p60."
    )

    max_renders: int = Field(default=10, ge=1, le=1000)
    max_manim_renders: int = Field(default=4, ge=0, le=1000)
    peak_multiplier: float = Field(default=1.5, ge=1.0, le=10.0)
    peak_windows: str = Field(
        default="06:00-09:00,20:00-23:00",
        description="Comma-separated HH:MM-HH:MM spans of local time with raised capacity.",
    )
    timezone: str = Field(default="Asia/Kolkata", description="IANA zone of the peak windows.")
    fairness: Literal["off", "user"] = Field(
        default="off",
        description="'user' shares each priority level fairly between users (fairness keys).",
    )
    worker_role: WorkerRole = Field(
        default="all",
        description=(
            "What a worker process polls: 'workflows' (job workflows and projection writes), "
            "'renders' (the render task queues and their slots) or 'all'."
        ),
    )
    backlog_refresh_seconds: float = Field(
        default=0.5,
        ge=0.05,
        le=60,
        description=(
            "How often a render worker reads the render queues' backlogs, which decide who "
            "gets a contested slot; each read is one DescribeTaskQueue call per engine."
        ),
    )
    workflow_task_slots: int = Field(
        default=4,
        ge=2,
        le=1000,
        description=(
            "Workflow tasks one worker process runs at once: one new job's first task, and the"
            " later tasks of running jobs in the others."
        ),
    )
    worker_metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Port of the worker's Prometheus endpoint with the Temporal SDK's metrics.",
    )
    worker_metrics_host: str = "127.0.0.1"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("peak_windows")
    @classmethod
    def _check_peak_windows(cls, value: str) -> str:
        parse_peak_windows(value)
        return value

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as err:
            raise ValueError(
                f"unknown time zone {value!r}; use an IANA name such as Asia/Kolkata"
            ) from err
        return value

    def capacity_plan(self) -> CapacityPlan:
        return CapacityPlan(
            max_renders=self.max_renders,
            max_manim_renders=self.max_manim_renders,
            peak_multiplier=self.peak_multiplier,
            peak_windows=parse_peak_windows(self.peak_windows),
            timezone=ZoneInfo(self.timezone),
        )

    @field_validator("render_command")
    @classmethod
    def _check_render_command(cls, value: str) -> str:
        if not value:
            return value
        try:
            argv = shlex.split(value)
        except ValueError as err:
            raise ValueError(f"VIDEOQ_RENDER_COMMAND is not valid shell syntax: {err}") from err
        for arg in argv:
            for name in _PLACEHOLDER.findall(arg):
                if name not in COMMAND_PLACEHOLDERS:
                    raise ValueError(
                        f"VIDEOQ_RENDER_COMMAND has unknown placeholder {{{name}}}; "
                        f"known: {', '.join('{' + p + '}' for p in COMMAND_PLACEHOLDERS)}"
                    )
        return value

    @model_validator(mode="after")
    def _check_renderers(self) -> Settings:
        uses_command = "command" in (self.manim_renderer, self.standard_renderer)
        if uses_command and not self.render_command:
            raise ValueError("the command renderer is selected but VIDEOQ_RENDER_COMMAND is empty")
        return self

    @property
    def runs_workflows(self) -> bool:
        """Whether this worker process runs the job workflows and their projection writes."""
        return self.worker_role != "renders"

    @property
    def runs_renders(self) -> bool:
        """Whether this worker process polls the render task queues."""
        return self.worker_role != "workflows"

    @property
    def effective_temporal_address(self) -> str:
        return self.temporal_address or "127.0.0.1:7233"

    @property
    def workflow_task_queue(self) -> str:
        return f"{self.task_queue_prefix}-jobs"

    def render_task_queue(self, engine: Engine) -> str:
        return f"{self.task_queue_prefix}-render-{engine.value}"
