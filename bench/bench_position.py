"""Measure queue_position latency with 100,000 queued jobs on an embedded PostgreSQL.

Run: .venv/bin/python bench/bench_position.py [--jobs 100000] [--calls 1000] [--seed 1]

The jobs are spread over both engines and all job types. Latency is measured twice: right after
COPY, when index-only scans still visit the table because the visibility map is empty, and after
VACUUM ANALYZE, as it is once autovacuum has run. The script prints p50 and p99 of sequential
calls for random jobs and for the last job of the queue, which counts the most index entries.
"""

# ruff: noqa: T201 - the printed figures are this script's result.

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from psycopg_pool import AsyncConnectionPool

from videoq.db import migrate, open_pool
from videoq.embedded_postgres import EmbeddedPostgres
from videoq.jobs import PRIORITY_BY_JOB_TYPE, PRIORITY_KEYS, Engine, JobType
from videoq.projection import count_by_status, queue_position

T0 = datetime(2026, 1, 5, tzinfo=UTC)
COPY_JOBS = """
COPY video_jobs (
    id, user_id, job_type, engine, priority, priority_key, status, attempt, max_attempts,
    enqueued_at, title, generation, seq
) FROM STDIN
"""
EXPLAIN_POSITION = """
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
SELECT count(*) FROM video_jobs
WHERE status = 'queued' AND engine = %s AND (priority_key, enqueued_at, id) < (%s, %s, %s)
"""

Job = tuple[str, Engine, int, datetime]


def make_jobs(count: int, rng: random.Random) -> list[Job]:
    """Return (id, engine, priority_key, enqueued_at) of ``count`` jobs over about a day.

    Enqueue times are whole seconds, so many jobs share one and the id breaks the tie.
    """
    jobs = []
    for i in range(count):
        job_type = rng.choice(list(JobType))
        priority_key = PRIORITY_KEYS[PRIORITY_BY_JOB_TYPE[job_type]]
        enqueued_at = T0 + timedelta(seconds=rng.randrange(86_400))
        jobs.append((f"bench-{i:07d}", rng.choice(list(Engine)), priority_key, enqueued_at))
    return jobs


async def copy_jobs(pool: AsyncConnectionPool, jobs: list[Job]) -> None:
    priority_by_key = {key: priority for priority, key in PRIORITY_KEYS.items()}
    job_type_by_key = {PRIORITY_KEYS[p]: job_type for job_type, p in PRIORITY_BY_JOB_TYPE.items()}
    async with pool.connection() as conn, conn.cursor() as cursor:
        async with cursor.copy(COPY_JOBS) as copy:
            for index, (job_id, engine, priority_key, enqueued_at) in enumerate(jobs):
                await copy.write_row(
                    (
                        job_id,
                        f"user-{index % 1000}",
                        job_type_by_key[priority_key].value,
                        engine.value,
                        priority_by_key[priority_key].value,
                        priority_key,
                        "queued",
                        0,
                        3,
                        enqueued_at,
                        f"Benchmark job {job_id}",
                        1,
                        0,
                    )
                )


async def time_positions(pool: AsyncConnectionPool, jobs: list[Job]) -> list[float]:
    """Call queue_position once per job, one call at a time, and return each latency in ms."""
    latencies = []
    for job_id, engine, priority_key, enqueued_at in jobs:
        started = time.perf_counter()
        await queue_position(
            pool, engine=engine, priority_key=priority_key, enqueued_at=enqueued_at, job_id=job_id
        )
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def last_in_queue(jobs: list[Job]) -> Job:
    """Return the job dispatched last: largest priority key, then latest enqueue time and id."""
    return max(jobs, key=lambda job: (job[2], job[3], job[0]))


def percentiles(latencies: list[float]) -> str:
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return f"p50 {cuts[49]:6.2f} ms   p99 {cuts[98]:6.2f} ms   max {max(latencies):6.2f} ms"


async def measure(pool: AsyncConnectionPool, jobs: list[Job], calls: int, rng: random.Random):
    sample = rng.sample(jobs, calls)
    last = [last_in_queue([job for job in jobs if job[1] is engine]) for engine in Engine]
    await time_positions(pool, sample[:50])  # warm the cache and the prepared statement
    print(f"  random jobs ({calls} calls):  {percentiles(await time_positions(pool, sample))}")
    worst = await time_positions(pool, last * (calls // 10))
    print(f"  last job ({len(worst)} calls):     {percentiles(worst)}")


async def run(job_count: int, calls: int, seed: int) -> None:
    rng = random.Random(seed)
    cpus = len(os.sched_getaffinity(0))
    print(f"machine: nproc {cpus}, {platform.machine()}, {_cpu_model()}")
    print(f"Python {platform.python_version()}")

    data_dir = Path(tempfile.mkdtemp(prefix="videoq-bench-pg-"))
    # As root the server runs as another user, which must be able to enter this folder.
    data_dir.chmod(0o755)
    try:
        with EmbeddedPostgres(data_dir) as server:
            await migrate(server.url)
            pool = await open_pool(server.url, min_size=1, max_size=2)
            try:
                async with pool.connection() as conn:
                    cursor = await conn.execute("SELECT version()")
                    row = await cursor.fetchone()
                    print(f"server: {row[0].split(' on ')[0]}")

                jobs = make_jobs(job_count, rng)
                started = time.perf_counter()
                await copy_jobs(pool, jobs)
                print(f"COPY of {job_count} queued jobs: {time.perf_counter() - started:.2f} s")

                print("after COPY, before VACUUM:")
                await measure(pool, jobs, calls, rng)
                await print_plan(pool, jobs)

                async with pool.connection() as conn:
                    await conn.execute("VACUUM ANALYZE video_jobs")
                print("after VACUUM ANALYZE:")
                await measure(pool, jobs, calls, rng)
                await print_plan(pool, jobs)

                started = time.perf_counter()
                await count_by_status(pool)
                elapsed_ms = (time.perf_counter() - started) * 1000
                print(f"count_by_status over {job_count} rows: {elapsed_ms:.1f} ms")
            finally:
                await pool.close()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


async def print_plan(pool: AsyncConnectionPool, jobs: list[Job]) -> None:
    job_id, engine, priority_key, enqueued_at = last_in_queue(jobs)
    async with pool.connection() as conn:
        cursor = await conn.execute(EXPLAIN_POSITION, (engine, priority_key, enqueued_at, job_id))
        plan = [row[0] for row in await cursor.fetchall()]
    print("  plan for the last job of the queue:")
    for line in plan:
        print(f"    {line}")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000, help="queued jobs to insert")
    parser.add_argument("--calls", type=int, default=1000, help="queue_position calls to time")
    parser.add_argument("--seed", type=int, default=1, help="seed of the random jobs and sample")
    args = parser.parse_args()
    asyncio.run(run(args.jobs, args.calls, args.seed))


if __name__ == "__main__":
    main()
