"""The HTTP API against a real Temporal dev server and PostgreSQL, with in-process workers."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import jwt
import pytest
from psycopg_pool import AsyncConnectionPool
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from api import auth, errors
from api import backends as api_backends
from api.estimates import (
    DEFAULT_RENDER_SECONDS,
    EngineLoad,
    RenderWorkerCounter,
    estimate_start_seconds,
)
from tests.conftest import fake_render_command
from tests.fixtures_api import JWT_SECRET, bearer
from tests.fixtures_postgres import create_database, database_url, drop_database
from tests.helpers import job_request, starts
from videoq.embedded_postgres import find_free_port
from videoq.jobs import PRIORITY_KEYS, Engine, JobStatus, JobType, Priority
from videoq.projection import JobSnapshot, get_job, record_snapshot
from videoq.temporal import new_job, start_job
from worker import running_workers

STUDENT = "student-1"
OTHER_STUDENT = "student-2"
ADMIN = "admin-1"
# Render settings that end a failing job after one quick attempt.
ONE_ATTEMPT = {"max_attempts": 1, "retry_interval": 1.0, "render_timeout": 30.0}


def job_body(
    job_type: str = "doubt", engine: str = "standard", title: str = "Why is the sky blue?"
) -> dict:
    return {
        "job_type": job_type,
        "engine": engine,
        "content": {
            "title": title,
            "text": "Air scatters short blue wavelengths far more than red ones.",
            "steps": ["Sunlight holds every colour", "Blue light scatters the most"],
        },
    }


async def submit(api: httpx.AsyncClient, user: str = STUDENT, **body) -> httpx.Response:
    return await api.post("/v1/jobs", json=job_body(**body), headers=bearer(user))


async def wait_for_row(
    pool: AsyncConnectionPool,
    job_id: str,
    status: JobStatus | None = None,
    *,
    generation: int = 1,
    timeout: float = 20,
) -> JobSnapshot:
    """Wait until the job's projection row exists with ``generation``, and ``status`` if given."""
    deadline = time.monotonic() + timeout
    while True:
        row = await get_job(pool, job_id)
        if row is not None and row.generation == generation and status in (None, row.status):
            return row
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} has row {row}, expected status {status}")
        await asyncio.sleep(0.05)


async def position_of(api: httpx.AsyncClient, job_id: str, user: str = STUDENT) -> dict:
    response = await api.get(f"/v1/jobs/{job_id}/position", headers=bearer(user))
    assert response.status_code == 200, response.text
    body = response.json()
    return {key: body[key] for key in ("position", "jobs_ahead")}


def completed_history(job_id: str, engine: Engine, seconds: float) -> JobSnapshot:
    """A completed job of another user whose render took ``seconds``, for the mean render time."""
    started = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    return JobSnapshot(
        id=job_id,
        user_id="history-user",
        job_type=JobType.TOPIC_SHORT,
        engine=engine,
        priority=Priority.MEDIUM,
        priority_key=PRIORITY_KEYS[Priority.MEDIUM],
        status=JobStatus.COMPLETED,
        attempt=1,
        max_attempts=3,
        enqueued_at=started,
        started_at=started,
        finished_at=started + timedelta(seconds=seconds),
        title="Earlier job",
        generation=1,
        seq=3,
    )


def closed_port_url(scheme: str = "postgresql") -> str:
    return f"{scheme}://postgres@127.0.0.1:{find_free_port()}/videoq"


# Submission and reading


async def test_api_submit_queues_job(api_settings, api_client_for, projection_pool):
    settings = api_settings(max_manim_renders=0)
    api = await api_client_for(settings)

    response = await submit(api, job_type="topic_short", engine="manim")

    assert response.status_code == 202
    body = response.json()
    assert body["id"].startswith("job-")
    assert response.headers["location"] == f"/v1/jobs/{body['id']}"
    assert body["status"] == "queued"
    assert body["priority"] == "medium"
    assert body["position"] == 1
    assert body["jobs_ahead"] == 0
    # No render worker polls, so one worker is assumed, and the Manim cap is 0.
    assert body["estimated_start_seconds"] is None
    assert body["estimated_finish_seconds"] is None
    assert datetime.fromisoformat(body["enqueued_at"]) <= datetime.now(UTC)


