"""Admin statistics, the dashboard page and /metrics against real Temporal and PostgreSQL."""

from __future__ import annotations

import asyncio
import random
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from psycopg_pool import AsyncConnectionPool
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from api import stats
from tests.conftest import fake_render_command
from tests.fixtures_api import bearer
from tests.test_api import ADMIN, STUDENT, closed_port_url, submit, wait_for_row
from videoq.embedded_postgres import find_free_port
from videoq.jobs import PRIORITY_KEYS, Engine, JobStatus, JobType, Priority
from videoq.projection import JobSnapshot, record_snapshot
from worker import running_workers

ADMIN_HEADERS = bearer(ADMIN, admin=True)
JOB_TYPE_OF = {Priority.HIGH: JobType.DOUBT, Priority.MEDIUM: JobType.TOPIC_SHORT}
JOB_TYPE_OF[Priority.LOW] = JobType.DAILY_CA
TIMEOUT_ERROR = "render timed out (start-to-close timeout)"


def snapshot(
    job_id: str,
    status: JobStatus,
    priority: Priority,
    engine: Engine,
    *,
    enqueued_at: datetime,
    started_at: datetime | None = None,
    finished_at: datetime | None = None,
    attempt: int = 1,
    error: str | None = None,
) -> JobSnapshot:
    return JobSnapshot(
        id=job_id,
        user_id="history-user",
        job_type=JOB_TYPE_OF[priority],
        engine=engine,
        priority=priority,
        priority_key=PRIORITY_KEYS[priority],
        status=status,
        attempt=attempt if started_at else 0,
        max_attempts=3,
        enqueued_at=enqueued_at,
        started_at=started_at,
        finished_at=finished_at,
        error=error,
        title=f"Job {job_id}",
        generation=1,
        seq=1,
    )


async def insert_history(pool: AsyncConnectionPool, now: datetime) -> None:
    """Write the jobs that the figure tests expect, with times in seconds before ``now``.

    Waits (start - enqueue) and renders (finish - start) per job, seconds:
    c1 15 and 900, c2 30 and 160, c3 100 and 20, old 10 and 90 (two hours ago), r1 10,
    f1 20, x1 10.
    """

    def ago(seconds: float) -> datetime:
        return now - timedelta(seconds=seconds)

    high, medium, low = Priority.HIGH, Priority.MEDIUM, Priority.LOW
    manim, standard = Engine.MANIM, Engine.STANDARD
    rows = [
        snapshot("q1", JobStatus.QUEUED, high, standard, enqueued_at=ago(300)),
        snapshot("q2", JobStatus.QUEUED, high, standard, enqueued_at=ago(100)),
        snapshot("q3", JobStatus.QUEUED, low, manim, enqueued_at=ago(200)),
        snapshot(
            "r1", JobStatus.RENDERING, medium, standard, enqueued_at=ago(400), started_at=ago(390)
        ),
        snapshot(
            "x1",
            JobStatus.RETRYING,
            low,
            manim,
            enqueued_at=ago(700),
            started_at=ago(690),
            attempt=2,
            error="attempt 1 timed out or lost its worker",
        ),
        snapshot(
            "c1",
            JobStatus.COMPLETED,
            high,
            standard,
            enqueued_at=ago(1005),
            started_at=ago(990),
            finished_at=ago(90),
        ),
        snapshot(
            "c2",
            JobStatus.COMPLETED,
            high,
            manim,
            enqueued_at=ago(2000),
            started_at=ago(1970),
            finished_at=ago(1810),
        ),
        snapshot(
            "c3",
            JobStatus.COMPLETED,
            low,
            standard,
            enqueued_at=ago(600),
            started_at=ago(500),
            finished_at=ago(480),
        ),
        snapshot(
            "f1",
            JobStatus.FAILED,
            medium,
            standard,
            enqueued_at=ago(900),
            started_at=ago(880),
            finished_at=ago(100),
            attempt=3,
            error=TIMEOUT_ERROR,
        ),
        snapshot(
            "k1",
            JobStatus.CANCELLED,
            medium,
            manim,
            enqueued_at=ago(50),
            finished_at=ago(40),
            error="cancelled while queued",
        ),
        snapshot(
            "old",
            JobStatus.COMPLETED,
            high,
            standard,
            enqueued_at=ago(7300),
            started_at=ago(7290),
            finished_at=ago(7200),
            attempt=3,
            error="attempt 2 timed out or lost its worker",
        ),
    ]
    for row in rows:
        assert await record_snapshot(pool, row)
    # The row of "old" was last written two hours ago, so no figure of the last hour counts it.
    async with pool.connection() as conn:
        await conn.execute("UPDATE video_jobs SET updated_at = %s WHERE id = 'old'", (ago(7200),))


