"""The ``/v1/jobs`` routes: submit, read, list, download, cancel and retry jobs."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query, Response, status
from fastapi.responses import FileResponse
from temporalio.exceptions import WorkflowAlreadyStartedError

from activities.render import final_video_path
from api import errors
from api.auth import CurrentUser, User
from api.backends import Backends, BackendsDependency
from api.estimates import estimate_position
from api.models import JobPage, JobPosition, JobView, QueuePosition, SubmitJobRequest, SubmittedJob
from api.runs import load_job, read_run_input, start_run
from videoq.db import ProjectionUnavailable
from videoq.idempotency import MAX_KEY_CHARS, job_id_for_key
from videoq.jobs import Job, JobRequest, JobStatus
from videoq.projection import JobSnapshot, list_jobs
from videoq.temporal import new_job

logger = logging.getLogger("videoq.api")

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

# The pattern of Job.id; any other id cannot name a job.
JOB_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,200}$")
RETRYABLE = (JobStatus.FAILED, JobStatus.CANCELLED)

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=MAX_KEY_CHARS,
        description="Repeating a submission with the same key returns the first job.",
    ),
]


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    responses={200: {"model": SubmittedJob, "description": "The job of a repeated key."}},
)
async def submit_job(
    body: SubmitJobRequest,
    user: CurrentUser,
    backends: BackendsDependency,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> SubmittedJob:
    """Queue a job for the caller and return its position.

    With an ``Idempotency-Key`` the job id is derived from the caller and the key, so a repeat
    returns 200 with the job the first request created, whatever its body.
    """
    job_id = job_id_for_key(user.id, idempotency_key) if idempotency_key else None
    request = JobRequest(**body.model_dump(), user_id=user.id)
    job = new_job(request, job_id)
    # The database is checked first, so that the API never starts a job that it cannot list.
    # A database that fails after the start costs only the queued row and the position.
    pool = await backends.database()
    client = await backends.temporal()

    try:
        await start_run(client, backends.settings, pool, job)
    except WorkflowAlreadyStartedError:
        existing = await _load_owned_job(backends, job.id, user)
        logger.info(
            "repeated submission: returning the existing job",
            extra={"action": "job_submit_repeated", "job_id": job.id},
        )
        response.status_code = status.HTTP_200_OK
        position = await _position_or_none(backends, existing)
        return _submitted(existing, existing.status, position)

    logger.info(
        "job submitted: %s %s by %s",
        job.job_type.value,
        job.engine.value,
        user.id,
        extra={"action": "job_submitted", "job_id": job.id},
    )
    response.headers["Location"] = f"{router.prefix}/{job.id}"
    return _submitted(job, JobStatus.QUEUED, await _position_or_none(backends, job))


@router.get("")
async def list_own_jobs(
    user: CurrentUser,
    backends: BackendsDependency,
    status_filter: Annotated[JobStatus | None, Query(alias="status")] = None,
    user_id: Annotated[str | None, Query(description="Admins only: list this user's jobs.")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> JobPage:
    """List the caller's jobs, newest first; admins see every user's jobs.

    Items come from the projection and carry no queue position: ask ``/position`` for that.
    """
    if user.is_admin:
        owner = user_id
    elif user_id is None or user_id == user.id:
        owner = user.id
    else:
        raise HTTPException(status.HTTP_403_FORBIDDEN, errors.ADMIN_ONLY_USER_FILTER)

    rows = await list_jobs(
        await backends.database(), user_id=owner, status=status_filter, limit=limit, offset=offset
    )
    return JobPage(items=[_view(row) for row in rows], limit=limit, offset=offset)


@router.get("/{job_id}")
async def get_job_view(job_id: str, user: CurrentUser, backends: BackendsDependency) -> JobView:
    """Return the job, with its live status while it runs and its position while queued."""
    job = await _load_owned_job(backends, job_id, user)
    position = await _position_or_none(backends, job) if job.status is JobStatus.QUEUED else None
    return _view(job, position)


@router.get("/{job_id}/position")
async def get_job_position(
    job_id: str, user: CurrentUser, backends: BackendsDependency
) -> JobPosition:
    """Return the job's place among the queued jobs of its engine, and estimated start and
    finish times in seconds from now. All four are null once the job has left the queue.

    The times are estimates: see ``api.estimates`` for what they assume.
    """
    job = await _load_owned_job(backends, job_id, user)
    position = QueuePosition()
    if job.status is JobStatus.QUEUED:
        position = await _estimate(backends, job)
    return JobPosition(id=job.id, status=job.status, **position.model_dump())


@router.get(
    "/{job_id}/video",
    response_class=FileResponse,
    responses={200: {"content": {"video/mp4": {}}, "description": "The rendered video."}},
)
async def download_video(job_id: str, user: CurrentUser, backends: BackendsDependency):
    """Send the job's MP4 once it is completed."""
    job = await _load_owned_job(backends, job_id, user)
    if job.status is not JobStatus.COMPLETED:
        raise HTTPException(status.HTTP_409_CONFLICT, errors.JOB_NOT_COMPLETED)
    # The path comes from this API's output folder, not from the row, so that a row can never
    # point the API at another file.
    path = final_video_path(backends.settings.output_dir.resolve(), job.id)
    if not path.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, errors.VIDEO_FILE_NOT_FOUND)
    return FileResponse(path, media_type="video/mp4", filename=path.name)