def window_around_now(timezone: str) -> str:
    """Return an HH:MM-HH:MM peak window of local time from 10 minutes ago to 2 hours ahead."""
    now = datetime.now(ZoneInfo(timezone))
    start, end = now - timedelta(minutes=10), now + timedelta(hours=2)
    return f"{start:%H:%M}-{end:%H:%M}"


@pytest.mark.parametrize(("peak", "rounds"), [(False, 2), (True, 1)])
async def test_api_estimate_uses_peak_capacity(api_settings, api_client_for, peak, rounds):
    # No worker runs, so one worker is assumed and nothing renders. The fifth Manim job has 4
    # ahead: with 2 Manim slots it waits 2 rounds, with the peak's 4 slots 1 round.
    settings = api_settings(max_manim_renders=2, peak_multiplier=2.0, peak_windows="")
    if peak:
        window = window_around_now(settings.timezone)
        settings = api_settings(max_manim_renders=2, peak_multiplier=2.0, peak_windows=window)
    api = await api_client_for(settings)

    bodies = [(await submit(api, engine="manim")).json() for _ in range(5)]

    assert bodies[-1]["jobs_ahead"] == 4
    mean = DEFAULT_RENDER_SECONDS[Engine.MANIM]
    assert bodies[-1]["estimated_start_seconds"] == rounds * mean


async def test_api_submit_writes_queued_row(api_settings, api_client_for, projection_pool):
    # No worker runs: the row comes from the API itself, written before it responds.
    api = await api_client_for(api_settings())

    job_id = (await submit(api, job_type="daily_ca")).json()["id"]

    row = await get_job(projection_pool, job_id)
    assert row is not None
    assert row.status is JobStatus.QUEUED
    assert row.user_id == STUDENT
    assert row.generation == 1
    assert row.seq == 1
    assert row.max_attempts == 3


async def test_api_get_job_before_projection_row(api_settings, api_client_for, client):
    # Started without the API and with no worker, the job has no row: the API reads the run's
    # input from Temporal.
    settings = api_settings()
    api = await api_client_for(settings)
    job = new_job(job_request(job_type=JobType.DAILY_CA, user_id=STUDENT))
    await start_job(client, settings, job)
    job_id = job.id

    response = await api.get(f"/v1/jobs/{job_id}", headers=bearer(STUDENT))

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == job_id
    assert body["user_id"] == STUDENT
    assert body["status"] == "queued"
    assert body["priority"] == "low"
    assert body["title"] == "Why is the sky blue?"
    assert body["attempt"] == 0
    assert body["max_attempts"] == 3
    assert body["generation"] == 1
    assert body["position"] == 1


async def test_api_completed_job_and_video(
    api_settings, api_client_for, projection_worker_for, projection_pool, tmp_path
):
    record = tmp_path / "record.jsonl"
    settings = api_settings(
        standard_renderer="command", render_command=fake_render_command(record, "ok", 1.0)
    )
    await projection_worker_for(settings)
    api = await api_client_for(settings)
    job_id = (await submit(api)).json()["id"]
    await wait_for_row(projection_pool, job_id, JobStatus.RENDERING)

    early = await api.get(f"/v1/jobs/{job_id}/video", headers=bearer(STUDENT))
    assert early.status_code == 409
    assert early.json() == {"detail": "job is not completed"}

    await wait_for_row(projection_pool, job_id, JobStatus.COMPLETED)
    job = (await api.get(f"/v1/jobs/{job_id}", headers=bearer(STUDENT))).json()
    assert job["status"] == "completed"
    assert job["attempt"] == 1
    assert job["output"] == str(settings.output_dir.resolve() / f"{job_id}.mp4")
    assert job["position"] is None
    assert job["started_at"] <= job["finished_at"]
    assert await position_of(api, job_id) == {"position": None, "jobs_ahead": None}

    video = await api.get(f"/v1/jobs/{job_id}/video", headers=bearer(STUDENT))
    assert video.status_code == 200
    assert video.headers["content-type"] == "video/mp4"
    assert video.content == (settings.output_dir / f"{job_id}.mp4").read_bytes()

    cancel = await api.post(f"/v1/jobs/{job_id}/cancel", headers=bearer(STUDENT))
    assert cancel.status_code == 409
    assert cancel.json() == {"detail": "job is already completed"}
    retry = await api.post(f"/v1/jobs/{job_id}/retry", headers=bearer(ADMIN, admin=True))
    assert retry.status_code == 409
    assert retry.json() == {"detail": "only failed or cancelled jobs can be retried"}