async def get_stats(api: httpx.AsyncClient, query: str = "") -> dict:
    response = await api.get(f"/v1/admin/stats{query}", headers=ADMIN_HEADERS)
    assert response.status_code == 200, response.text
    return response.json()


def queued(body: dict) -> dict[tuple[str, str], int]:
    return {(row["priority"], row["engine"]): row["queued"] for row in body["queue_depth"]}


def renders(body: dict) -> dict[str, dict]:
    return {row["engine"]: row for row in body["renders"]}


def completed_per_bucket(body: dict) -> dict[int, int]:
    return {
        index: bucket["completed"]
        for index, bucket in enumerate(body["throughput"])
        if bucket["completed"]
    }


def scrape(text: str) -> dict[tuple[str, frozenset], float]:
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def labels(**pairs: str) -> frozenset:
    return frozenset(pairs.items())


# Access


@pytest.mark.parametrize(
    ("headers", "status", "detail"),
    [
        pytest.param({}, 401, "missing bearer token", id="no-token"),
        pytest.param(
            bearer(STUDENT), 403, "only admins can read queue statistics", id="student-token"
        ),
    ],
)
async def test_admin_stats_rejects_non_admins(
    api_settings, api_client_for, headers, status, detail
):
    api = await api_client_for(api_settings())

    response = await api.get("/v1/admin/stats", headers=headers)

    assert response.status_code == status
    assert response.json() == {"detail": detail}


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        ("limit=0", "limit: Input should be greater than or equal to 1"),
        ("limit=101", "limit: Input should be less than or equal to 100"),
        ("offset=-1", "offset: Input should be greater than or equal to 0"),
        (
            "status=done",
            "status: Input should be 'queued', 'rendering', 'retrying', 'completed', 'failed' "
            "or 'cancelled'",
        ),
    ],
)
async def test_admin_stats_rejects_bad_query(api_settings, api_client_for, query, detail):
    api = await api_client_for(api_settings())

    response = await api.get(f"/v1/admin/stats?{query}", headers=ADMIN_HEADERS)

    assert response.status_code == 422
    assert response.json() == {"detail": detail}


async def test_admin_dashboard_page_served(api_settings, api_client_for):
    api = await api_client_for(api_settings())

    page = await api.get("/admin")
    script = await api.get("/admin/static/admin.js")
    style = await api.get("/admin/static/admin.css")

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert '<script src="/admin/static/admin.js"' in page.text
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert style.status_code == 200
    assert style.headers["content-type"].startswith("text/css")


# Figures as jobs move


