"""Tests of the projection on a real PostgreSQL: migrations, guarded writes, positions, reads."""

from __future__ import annotations

import asyncio
import shutil
import socket
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool
from pydantic import ValidationError

from videoq.db import (
    MigrationError,
    ProjectionUnavailable,
    load_migrations,
    migrate,
    open_pool,
)
from videoq.embedded_postgres import EmbeddedPostgres
from videoq.jobs import PRIORITY_KEYS, Engine, JobStatus, JobType, Priority
from videoq.projection import (
    JobSnapshot,
    count_by_status,
    get_job,
    list_jobs,
    queue_position,
    recent_render_seconds,
    record_snapshot,
)

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
PRIORITY_OF_TYPE = {
    JobType.DOUBT: Priority.HIGH,
    JobType.TOPIC_SHORT: Priority.MEDIUM,
    JobType.DAILY_CA: Priority.LOW,
}


def make_snapshot(job_id: str = "job-1", **overrides) -> JobSnapshot:
    """Build a queued snapshot. A ``job_type`` override also sets priority and priority_key."""
    job_type = overrides.pop("job_type", JobType.TOPIC_SHORT)
    priority = PRIORITY_OF_TYPE[job_type]
    values = {
        "id": job_id,
        "user_id": "user-a",
        "job_type": job_type,
        "engine": Engine.STANDARD,
        "priority": priority,
        "priority_key": PRIORITY_KEYS[priority],
        "status": JobStatus.QUEUED,
        "attempt": 0,
        "max_attempts": 3,
        "enqueued_at": T0,
        "title": f"Title of {job_id}",
        "generation": 1,
        "seq": 0,
        **overrides,
    }
    return JobSnapshot(**values)


async def position_of(pool: AsyncConnectionPool, snapshot: JobSnapshot) -> int:
    return await queue_position(
        pool,
        engine=snapshot.engine,
        priority_key=snapshot.priority_key,
        enqueued_at=snapshot.enqueued_at,
        job_id=snapshot.id,
    )


async def table_names(conninfo: str) -> set[str]:
    async with await psycopg.AsyncConnection.connect(conninfo) as conn:
        cursor = await conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {row[0] for row in await cursor.fetchall()}