@router.post("/{job_id}/cancel", status_code=status.HTTP_202_ACCEPTED)
async def cancel_job(job_id: str, user: CurrentUser, backends: BackendsDependency) -> JobView:
    """Request cancellation of a queued or running job; the owner or an admin may.

    Returns the job as it was when cancellation was requested. A rendering job turns cancelled
    once its renderer has been stopped.
    """
    job = await _load_owned_job(backends, job_id, user)
    if job.status.is_final:
        raise HTTPException(status.HTTP_409_CONFLICT, errors.job_already_final(job.status.value))

    client = await backends.temporal()
    await client.get_workflow_handle(job.id).cancel()
    logger.info(
        "cancellation requested by %s while %s",
        user.id,
        job.status.value,
        extra={"action": "job_cancel_requested", "job_id": job.id},
    )
    return _view(job)


@router.post("/{job_id}/retry", status_code=status.HTTP_202_ACCEPTED)
async def retry_job(job_id: str, user: CurrentUser, backends: BackendsDependency) -> SubmittedJob:
    """Run a failed or cancelled job again under the same id; admins only.

    The new run is the next generation of the job, enqueued now, with the original content.
    """
    if not user.is_admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, errors.ADMIN_ONLY_RETRY)
    previous = await _load_owned_job(backends, job_id, user)
    if previous.status not in RETRYABLE:
        raise HTTPException(status.HTTP_409_CONFLICT, errors.JOB_NOT_RETRYABLE)

    client = await backends.temporal()
    run_input = await read_run_input(client, job_id)
    if run_input is None:
        raise HTTPException(status.HTTP_409_CONFLICT, errors.JOB_HISTORY_GONE)
    job = run_input.job.model_copy(update={"enqueued_at": datetime.now(UTC)})
    generation = previous.generation + 1
    try:
        await start_run(
            client, backends.settings, await backends.database(), job, generation=generation
        )
    except WorkflowAlreadyStartedError as err:
        raise HTTPException(status.HTTP_409_CONFLICT, errors.JOB_ALREADY_RUNNING) from err

    logger.info(
        "job retried by %s as generation %d after %s",
        user.id,
        generation,
        previous.status.value,
        extra={"action": "job_retried", "job_id": job.id},
    )
    return _submitted(job, JobStatus.QUEUED, await _position_or_none(backends, job))


async def _load_owned_job(backends: Backends, job_id: str, user: User) -> JobSnapshot:
    """Load the job, or raise 404 if it does not exist or belongs to another user.

    A job of another user gets 404, not 403, so that ids cannot be probed.
    """
    job = None
    if JOB_ID.match(job_id):
        owner = None if user.is_admin else user.id
        job = await load_job(backends, job_id, user_id=owner)
    if job is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, errors.JOB_NOT_FOUND)
    return job


async def _estimate(backends: Backends, job: Job | JobSnapshot) -> QueuePosition:
    """Estimate the position of a queued job; the client is optional, the database is not."""
    try:
        client = await backends.temporal()
    except errors.TemporalUnavailable:
        client = None
    return await estimate_position(
        await backends.database(),
        client,
        backends.settings,
        backends.render_workers,
        job_id=job.id,
        engine=job.engine,
        priority_key=job.priority_key,
        enqueued_at=job.enqueued_at,
    )


async def _position_or_none(backends: Backends, job: Job | JobSnapshot) -> QueuePosition:
    """Estimate the position of a job that may already have left the queue.

    A job that exists already gets null positions rather than a 503 when the database fails,
    because a 503 would make the client submit it again.
    """
    if isinstance(job, JobSnapshot) and job.status is not JobStatus.QUEUED:
        return QueuePosition()
    try:
        return await _estimate(backends, job)
    except ProjectionUnavailable as err:
        logger.warning(
            "position unknown: %s",
            err,
            extra={"action": "database_unavailable", "job_id": job.id},
        )
        return QueuePosition()


def _submitted(job: Job | JobSnapshot, status: JobStatus, position: QueuePosition) -> SubmittedJob:
    return SubmittedJob(
        id=job.id,
        status=status,
        priority=job.priority,
        enqueued_at=job.enqueued_at,
        **position.model_dump(),
    )


def _view(job: JobSnapshot, position: QueuePosition | None = None) -> JobView:
    fields = job.model_dump(exclude={"priority_key", "seq", "worker"})
    return JobView(**fields, **(position or QueuePosition()).model_dump())