async def test_admin_stats_follow_jobs(
    api_settings, api_client_for, projection_worker_for, projection_pool, tmp_path
):
    # One render slot: the first job renders for 2 s while the second waits in the queue.
    record = tmp_path / "record.jsonl"
    settings = api_settings(
        standard_renderer="command",
        render_command=fake_render_command(record, "ok", 2.0),
        max_renders=1,
        max_manim_renders=0,
    )
    await projection_worker_for(settings)
    api = await api_client_for(settings)

    empty = await get_stats(api)
    assert set(queued(empty).values()) == {0}
    assert renders(empty)["standard"]["rendering"] == 0
    assert empty["oldest_queued_job"] is None
    assert completed_per_bucket(empty) == {}
    assert empty["jobs"]["items"] == []

    first = (await submit(api, job_type="doubt")).json()["id"]
    await wait_for_row(projection_pool, first, JobStatus.RENDERING)
    second = (await submit(api, job_type="daily_ca")).json()["id"]
    await wait_for_row(projection_pool, second, JobStatus.QUEUED)

    busy = await get_stats(api)
    assert queued(busy)[("low", "standard")] == 1
    assert sum(queued(busy).values()) == 1
    assert renders(busy)["standard"]["rendering"] == 1
    assert renders(busy)["standard"]["capacity"] == 1
    oldest = busy["oldest_queued_job"]
    assert oldest["id"] == second
    assert oldest["priority"] == "low"
    assert oldest["engine"] == "standard"
    assert 0 <= oldest["age_seconds"] < 5
    items = busy["jobs"]["items"]
    assert [(item["id"], item["status"]) for item in items] == [
        (second, "queued"),
        (first, "rendering"),
    ]
    assert items[1]["temporal_ui_url"] == (
        f"http://127.0.0.1:8233/namespaces/default/workflows/{first}"
    )

    await wait_for_row(projection_pool, second, JobStatus.COMPLETED)
    done = await get_stats(api)
    assert set(queued(done).values()) == {0}
    assert renders(done)["standard"]["rendering"] == 0
    assert done["oldest_queued_job"] is None
    assert sum(completed_per_bucket(done).values()) == 2
    assert done["render_seconds"]["jobs"] == 2
    assert done["render_seconds"]["p50_seconds"] >= 2.0
    waits = {row["priority"]: row for row in done["wait_seconds"]}
    assert waits["high"]["jobs"] == 1
    assert waits["low"]["jobs"] == 1
    # The second job waited for the first one's 2 s render.
    assert waits["low"]["p50_seconds"] >= 1.5
    assert waits["medium"] == {
        "priority": "medium",
        "jobs": 0,
        "p50_seconds": None,
        "p95_seconds": None,
    }
    assert done["failures"] == {"failed": 0, "timed_out": 0, "retried": 0}

    samples = scrape((await api.get("/metrics")).text)
    completed = labels(job_type="doubt", status="completed")
    assert samples[("videoq_job_outcomes_total", completed)] == 1
    completed = labels(job_type="daily_ca", status="completed")
    assert samples[("videoq_job_outcomes_total", completed)] == 1
    high_standard = labels(priority="high", engine="standard")
    assert samples[("videoq_job_render_seconds_count", high_standard)] == 1
    assert samples[("videoq_queue_depth", high_standard)] == 0