@pytest.fixture
def closed_port_url() -> Iterator[str]:
    """URL of 127.0.0.1 on a port that is bound but not listening, so connections are refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"


# Migrations


async def test_migrate_applies_each_file_once(empty_db_url: str):
    first = await migrate(empty_db_url)
    second = await migrate(empty_db_url)

    assert first == [migration.version for migration in load_migrations()]
    assert first[0] == "0001_video_jobs"
    assert second == []
    assert {"video_jobs", "schema_migrations"} <= await table_names(empty_db_url)


async def test_migrate_concurrent_runs_apply_once(empty_db_url: str):
    results = await asyncio.gather(*(migrate(empty_db_url) for _ in range(3)))

    versions = [migration.version for migration in load_migrations()]
    assert sorted(results, key=len) == [[], [], versions]


async def test_migrate_orders_files_by_number(empty_db_url: str, tmp_path: Path):
    (tmp_path / "0010_third.sql").write_text("CREATE TABLE third (id int REFERENCES second);")
    (tmp_path / "0001_first.sql").write_text("CREATE TABLE first (id int PRIMARY KEY);")
    (tmp_path / "0002_second.sql").write_text(
        "CREATE TABLE second (id int PRIMARY KEY REFERENCES first);"
    )
    (tmp_path / "README.txt").write_text("not a migration")

    applied = await migrate(empty_db_url, directory=tmp_path)

    assert applied == ["0001_first", "0002_second", "0010_third"]


async def test_migrate_failed_file_rolls_back(empty_db_url: str, tmp_path: Path):
    (tmp_path / "0001_good.sql").write_text("CREATE TABLE good (id int);")
    (tmp_path / "0002_bad.sql").write_text("CREATE TABLE half (id int);\nCREATE TABLE oops (;")

    with pytest.raises(psycopg.errors.SyntaxError):
        await migrate(empty_db_url, directory=tmp_path)

    tables = await table_names(empty_db_url)
    assert "good" in tables
    assert "half" not in tables
    async with await psycopg.AsyncConnection.connect(empty_db_url) as conn:
        cursor = await conn.execute("SELECT version FROM schema_migrations")
        assert await cursor.fetchall() == [("0001_good",)]


def test_load_migrations_rejects_misnamed_file(tmp_path: Path):
    (tmp_path / "1_video_jobs.sql").write_text("SELECT 1;")

    with pytest.raises(MigrationError, match="must be named NNNN_name.sql"):
        load_migrations(tmp_path)


def test_load_migrations_rejects_duplicate_number(tmp_path: Path):
    (tmp_path / "0001_a.sql").write_text("SELECT 1;")
    (tmp_path / "0001_b.sql").write_text("SELECT 1;")

    with pytest.raises(MigrationError, match="share the number 0001"):
        load_migrations(tmp_path)


# Writes


async def test_record_snapshot_inserts_new_job(projection_pool: AsyncConnectionPool):
    snapshot = make_snapshot()

    assert await record_snapshot(projection_pool, snapshot) is True
    assert await get_job(projection_pool, "job-1") == snapshot


async def test_record_snapshot_repeat_keeps_one_row(
    projection_pool: AsyncConnectionPool,
):
    snapshot = make_snapshot(status=JobStatus.RENDERING, attempt=1, seq=2, worker="w1")

    assert await record_snapshot(projection_pool, snapshot) is True
    assert await record_snapshot(projection_pool, snapshot) is False

    assert await get_job(projection_pool, "job-1") == snapshot
    assert await list_jobs(projection_pool, user_id=None, status=None, limit=10, offset=0) == [
        snapshot
    ]


async def test_record_snapshot_applies_higher_seq(projection_pool: AsyncConnectionPool):
    queued = make_snapshot(seq=0)
    started_at = T0 + timedelta(seconds=5)
    finished = make_snapshot(
        status=JobStatus.COMPLETED,
        attempt=1,
        started_at=started_at,
        finished_at=started_at + timedelta(seconds=40),
        output="videos/job-1.mp4",
        worker="w1",
        seq=3,
    )

    await record_snapshot(projection_pool, queued)
    assert await record_snapshot(projection_pool, finished) is True

    assert await get_job(projection_pool, "job-1") == finished


async def test_record_snapshot_ignores_stale_seq(projection_pool: AsyncConnectionPool):
    completed = make_snapshot(status=JobStatus.COMPLETED, attempt=1, seq=5, output="v.mp4")
    late_rendering = make_snapshot(status=JobStatus.RENDERING, attempt=1, seq=4)

    await record_snapshot(projection_pool, completed)
    assert await record_snapshot(projection_pool, late_rendering) is False

    assert await get_job(projection_pool, "job-1") == completed


async def test_record_snapshot_higher_generation_wins(projection_pool: AsyncConnectionPool):
    failed = make_snapshot(status=JobStatus.FAILED, attempt=3, seq=9, error="exit code 1")
    retried = make_snapshot(status=JobStatus.QUEUED, generation=2, seq=0)
    late_from_first_run = make_snapshot(status=JobStatus.FAILED, attempt=3, seq=10)

    await record_snapshot(projection_pool, failed)
    assert await record_snapshot(projection_pool, retried) is True
    assert await record_snapshot(projection_pool, late_from_first_run) is False

    assert await get_job(projection_pool, "job-1") == retried


async def test_record_snapshot_updates_updated_at(
    projection_pool: AsyncConnectionPool, projection_db_url: str
):
    async def updated_at() -> datetime:
        async with await psycopg.AsyncConnection.connect(projection_db_url) as conn:
            cursor = await conn.execute("SELECT updated_at FROM video_jobs WHERE id = 'job-1'")
            row = await cursor.fetchone()
        assert row is not None
        return row[0]

    await record_snapshot(projection_pool, make_snapshot(seq=0))
    inserted = await updated_at()
    await record_snapshot(projection_pool, make_snapshot(status=JobStatus.RENDERING, seq=1))

    assert await updated_at() > inserted


def test_job_snapshot_rejects_mismatched_priority_key():
    with pytest.raises(ValidationError, match="priority_key 5 does not match priority 'high'"):
        make_snapshot(job_type=JobType.DOUBT, priority_key=5)


def test_job_snapshot_rejects_naive_datetime():
    with pytest.raises(ValidationError, match="timezone"):
        make_snapshot(enqueued_at=datetime(2026, 1, 5, 9, 0))


async def test_get_job_unknown_returns_none(projection_pool: AsyncConnectionPool):
    assert await get_job(projection_pool, "missing") is None


# Queue positions


async def test_queue_position_counts_by_priority_then_time(projection_pool: AsyncConnectionPool):
    minute = timedelta(minutes=1)
    jobs = [
        make_snapshot("low-early", job_type=JobType.DAILY_CA, enqueued_at=T0),
        make_snapshot("medium-early", job_type=JobType.TOPIC_SHORT, enqueued_at=T0 + minute),
        make_snapshot("high-late", job_type=JobType.DOUBT, enqueued_at=T0 + 5 * minute),
        make_snapshot("medium-late", job_type=JobType.TOPIC_SHORT, enqueued_at=T0 + 6 * minute),
        make_snapshot("high-early", job_type=JobType.DOUBT, enqueued_at=T0 + 2 * minute),
        make_snapshot("low-late", job_type=JobType.DAILY_CA, enqueued_at=T0 + 7 * minute),
        # Another engine has its own queue, and a job that left the queue counts for nobody.
        make_snapshot("manim-high", job_type=JobType.DOUBT, engine=Engine.MANIM, enqueued_at=T0),
        make_snapshot("rendering-high", job_type=JobType.DOUBT, status=JobStatus.RENDERING),
    ]
    for job in jobs:
        await record_snapshot(projection_pool, job)

    positions = {job.id: await position_of(projection_pool, job) for job in jobs}

    assert positions == {
        "high-early": 0,
        "high-late": 1,
        "medium-early": 2,
        "medium-late": 3,
        "low-early": 4,
        "low-late": 5,
        "manim-high": 0,
        "rendering-high": 0,
    }


async def test_queue_position_breaks_time_ties_by_id(projection_pool: AsyncConnectionPool):
    jobs = [make_snapshot(job_id) for job_id in ("job-c", "job-a", "job-b")]
    for job in jobs:
        await record_snapshot(projection_pool, job)

    positions = {job.id: await position_of(projection_pool, job) for job in jobs}

    assert positions == {"job-a": 0, "job-b": 1, "job-c": 2}


async def test_queue_position_after_jobs_leave(projection_pool: AsyncConnectionPool):
    jobs = [make_snapshot(f"job-{i}", enqueued_at=T0 + timedelta(seconds=i)) for i in range(4)]
    for job in jobs:
        await record_snapshot(projection_pool, job)
    last = jobs[3]
    assert await position_of(projection_pool, last) == 3

    rendering = jobs[0].model_copy(update={"status": JobStatus.RENDERING, "attempt": 1, "seq": 1})
    await record_snapshot(projection_pool, rendering)
    assert await position_of(projection_pool, last) == 2

    cancelled = jobs[2].model_copy(update={"status": JobStatus.CANCELLED, "seq": 1})
    await record_snapshot(projection_pool, cancelled)
    assert await position_of(projection_pool, last) == 1

    # Only status 'queued' counts, so a job waiting for its next attempt is not ahead.
    retrying = jobs[1].model_copy(update={"status": JobStatus.RETRYING, "attempt": 1, "seq": 2})
    await record_snapshot(projection_pool, retrying)
    assert await position_of(projection_pool, last) == 0


async def test_queue_position_uses_partial_index(projection_pool: AsyncConnectionPool):
    job = make_snapshot()
    await record_snapshot(projection_pool, job)
    async with projection_pool.connection() as conn:
        # With few rows the planner prefers a sequential scan, so it is turned off to see
        # whether the index can serve the row comparison at all.
        await conn.execute("SET enable_seqscan = off")
        cursor = await conn.execute(
            "EXPLAIN SELECT count(*) FROM video_jobs WHERE status = 'queued' "
            "AND engine = %s AND (priority_key, enqueued_at, id) < (%s, %s, %s)",
            (job.engine, job.priority_key, job.enqueued_at, job.id),
        )
        plan = "\n".join(row[0] for row in await cursor.fetchall())
        await conn.execute("RESET enable_seqscan")

    assert "video_jobs_queued_order_idx" in plan
    assert "Index Cond" in plan


# Reads


async def test_list_jobs_filters_by_user_and_status(projection_pool: AsyncConnectionPool):
    jobs = [
        make_snapshot("a-queued", user_id="user-a", enqueued_at=T0),
        make_snapshot(
            "a-done",
            user_id="user-a",
            status=JobStatus.COMPLETED,
            enqueued_at=T0 + timedelta(minutes=1),
        ),
        make_snapshot("b-queued", user_id="user-b", enqueued_at=T0 + timedelta(minutes=2)),
    ]
    for job in jobs:
        await record_snapshot(projection_pool, job)

    async def ids(user_id: str | None, status: JobStatus | None) -> list[str]:
        page = await list_jobs(projection_pool, user_id=user_id, status=status, limit=10, offset=0)
        return [job.id for job in page]

    assert await ids(None, None) == ["b-queued", "a-done", "a-queued"]
    assert await ids("user-a", None) == ["a-done", "a-queued"]
    assert await ids(None, JobStatus.QUEUED) == ["b-queued", "a-queued"]
    assert await ids("user-a", JobStatus.QUEUED) == ["a-queued"]
    assert await ids("user-c", None) == []


async def test_list_jobs_pages_newest_first(projection_pool: AsyncConnectionPool):
    for i in range(7):
        await record_snapshot(
            projection_pool, make_snapshot(f"job-{i}", enqueued_at=T0 + timedelta(minutes=i))
        )
    # Two jobs enqueued at the same time are ordered by id, descending.
    await record_snapshot(
        projection_pool, make_snapshot("job-6b", enqueued_at=T0 + timedelta(minutes=6))
    )

    pages = []
    for offset in (0, 3, 6):
        page = await list_jobs(
            projection_pool, user_id="user-a", status=None, limit=3, offset=offset
        )
        pages.append([job.id for job in page])

    assert pages == [
        ["job-6b", "job-6", "job-5"],
        ["job-4", "job-3", "job-2"],
        ["job-1", "job-0"],
    ]


@pytest.mark.parametrize(("limit", "offset"), [(0, 0), (10, -1)], ids=["zero-limit", "negative"])
async def test_list_jobs_rejects_invalid_page(
    projection_pool: AsyncConnectionPool, limit: int, offset: int
):
    with pytest.raises(ValueError, match="limit must be at least 1"):
        await list_jobs(projection_pool, user_id=None, status=None, limit=limit, offset=offset)


async def test_recent_render_seconds_latest_first(projection_pool: AsyncConnectionPool):
    durations = {"job-0": 30.0, "job-1": 45.5, "job-2": 12.25}
    for i, (job_id, seconds) in enumerate(durations.items()):
        started_at = T0 + timedelta(hours=i)
        await record_snapshot(
            projection_pool,
            make_snapshot(
                job_id,
                status=JobStatus.COMPLETED,
                attempt=1,
                started_at=started_at,
                finished_at=started_at + timedelta(seconds=seconds),
                seq=3,
            ),
        )
    await record_snapshot(
        projection_pool,
        make_snapshot("failed", status=JobStatus.FAILED, attempt=3, started_at=T0, finished_at=T0),
    )
    await record_snapshot(
        projection_pool,
        make_snapshot(
            "manim",
            engine=Engine.MANIM,
            status=JobStatus.COMPLETED,
            started_at=T0,
            finished_at=T0 + timedelta(seconds=99),
        ),
    )

    assert await recent_render_seconds(projection_pool, Engine.STANDARD) == [12.25, 45.5, 30.0]
    assert await recent_render_seconds(projection_pool, Engine.STANDARD, limit=1) == [12.25]
    assert await recent_render_seconds(projection_pool, Engine.MANIM) == [99.0]


async def test_count_by_status_groups_keys(
    projection_pool: AsyncConnectionPool,
):
    jobs = [
        make_snapshot("a", job_type=JobType.DOUBT),
        make_snapshot("b", job_type=JobType.DOUBT),
        make_snapshot("c", job_type=JobType.DOUBT, status=JobStatus.RENDERING),
        make_snapshot("d", job_type=JobType.DAILY_CA, engine=Engine.MANIM),
    ]
    for job in jobs:
        await record_snapshot(projection_pool, job)

    assert await count_by_status(projection_pool) == {
        (Engine.STANDARD, Priority.HIGH, JobStatus.QUEUED): 2,
        (Engine.STANDARD, Priority.HIGH, JobStatus.RENDERING): 1,
        (Engine.MANIM, Priority.LOW, JobStatus.QUEUED): 1,
    }


# An unreachable database


async def test_open_pool_closed_port_raises_unavailable(closed_port_url: str):
    with pytest.raises(ProjectionUnavailable, match="127.0.0.1") as caught:
        await open_pool(closed_port_url, timeout=0.5)

    assert isinstance(caught.value.__cause__, psycopg.OperationalError)


async def test_migrate_closed_port_raises_unavailable(closed_port_url: str):
    with pytest.raises(ProjectionUnavailable, match="Connection refused") as caught:
        await migrate(closed_port_url)

    assert isinstance(caught.value.__cause__, psycopg.OperationalError)


async def test_get_job_closed_port_raises_unavailable(closed_port_url: str):
    pool = AsyncConnectionPool(closed_port_url, min_size=0, max_size=1, timeout=0.5, open=False)
    await pool.open()
    try:
        with pytest.raises(ProjectionUnavailable) as caught:
            await get_job(pool, "job-1")
    finally:
        await pool.close()

    assert isinstance(caught.value.__cause__, psycopg.OperationalError)


# The embedded server


def test_embedded_postgres_restart_keeps_data():
    data_dir = Path(tempfile.mkdtemp(prefix="videoq-pg-restart-"))
    data_dir.chmod(0o755)
    try:
        with EmbeddedPostgres(data_dir) as server:
            with psycopg.connect(server.url, autocommit=True) as conn:
                conn.execute("CREATE TABLE kept (value text)")
                conn.execute("INSERT INTO kept VALUES ('still here')")
        assert server.port is None

        with EmbeddedPostgres(data_dir) as server, psycopg.connect(server.url) as conn:
            assert conn.execute("SELECT value FROM kept").fetchall() == [("still here",)]
            assert conn.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
            assert conn.execute("SHOW unix_socket_directories").fetchone() == ("",)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