# Queue positions and estimates


async def test_api_positions_follow_priority_and_engine(
    api_settings, api_client_for, projection_worker_for, projection_pool, tmp_path
):
    # One render slot and no Manim slot: standard jobs run one at a time in priority order,
    # Manim jobs stay queued.
    record = tmp_path / "record.jsonl"
    settings = api_settings(
        standard_renderer="command",
        render_command=fake_render_command(record, "ok", 2.5),
        max_renders=1,
        max_manim_renders=0,
    )
    # The mean standard render is 10 s until the first job of this test completes.
    await record_snapshot(projection_pool, completed_history("earlier", Engine.STANDARD, 10.0))
    await projection_worker_for(settings)
    api = await api_client_for(settings)

    blocker = (await submit(api, job_type="daily_ca")).json()
    assert blocker["position"] == 1
    assert blocker["estimated_start_seconds"] == 0.0
    assert blocker["estimated_finish_seconds"] == 10.0
    await wait_for_row(projection_pool, blocker["id"], JobStatus.RENDERING)

    submitted = {}
    for name, job_type, engine in [
        ("low", "daily_ca", "standard"),
        ("high", "doubt", "standard"),
        ("medium", "topic_short", "standard"),
        ("manim_low", "daily_ca", "manim"),
        ("manim_high", "doubt", "manim"),
    ]:
        response = await submit(api, job_type=job_type, engine=engine)
        assert response.status_code == 202
        submitted[name] = response.json()
        # The next submission counts this job only once its row is written.
        await wait_for_row(projection_pool, submitted[name]["id"])
    ids = {name: body["id"] for name, body in submitted.items()}

    # At submission each job saw the jobs queued before it. The slot is busy, so the first job
    # in line starts after one mean render (10 s).
    at_submit = {
        name: (body["position"], body["estimated_start_seconds"], body["estimated_finish_seconds"])
        for name, body in submitted.items()
    }
    assert at_submit == {
        "low": (1, 10.0, 20.0),
        "high": (1, 10.0, 20.0),
        "medium": (2, 20.0, 30.0),
        "manim_low": (1, None, None),
        "manim_high": (1, None, None),
    }

    queue = {}
    for name in ("high", "medium", "low", "manim_high", "manim_low"):
        response = await api.get(f"/v1/jobs/{ids[name]}/position", headers=bearer(STUDENT))
        body = response.json()
        queue[name] = (body["position"], body["jobs_ahead"], body["estimated_start_seconds"])
    assert queue == {
        "high": (1, 0, 10.0),
        "medium": (2, 1, 20.0),
        "low": (3, 2, 30.0),
        "manim_high": (1, 0, None),
        "manim_low": (2, 1, None),
    }

    await wait_for_row(projection_pool, ids["high"], JobStatus.RENDERING)
    assert await position_of(api, ids["high"]) == {"position": None, "jobs_ahead": None}
    assert await position_of(api, ids["medium"]) == {"position": 1, "jobs_ahead": 0}
    assert await position_of(api, ids["low"]) == {"position": 2, "jobs_ahead": 1}

    await wait_for_row(projection_pool, ids["medium"], JobStatus.RENDERING)
    assert (await get_job(projection_pool, ids["high"])).status is JobStatus.COMPLETED
    assert await position_of(api, ids["low"]) == {"position": 1, "jobs_ahead": 0}

    await wait_for_row(projection_pool, ids["low"], JobStatus.RENDERING)
    assert await position_of(api, ids["low"]) == {"position": None, "jobs_ahead": None}
    assert await position_of(api, ids["manim_high"]) == {"position": 1, "jobs_ahead": 0}
    assert await position_of(api, ids["manim_low"]) == {"position": 2, "jobs_ahead": 1}
    # Standard jobs started in priority order after the blocker.
    order = [entry["job_id"] for entry in starts(record)]
    assert order == [blocker["id"], ids["high"], ids["medium"], ids["low"]]