async def test_admin_stats_figures_of_last_hour(api_settings, api_client_for, projection_pool):
    now = datetime.now(UTC)
    await insert_history(projection_pool, now)
    api = await api_client_for(api_settings())

    body = await get_stats(api)

    generated_at = datetime.fromisoformat(body["generated_at"])
    assert now <= generated_at < now + timedelta(seconds=20)
    assert body["window_seconds"] == 3600
    assert queued(body) == {
        ("high", "manim"): 0,
        ("high", "standard"): 2,
        ("medium", "manim"): 0,
        ("medium", "standard"): 0,
        ("low", "manim"): 1,
        ("low", "standard"): 0,
    }
    engines = renders(body)
    assert (engines["standard"]["rendering"], engines["standard"]["retrying"]) == (1, 0)
    assert (engines["manim"]["rendering"], engines["manim"]["retrying"]) == (0, 1)

    oldest = body["oldest_queued_job"]
    assert oldest["id"] == "q1"
    assert (oldest["priority"], oldest["engine"]) == ("high", "standard")
    assert datetime.fromisoformat(oldest["enqueued_at"]) == now - timedelta(seconds=300)
    assert 300 <= oldest["age_seconds"] < 320

    # c1 finished 90 s ago, c3 480 s ago, c2 1,810 s ago; the last of 60 buckets ends now.
    assert len(body["throughput"]) == 60
    assert completed_per_bucket(body) == {58: 1, 51: 1, 29: 1}
    last_start = datetime.fromisoformat(body["throughput"][-1]["start"])
    assert last_start == generated_at - timedelta(minutes=1)

    # percentile_cont interpolates: of 15 and 30, p95 = 15 + 0.95 * 15.
    waits = {row["priority"]: row for row in body["wait_seconds"]}
    assert waits["high"] == {
        "priority": "high",
        "jobs": 2,
        "p50_seconds": pytest.approx(22.5),
        "p95_seconds": pytest.approx(29.25),
    }
    assert (waits["medium"]["p50_seconds"], waits["medium"]["p95_seconds"]) == (15.0, 19.5)
    assert (waits["low"]["p50_seconds"], waits["low"]["p95_seconds"]) == (55.0, 95.5)
    # Renders of 20, 160 and 900 s: p95 = 160 + 0.9 * 740.
    assert body["render_seconds"] == {
        "jobs": 3,
        "p50_seconds": 160.0,
        "p95_seconds": pytest.approx(826.0),
    }
    assert body["failures"] == {"failed": 1, "timed_out": 2, "retried": 2}


async def test_admin_stats_job_page(api_settings, api_client_for, projection_pool):
    await insert_history(projection_pool, datetime.now(UTC))
    api = await api_client_for(api_settings(temporal_ui_url="https://temporal.example/ui/"))

    newest = (await get_stats(api, "?limit=4"))["jobs"]
    middle = (await get_stats(api, "?limit=3&offset=4"))["jobs"]
    queued_only = (await get_stats(api, "?status=queued"))["jobs"]
    everything = (await get_stats(api, "?limit=11"))["jobs"]

    assert [item["id"] for item in newest["items"]] == ["k1", "q2", "q3", "q1"]
    assert (newest["limit"], newest["offset"], newest["has_more"]) == (4, 0, True)
    assert [item["id"] for item in middle["items"]] == ["r1", "c3", "x1"]
    assert [item["id"] for item in queued_only["items"]] == ["q2", "q3", "q1"]
    assert queued_only["status"] == "queued"
    assert queued_only["has_more"] is False
    assert len(everything["items"]) == 11
    assert everything["has_more"] is False
    failed = next(item for item in everything["items"] if item["id"] == "f1")
    assert failed["status"] == "failed"
    assert failed["error"] == TIMEOUT_ERROR
    assert failed["attempt"] == 3
    assert (
        failed["temporal_ui_url"] == "https://temporal.example/ui/namespaces/default/workflows/f1"
    )


# Capacity and peak hours


def window_around(now: datetime) -> str:
    """A peak window in UTC from an hour before ``now`` to an hour after it."""
    start, end = now - timedelta(hours=1), now + timedelta(hours=1)
    return f"{start:%H:%M}-{end:%H:%M}"


@pytest.mark.parametrize("peak", [True, False], ids=["peak", "off-peak"])
async def test_admin_stats_capacity_of_two_workers(
    api_settings, api_client_for, client, temporal_env, peak
):
    windows = window_around(datetime.now(UTC)) if peak else ""
    settings = api_settings(
        max_renders=4, max_manim_renders=2, timezone="UTC", peak_windows=windows
    )
    second_client = await Client.connect(
        temporal_env.client.service_client.config.target_host,
        identity="second-worker@test",
        data_converter=pydantic_data_converter,
    )
    api = await api_client_for(settings)

    async with running_workers(client, settings), running_workers(second_client, settings):
        # The API caches worker counts for 5 s, so a count taken before both polled lingers.
        deadline = time.monotonic() + 20
        body = await get_stats(api)
        while {row["workers"] for row in body["renders"]} != {2}:
            assert time.monotonic() < deadline, body["renders"]
            await asyncio.sleep(0.5)
            body = await get_stats(api)

    engines = renders(body)
    assert body["peak"] is peak
    assert body["peak_multiplier"] == 1.5
    assert body["peak_windows"] == ([windows] if peak else [])
    assert body["timezone"] == "UTC"
    # Peak limits are the base ones x 1.5, rounded down: 4 -> 6 renders, 2 -> 3 Manim renders.
    per_worker = {"standard": 6, "manim": 3} if peak else {"standard": 4, "manim": 2}
    for engine, limit in per_worker.items():
        assert engines[engine]["per_worker_limit"] == limit, engine
        assert engines[engine]["capacity"] == 2 * limit, engine


