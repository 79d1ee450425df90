"""Temporal client and job submission shared by the CLI, the API and the tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from temporalio.client import Client, WorkflowHandle
from temporalio.common import (
    Priority,
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDReusePolicy,
)
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from videoq import search_attributes
from videoq.jobs import Job, JobRequest, JobStatus
from videoq.settings import Settings
from workflows.models import RenderPolicy, VideoJobInput
from workflows.video_job import VideoJobWorkflow


async def connect(settings: Settings, runtime: Runtime | None = None) -> Client:
    return await Client.connect(
        settings.effective_temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
        runtime=runtime,
    )


def metrics_runtime(host: str, port: int) -> Runtime:
    """Build a Temporal runtime that serves the SDK's metrics (task slots, activity and workflow
    latencies, poll counts) in Prometheus format at ``http://host:port/metrics``."""
    return Runtime(
        telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=f"{host}:{port}"))
    )


def render_policy(settings: Settings) -> RenderPolicy:
    return RenderPolicy(
        timeout_seconds=settings.render_timeout,
        retry_interval_seconds=settings.retry_interval,
        max_attempts=settings.max_attempts,
        heartbeat_timeout_seconds=settings.heartbeat_timeout,
    )


def new_job(request: JobRequest, job_id: str | None = None) -> Job:
    return Job(
        **request.model_dump(),
        id=job_id or f"job-{uuid.uuid4().hex}",
        enqueued_at=datetime.now(UTC),
    )


def job_priority(settings: Settings, job: Job) -> Priority:
    """Temporal priority of a job's tasks; its render activity inherits it from the workflow.

    With ``VIDEOQ_FAIRNESS=user`` the user id is the fairness key, so that within one priority
    level the server shares dispatch between users instead of serving one user's burst first.
    This needs ``matching.enableFairness=true`` on the server.
    """
    fairness_key = job.user_id[:64] if settings.fairness == "user" else None
    return Priority(priority_key=job.priority_key, fairness_key=fairness_key)


async def start_job(
    client: Client,
    settings: Settings,
    job: Job,
    *,
    generation: int = 1,
    rpc_timeout: timedelta | None = None,
    queued_row_written: bool = False,
) -> WorkflowHandle[VideoJobWorkflow, object]:
    """Start the job's workflow; the job id is the workflow id.

    Generation 1 is a new job: an id used before, by any run, raises
    ``temporalio.exceptions.WorkflowAlreadyStartedError``, which makes a repeated submit with
    the same id idempotent. A higher generation re-runs a job whose last run failed, was
    cancelled or was terminated. With ``queued_row_written`` the caller writes the run's queued
    projection row after the start (``api.runs.start_run`` does), and the workflow does not.
    """
    reuse = (
        WorkflowIDReusePolicy.REJECT_DUPLICATE
        if generation == 1
        else WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY
    )
    return await client.start_workflow(
        VideoJobWorkflow.run,
        VideoJobInput(
            job=job,
            render_task_queue=settings.render_task_queue(job.engine),
            generation=generation,
            policy=render_policy(settings),
            queued_row_written=queued_row_written,
        ),
        id=job.id,
        task_queue=settings.workflow_task_queue,
        # The workflow's own tasks outrank lower-priority jobs too, not only its render.
        priority=job_priority(settings, job),
        id_reuse_policy=reuse,
        rpc_timeout=rpc_timeout,
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(search_attributes.JOB_TYPE, job.job_type.value),
                SearchAttributePair(search_attributes.PRIORITY, job.priority.value),
                SearchAttributePair(search_attributes.ENGINE, job.engine.value),
                SearchAttributePair(search_attributes.USER_ID, job.user_id),
                SearchAttributePair(search_attributes.STATUS, JobStatus.QUEUED.value),
            ]
        ),
    )