@pytest.mark.parametrize(
    ("jobs_ahead", "capacity", "rendering", "expected"),
    [
        pytest.param(0, 2, 0, 0.0, id="free-slot"),
        pytest.param(1, 2, 0, 0.0, id="second-free-slot"),
        pytest.param(2, 2, 0, 30.0, id="after-first-round"),
        pytest.param(3, 2, 0, 30.0, id="second-slot-of-round"),
        pytest.param(4, 2, 0, 60.0, id="two-rounds"),
        pytest.param(0, 2, 2, 30.0, id="next-but-all-busy"),
        pytest.param(0, 2, 1, 0.0, id="next-with-one-free"),
        pytest.param(1, 2, 1, 30.0, id="one-free-taken-ahead"),
        pytest.param(0, 1, 3, 30.0, id="more-rendering-than-capacity"),
        pytest.param(5, 0, 0, None, id="no-capacity"),
    ],
)
def test_api_estimate_start_seconds(jobs_ahead, capacity, rendering, expected):
    load = EngineLoad(capacity=capacity, rendering=rendering, mean_render_seconds=30.0)
    assert estimate_start_seconds(jobs_ahead, load) == expected


async def test_api_worker_count_from_pollers(make_settings, client, temporal_env):
    settings = make_settings()
    second_client = await Client.connect(
        temporal_env.client.service_client.config.target_host,
        identity="second-worker@test",
        data_converter=pydantic_data_converter,
    )
    async with running_workers(client, settings), running_workers(second_client, settings):

        async def count() -> int:
            return await RenderWorkerCounter(settings).count(client, Engine.STANDARD)

        deadline = time.monotonic() + 10
        while await count() != 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert await count() == 2


# Idempotency


async def test_api_idempotency_key_returns_same_job(
    api_settings, api_client_for, projection_worker_for, projection_pool, client, tmp_path
):
    record = tmp_path / "record.jsonl"
    settings = api_settings(
        standard_renderer="command",
        render_command=fake_render_command(record, "crash"),
        **ONE_ATTEMPT,
    )
    await projection_worker_for(settings)
    api = await api_client_for(settings)
    headers = {**bearer(STUDENT), "Idempotency-Key": "order-42"}

    first, second = await asyncio.gather(
        api.post("/v1/jobs", json=job_body(), headers=headers),
        api.post("/v1/jobs", json=job_body(job_type="daily_ca"), headers=headers),
    )

    assert sorted([first.status_code, second.status_code]) == [200, 202]
    assert first.json()["id"] == second.json()["id"]
    job_id = first.json()["id"]
    await wait_for_row(projection_pool, job_id, JobStatus.FAILED)
    run_id = (await client.get_workflow_handle(job_id).describe()).run_id

    # A failed job is not started again by its key.
    again = await api.post("/v1/jobs", json=job_body(), headers=headers)
    assert again.status_code == 200
    assert again.json()["id"] == job_id
    assert again.json()["status"] == "failed"
    assert again.json()["position"] is None
    assert (await client.get_workflow_handle(job_id).describe()).run_id == run_id
    assert len(starts(record)) == 1

    other_user = await api.post(
        "/v1/jobs",
        json=job_body(),
        headers={**bearer(OTHER_STUDENT), "Idempotency-Key": "order-42"},
    )
    assert other_user.status_code == 202
    assert other_user.json()["id"] != job_id


# Users and admins


async def test_api_other_users_job_not_found(api_settings, api_client_for):
    # No worker runs, so ownership comes from the runs' input, not from projection rows.
    api = await api_client_for(api_settings())
    other = (await submit(api, user=OTHER_STUDENT)).json()["id"]

    for method, path in [
        ("GET", f"/v1/jobs/{other}"),
        ("GET", f"/v1/jobs/{other}/position"),
        ("GET", f"/v1/jobs/{other}/video"),
        ("POST", f"/v1/jobs/{other}/cancel"),
    ]:
        response = await api.request(method, path, headers=bearer(STUDENT))
        assert response.status_code == 404, path
        assert response.json() == {"detail": "job not found"}, path

    admin_view = await api.get(f"/v1/jobs/{other}", headers=bearer(ADMIN, admin=True))
    assert admin_view.status_code == 200
    assert admin_view.json()["user_id"] == OTHER_STUDENT