# Backends down


async def test_admin_stats_without_temporal(api_settings, api_client_for, projection_pool):
    await insert_history(projection_pool, datetime.now(UTC))
    settings = api_settings(temporal_address=f"127.0.0.1:{find_free_port()}", max_renders=3)
    api = await api_client_for(settings)

    body = await get_stats(api)

    assert queued(body)[("high", "standard")] == 2
    assert renders(body)["standard"]["workers"] == 1
    assert renders(body)["standard"]["capacity"] == 3


async def test_admin_endpoints_database_unreachable(api_settings, api_client_for):
    api = await api_client_for(api_settings(database_url=closed_port_url()))

    stats_response = await api.get("/v1/admin/stats", headers=ADMIN_HEADERS)
    metrics_response = await api.get("/metrics")

    assert stats_response.status_code == 503
    assert stats_response.json() == {"detail": "database unavailable"}
    assert metrics_response.status_code == 503
    assert metrics_response.json() == {"detail": "database unavailable"}


# Prometheus


async def test_admin_metrics_series(api_settings, api_client_for, projection_pool):
    await insert_history(projection_pool, datetime.now(UTC))
    api = await api_client_for(api_settings())

    response = await api.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = scrape(response.text)

    depth = {
        (priority.value, engine.value): samples[
            ("videoq_queue_depth", labels(priority=priority.value, engine=engine.value))
        ]
        for priority in Priority
        for engine in Engine
    }
    assert depth == {
        ("high", "manim"): 0,
        ("high", "standard"): 2,
        ("medium", "manim"): 0,
        ("medium", "standard"): 0,
        ("low", "manim"): 1,
        ("low", "standard"): 0,
    }
    assert samples[("videoq_renders_running", labels(engine="standard"))] == 1
    assert samples[("videoq_renders_running", labels(engine="manim"))] == 0

    # Waits of high/standard jobs: c1 15 s and old 10 s. A wait of exactly 15 s is in le=15.
    wait = "videoq_job_wait_seconds"
    high_standard = {"priority": "high", "engine": "standard"}
    assert samples[(f"{wait}_bucket", labels(**high_standard, le="5.0"))] == 0
    assert samples[(f"{wait}_bucket", labels(**high_standard, le="15.0"))] == 2
    assert samples[(f"{wait}_bucket", labels(**high_standard, le="+Inf"))] == 2
    assert samples[(f"{wait}_count", labels(**high_standard))] == 2
    assert samples[(f"{wait}_sum", labels(**high_standard))] == pytest.approx(25.0)
    low_standard = {"priority": "low", "engine": "standard"}
    assert samples[(f"{wait}_bucket", labels(**low_standard, le="60.0"))] == 0
    assert samples[(f"{wait}_bucket", labels(**low_standard, le="120.0"))] == 1
    medium_manim = {"priority": "medium", "engine": "manim"}
    assert samples[(f"{wait}_count", labels(**medium_manim))] == 0

    # Renders of completed high/standard jobs: c1 900 s and old 90 s.
    render = "videoq_job_render_seconds"
    assert samples[(f"{render}_bucket", labels(**high_standard, le="60.0"))] == 0
    assert samples[(f"{render}_bucket", labels(**high_standard, le="120.0"))] == 1
    assert samples[(f"{render}_bucket", labels(**high_standard, le="600.0"))] == 1
    assert samples[(f"{render}_bucket", labels(**high_standard, le="1200.0"))] == 2
    assert samples[(f"{render}_sum", labels(**high_standard))] == pytest.approx(990.0)
    # The rendering and failed jobs have no render time.
    assert samples[(f"{render}_count", labels(priority="medium", engine="standard"))] == 0

    outcomes = {
        (job_type, status): samples[
            ("videoq_job_outcomes_total", labels(job_type=job_type, status=status))
        ]
        for job_type in ("doubt", "topic_short", "daily_ca")
        for status in ("completed", "failed", "cancelled")
    }
    assert outcomes == {
        ("doubt", "completed"): 3,
        ("doubt", "failed"): 0,
        ("doubt", "cancelled"): 0,
        ("topic_short", "completed"): 0,
        ("topic_short", "failed"): 1,
        ("topic_short", "cancelled"): 1,
        ("daily_ca", "completed"): 1,
        ("daily_ca", "failed"): 0,
        ("daily_ca", "cancelled"): 0,
    }