async def test_api_list_shows_own_jobs(
    api_settings, api_client_for, projection_worker_for, projection_pool
):
    settings = api_settings(max_manim_renders=0)
    await projection_worker_for(settings)
    api = await api_client_for(settings)
    own = [(await submit(api, engine="manim")).json()["id"] for _ in range(3)]
    other = (await submit(api, user=OTHER_STUDENT, engine="manim")).json()["id"]
    for job_id in [*own, other]:
        await wait_for_row(projection_pool, job_id)

    listed = await api.get("/v1/jobs", headers=bearer(STUDENT))
    assert listed.status_code == 200
    assert [item["id"] for item in listed.json()["items"]] == own[::-1]
    assert listed.json()["limit"] == 20
    assert listed.json()["offset"] == 0

    page = await api.get("/v1/jobs?limit=1&offset=1&status=queued", headers=bearer(STUDENT))
    assert [item["id"] for item in page.json()["items"]] == [own[1]]
    assert page.json()["limit"] == 1
    assert page.json()["offset"] == 1
    none_completed = await api.get("/v1/jobs?status=completed", headers=bearer(STUDENT))
    assert none_completed.json()["items"] == []

    admin = bearer(ADMIN, admin=True)
    everyone = await api.get("/v1/jobs", headers=admin)
    assert [item["id"] for item in everyone.json()["items"]] == [other, *own[::-1]]
    filtered = await api.get(f"/v1/jobs?user_id={OTHER_STUDENT}", headers=admin)
    assert [item["id"] for item in filtered.json()["items"]] == [other]

    forbidden = await api.get(f"/v1/jobs?user_id={OTHER_STUDENT}", headers=bearer(STUDENT))
    assert forbidden.status_code == 403
    assert forbidden.json() == {"detail": "only admins can list the jobs of other users"}


# Cancel and retry


async def test_api_cancel_queued_job_then_retry(
    api_settings, api_client_for, projection_worker_for, projection_pool
):
    settings = api_settings(max_manim_renders=0)
    await projection_worker_for(settings)
    api = await api_client_for(settings)
    job_id = (await submit(api, engine="manim")).json()["id"]
    queued = await wait_for_row(projection_pool, job_id, JobStatus.QUEUED)

    cancel = await api.post(f"/v1/jobs/{job_id}/cancel", headers=bearer(STUDENT))

    assert cancel.status_code == 202
    assert cancel.json()["status"] == "queued"
    cancelled = await wait_for_row(projection_pool, job_id, JobStatus.CANCELLED)
    assert cancelled.attempt == 0
    assert cancelled.started_at is None
    again = await api.post(f"/v1/jobs/{job_id}/cancel", headers=bearer(STUDENT))
    assert again.status_code == 409
    assert again.json() == {"detail": "job is already cancelled"}

    retry = await api.post(f"/v1/jobs/{job_id}/retry", headers=bearer(ADMIN, admin=True))
    assert retry.status_code == 202
    assert retry.json()["status"] == "queued"
    assert retry.json()["position"] == 1
    row = await wait_for_row(projection_pool, job_id, JobStatus.QUEUED, generation=2)
    assert row.enqueued_at > queued.enqueued_at
    second = await api.post(f"/v1/jobs/{job_id}/retry", headers=bearer(ADMIN, admin=True))
    assert second.status_code == 409
    assert second.json() == {"detail": "only failed or cancelled jobs can be retried"}


async def test_api_cancel_rendering_job(
    api_settings, api_client_for, projection_worker_for, projection_pool, tmp_path
):
    record = tmp_path / "record.jsonl"
    # A short heartbeat timeout makes the renderer heartbeat often, and a heartbeat is what
    # delivers the cancellation to it.
    settings = api_settings(
        standard_renderer="command",
        render_command=fake_render_command(record, "hang"),
        heartbeat_timeout=2.0,
    )
    await projection_worker_for(settings)
    api = await api_client_for(settings)
    job_id = (await submit(api)).json()["id"]
    await wait_for_row(projection_pool, job_id, JobStatus.RENDERING)

    cancel = await api.post(f"/v1/jobs/{job_id}/cancel", headers=bearer(ADMIN, admin=True))

    assert cancel.status_code == 202
    assert cancel.json()["status"] == "rendering"
    row = await wait_for_row(projection_pool, job_id, JobStatus.CANCELLED)
    assert row.error == "cancelled while rendering"
    job = (await api.get(f"/v1/jobs/{job_id}", headers=bearer(STUDENT))).json()
    assert job["status"] == "cancelled"


async def test_api_retry_failed_job(
    api_settings, api_client_for, projection_worker_for, projection_pool, tmp_path
):
    record = tmp_path / "record.jsonl"
    settings = api_settings(
        standard_renderer="command",
        render_command=fake_render_command(record, "crash"),
        **ONE_ATTEMPT,
    )
    await projection_worker_for(settings)
    api = await api_client_for(settings)
    job_id = (await submit(api)).json()["id"]
    failed = await wait_for_row(projection_pool, job_id, JobStatus.FAILED)
    assert failed.generation == 1

    by_owner = await api.post(f"/v1/jobs/{job_id}/retry", headers=bearer(STUDENT))
    assert by_owner.status_code == 403
    assert by_owner.json() == {"detail": "only admins can retry jobs"}

    retry = await api.post(f"/v1/jobs/{job_id}/retry", headers=bearer(ADMIN, admin=True))

    assert retry.status_code == 202
    assert retry.json()["id"] == job_id
    assert retry.json()["status"] == "queued"
    assert retry.json()["priority"] == "high"
    row = await wait_for_row(projection_pool, job_id, JobStatus.FAILED, generation=2)
    assert row.enqueued_at > failed.enqueued_at
    assert row.attempt == 1
    assert [entry["job_id"] for entry in starts(record)] == [job_id, job_id]


# Bad input


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        pytest.param(
            {"job_type": "lecture"},
            "job_type: Input should be 'doubt', 'topic_short' or 'daily_ca'",
            id="unknown-job-type",
        ),
        pytest.param(
            {"engine": "blender"},
            "engine: Input should be 'manim' or 'standard'",
            id="unknown-engine",
        ),
        pytest.param({"job_type": None}, "job_type: Field required", id="missing-job-type"),
        pytest.param({"content": None}, "content: Field required", id="missing-content"),
        pytest.param(
            {"content": {"text": "x"}}, "content.title: Field required", id="missing-title"
        ),
        pytest.param(
            {"content": {"title": "   ", "text": "x"}},
            "content.title: String should have at least 1 character",
            id="blank-title",
        ),
        pytest.param(
            {"content": {"title": "t" * 121, "text": "x"}},
            "content.title: String should have at most 120 characters",
            id="long-title",
        ),
        pytest.param(
            {"content": {"title": "t", "text": "x" * 2001}},
            "content.text: String should have at most 2000 characters",
            id="long-text",
        ),
        pytest.param(
            {"content": {"title": "t", "text": "x", "steps": ["s"] * 13}},
            "content.steps: List should have at most 12 items after validation, not 13",
            id="too-many-steps",
        ),
        pytest.param(
            {"content": {"title": "t", "text": "x", "steps": ["ok", "s" * 201]}},
            "content.steps: step 1 must have 1 to 200 characters, has 201",
            id="long-step",
        ),
        pytest.param(
            {"content": {"title": "t", "text": "x", "colour": "red"}},
            "content.colour: Extra inputs are not permitted",
            id="extra-content-field",
        ),
        pytest.param(
            {"user_id": "someone-else"},
            "user_id: Extra inputs are not permitted",
            id="user-id-in-body",
        ),
        pytest.param(
            {"job_type": "lecture", "engine": "blender"},
            "job_type: Input should be 'doubt', 'topic_short' or 'daily_ca'; "
            "engine: Input should be 'manim' or 'standard'",
            id="two-problems",
        ),
    ],
)
async def test_api_submit_rejects_bad_job(api_settings, api_client_for, change, detail):
    api = await api_client_for(api_settings())
    body = {**job_body(), **change}
    body = {key: value for key, value in body.items() if value is not None}

    response = await api.post("/v1/jobs", json=body, headers=bearer(STUDENT))

    assert response.status_code == 422
    assert response.json() == {"detail": detail}