async def test_admin_metrics_openmetrics(api_settings, api_client_for, projection_pool):
    await insert_history(projection_pool, datetime.now(UTC))
    api = await api_client_for(api_settings())

    response = await api.get(
        "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.endswith("# EOF\n")
    samples = scrape(response.text)
    completed = labels(job_type="doubt", status="completed")
    assert samples[("videoq_job_outcomes_total", completed)] == 3


# Query plans


COPY_HISTORY = """
COPY video_jobs (
    id, user_id, job_type, engine, priority, priority_key, status, attempt, max_attempts,
    enqueued_at, started_at, finished_at, title, generation, seq, updated_at
) FROM STDIN
"""
PLANNED_QUERIES = {
    "COUNT_ACTIVE_JOBS": stats.COUNT_ACTIVE_JOBS,
    "SELECT_OLDEST_QUEUED_JOB": stats.SELECT_OLDEST_QUEUED_JOB,
    "COUNT_COMPLETED_PER_MINUTE": stats.COUNT_COMPLETED_PER_MINUTE,
    "WAIT_PERCENTILES_BY_PRIORITY": stats.WAIT_PERCENTILES_BY_PRIORITY,
    "RENDER_PERCENTILES": stats.RENDER_PERCENTILES,
    "COUNT_FAILURES": stats.COUNT_FAILURES,
}


async def test_admin_stats_queries_use_indexes(projection_pool):
    # 100,000 jobs completed over the 30 days before the last hour, plus this hour's history.
    now = datetime.now(UTC)
    rng = random.Random(7)
    async with projection_pool.connection() as conn:
        async with conn.cursor().copy(COPY_HISTORY) as copy:
            for index in range(100_000):
                enqueued = now - timedelta(hours=2, seconds=rng.uniform(0, 30 * 86_400))
                started = enqueued + timedelta(seconds=rng.uniform(1, 600))
                finished = started + timedelta(seconds=rng.uniform(20, 300))
                engine = rng.choice(list(Engine))
                await copy.write_row(
                    (
                        f"history-{index:06d}",
                        f"user-{index % 1000}",
                        "doubt",
                        engine.value,
                        "high",
                        1,
                        "completed",
                        1,
                        3,
                        enqueued,
                        started,
                        finished,
                        "History",
                        1,
                        3,
                        finished,
                    )
                )
    await insert_history(projection_pool, now)
    async with projection_pool.connection() as conn:
        await conn.execute("ANALYZE video_jobs")

        params = {"now": now, "since": now - stats.WINDOW}
        for name, query in PLANNED_QUERIES.items():
            cursor = await conn.execute(f"EXPLAIN {query}", params)
            plan = "\n".join(row[0] for row in await cursor.fetchall())
            assert "Seq Scan" not in plan, f"{name} scans the whole table:\n{plan}"