@pytest.mark.parametrize(
    ("content", "headers", "status", "detail"),
    [
        pytest.param(
            '{"job_type": ',
            {"Content-Type": "application/json"},
            422,
            "request body is not valid JSON: Expecting value",
            id="malformed-json",
        ),
        pytest.param(
            '["doubt"]',
            {"Content-Type": "application/json"},
            422,
            "request body must be a JSON object",
            id="json-array",
        ),
        pytest.param(
            "",
            {"Content-Type": "application/json"},
            422,
            "request body is missing",
            id="empty-body",
        ),
        pytest.param(
            "job_type=doubt",
            {"Content-Type": "application/x-www-form-urlencoded"},
            415,
            "request body must be JSON, sent with Content-Type: application/json",
            id="form-body",
        ),
        pytest.param(
            None,
            {"Idempotency-Key": "k" * 201},
            422,
            "Idempotency-Key: String should have at most 200 characters",
            id="long-idempotency-key",
        ),
        pytest.param(
            None,
            {"Idempotency-Key": ""},
            422,
            "Idempotency-Key: String should have at least 1 character",
            id="empty-idempotency-key",
        ),
    ],
)
async def test_api_submit_rejects_bad_request(
    api_settings, api_client_for, content, headers, status, detail
):
    api = await api_client_for(api_settings())
    request = {"json": job_body()} if content is None else {"content": content}

    response = await api.post("/v1/jobs", **request, headers={**bearer(STUDENT), **headers})

    assert response.status_code == status
    assert response.json() == {"detail": detail}


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        ("limit=0", "limit: Input should be greater than or equal to 1"),
        ("limit=101", "limit: Input should be less than or equal to 100"),
        (
            "limit=ten",
            "limit: Input should be a valid integer, unable to parse string as an integer",
        ),
        ("offset=-1", "offset: Input should be greater than or equal to 0"),
        (
            "status=done",
            "status: Input should be 'queued', 'rendering', 'retrying', 'completed', 'failed' "
            "or 'cancelled'",
        ),
    ],
)
async def test_api_list_rejects_bad_query(api_settings, api_client_for, query, detail):
    api = await api_client_for(api_settings())

    response = await api.get(f"/v1/jobs?{query}", headers=bearer(STUDENT))

    assert response.status_code == 422
    assert response.json() == {"detail": detail}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/jobs/job-unknown"),
        ("GET", "/v1/jobs/job-unknown/position"),
        ("GET", "/v1/jobs/job-unknown/video"),
        ("POST", "/v1/jobs/job-unknown/cancel"),
        ("POST", "/v1/jobs/job-unknown/retry"),
        ("GET", "/v1/jobs/job%20with%20spaces"),
        ("GET", f"/v1/jobs/job-{'x' * 300}"),
    ],
)
async def test_api_unknown_job_not_found(api_settings, api_client_for, method, path):
    api = await api_client_for(api_settings())

    response = await api.request(method, path, headers=bearer(ADMIN, admin=True))

    assert response.status_code == 404
    assert response.json() == {"detail": "job not found"}


# Authentication


def _token(claims: dict, secret: str = JWT_SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, secret, algorithm=algorithm)


def _claims(**changes) -> dict:
    now = int(time.time())
    claims = {"sub": STUDENT, "iat": now, "exp": now + 600, **changes}
    return {key: value for key, value in claims.items() if value is not None}


@pytest.mark.parametrize(
    ("authorization", "detail"),
    [
        pytest.param(None, "missing bearer token", id="no-header"),
        pytest.param("Basic c3R1ZGVudDpwdw==", "missing bearer token", id="basic-scheme"),
        pytest.param("Bearer", "missing bearer token", id="empty-bearer"),
        pytest.param("Bearer not-a-jwt", "malformed token", id="malformed"),
        pytest.param(
            f"Bearer {auth.issue_token(JWT_SECRET, STUDENT, ttl_seconds=-60)}",
            "token expired",
            id="expired",
        ),
        pytest.param(
            f"Bearer {auth.issue_token('another-secret-of-at-least-32-chars!!', STUDENT)}",
            "invalid token signature",
            id="forged",
        ),
        pytest.param(f"Bearer {_token(_claims(exp=None))}", "token has no exp claim", id="no-exp"),
        pytest.param(f"Bearer {_token(_claims(sub=None))}", "token has no sub claim", id="no-sub"),
        pytest.param(
            f"Bearer {_token(_claims(sub='a user'))}",
            "invalid token subject: sub must be a user id of 1 to 128 letters, digits or _.@:-",
            id="bad-sub",
        ),
        pytest.param(
            f"Bearer {_token(_claims(nbf=int(time.time()) + 600))}",
            "token is not valid yet",
            id="not-yet-valid",
        ),
        pytest.param(
            f"Bearer {_token(_claims(), algorithm='HS512')}",
            "invalid token algorithm: only HS256 is accepted",
            id="hs512",
        ),
        pytest.param(
            f"Bearer {_token(_claims(exp='tomorrow'))}", "malformed token", id="non-numeric-exp"
        ),
    ],
)
async def test_api_rejects_bad_token(api_settings, api_client_for, authorization, detail):
    api = await api_client_for(api_settings())
    headers = {} if authorization is None else {"Authorization": authorization}

    response = await api.post("/v1/jobs", json=job_body(), headers=headers)

    assert response.status_code == 401
    assert response.json() == {"detail": detail}
    assert response.headers["www-authenticate"] == "Bearer"


async def test_api_unsigned_token_rejected(api_settings, api_client_for):
    api = await api_client_for(api_settings())
    unsigned = jwt.encode(_claims(), key=None, algorithm="none")

    response = await api.get("/v1/jobs", headers={"Authorization": f"Bearer {unsigned}"})

    assert response.status_code == 401
    assert response.json() == {"detail": "invalid token algorithm: only HS256 is accepted"}


# Backends down


async def test_api_healthz_and_docs(api_settings, api_client_for):
    api = await api_client_for(api_settings())

    health = await api.get("/healthz")
    docs = await api.get("/docs")
    schema = await api.get("/openapi.json")

    assert health.status_code == 200
    assert health.json() == {"status": "ok", "temporal": "ok", "database": "ok"}
    assert docs.status_code == 200
    assert "/v1/jobs/{job_id}/position" in schema.json()["paths"]


async def test_api_database_unreachable(api_settings, api_client_for, client):
    settings = api_settings(database_url=closed_port_url())
    api = await api_client_for(settings)

    health = await api.get("/healthz")
    assert health.status_code == 503
    assert health.json() == {"status": "unavailable", "temporal": "ok", "database": "unavailable"}
    submit_response = await submit(api)
    assert submit_response.status_code == 503
    assert submit_response.json() == {"detail": "database unavailable"}
    for path in ("/v1/jobs", "/v1/jobs/job-1", "/v1/jobs/job-1/position"):
        response = await api.get(path, headers=bearer(STUDENT))
        assert response.status_code == 503, path
        assert response.json() == {"detail": "database unavailable"}, path
    # No workflow was started on this test's queue.
    started = [
        execution
        async for execution in client.list_workflows(
            f'TaskQueue = "{settings.workflow_task_queue}"'
        )
    ]
    assert started == []


async def test_api_temporal_unreachable(api_settings, api_client_for, projection_pool):
    settings = api_settings(temporal_address=f"127.0.0.1:{find_free_port()}")
    api = await api_client_for(settings)

    health = await api.get("/healthz")
    assert health.status_code == 503
    assert health.json() == {"status": "unavailable", "temporal": "unavailable", "database": "ok"}
    submit_response = await submit(api)
    assert submit_response.status_code == 503
    assert submit_response.json() == {"detail": "temporal unavailable"}
    unknown = await api.get("/v1/jobs/job-1", headers=bearer(STUDENT))
    assert unknown.status_code == 503
    assert unknown.json() == {"detail": "temporal unavailable"}
    # Listing needs only the database, and nothing was created.
    listed = await api.get("/v1/jobs", headers=bearer(ADMIN, admin=True))
    assert listed.status_code == 200
    assert listed.json()["items"] == []


async def test_api_reconnects_to_database(
    api_settings, api_client_for, postgres_server, postgres_template, monkeypatch
):
    monkeypatch.setattr(api_backends, "RECONNECT_INTERVAL_SECONDS", 0.2)
    dbname = f"test_late_{int(time.time() * 1000)}"
    settings = api_settings(database_url=database_url(postgres_server.url, dbname))
    api = await api_client_for(settings)

    before = await api.get("/v1/jobs", headers=bearer(STUDENT))
    assert before.status_code == 503
    assert before.json() == {"detail": errors.DATABASE_UNAVAILABLE}

    await create_database(postgres_server.url, dbname, template=postgres_template)
    try:
        await asyncio.sleep(0.3)
        after = await api.get("/v1/jobs", headers=bearer(STUDENT))
        assert after.status_code == 200
        assert after.json()["items"] == []
    finally:
        await drop_database(postgres_server.url, dbname)
