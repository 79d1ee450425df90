"""Measure POST /v1/jobs latency at a steady request rate over loopback.

Run: .venv/bin/python bench/bench_submit.py [--rate 20] [--seconds 30] [--warmup 20]

The script starts its own stack: a Temporal dev server, an embedded PostgreSQL with the
projection schema, and the API under uvicorn in a child process on a free port. No render
worker runs, so the jobs stay queued and each submission counts a growing queue. Requests are
sent open-loop: request i leaves at i / rate seconds whatever the earlier ones do, so a slow
response does not lower the rate. The script prints p50, p90, p99 and max latency in ms of the
measured requests, after the warm-up ones.
"""

# ruff: noqa: T201 - the printed figures are this script's result.

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from fastapi import FastAPI
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from api.auth import issue_token
from videoq.binaries import dev_server_config_args, temporal_cli
from videoq.db import migrate
from videoq.embedded_postgres import EmbeddedPostgres, find_free_port
from videoq.settings import Settings

REPO = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
TARGET_P99_MS = 150.0
SERVER_START_TIMEOUT_SECONDS = 30.0
JOB_MIX = [
    ("doubt", "manim"),
    ("doubt", "standard"),
    ("topic_short", "standard"),
    ("topic_short", "manim"),
    ("daily_ca", "standard"),
]


def app_from_environment() -> FastAPI:
    """Build the app of the child process, a uvicorn factory, from VIDEOQ_* variables."""
    return create_app(Settings())


def job_body(index: int) -> dict:
    job_type, engine = JOB_MIX[index % len(JOB_MIX)]
    return {
        "job_type": job_type,
        "engine": engine,
        "content": {
            "title": f"Benchmark job {index}",
            "text": "Air scatters short blue wavelengths far more than red ones.",
            "steps": ["Sunlight holds every colour", "Blue light scatters the most"],
        },
    }


def start_api(environment: dict[str, str], port: int, log_path: Path) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.bench_submit:app_from_environment",
        "--factory",
        "--host",
        HOST,
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    # The child keeps its own copy of the log's file descriptor.
    with log_path.open("wb") as log:
        return subprocess.Popen(
            command, cwd=REPO, env={**os.environ, **environment}, stdout=log, stderr=log
        )


async def wait_until_healthy(http: httpx.AsyncClient, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the API exited with code {process.returncode} while starting")
        try:
            if (await http.get("/healthz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError(f"the API was not healthy within {SERVER_START_TIMEOUT_SECONDS} s")


async def send_at_rate(
    http: httpx.AsyncClient, headers: dict[str, str], rate: float, count: int, first_index: int
) -> tuple[list[float], dict[int, int]]:
    """Send ``count`` submissions, one every 1 / rate s; return latencies (ms) and status counts."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    start = time.perf_counter()

    async def one(index: int) -> None:
        await asyncio.sleep(max(0.0, start + index / rate - time.perf_counter()))
        sent = time.perf_counter()
        response = await http.post("/v1/jobs", json=job_body(first_index + index), headers=headers)
        latencies.append((time.perf_counter() - sent) * 1000)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

    await asyncio.gather(*(one(index) for index in range(count)))
    return latencies, statuses


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, round(fraction * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


async def run(rate: float, seconds: float, warmup: int) -> int:
    data_dir = Path(tempfile.mkdtemp(prefix="videoq-bench-"))
    data_dir.chmod(0o755)  # a root process runs PostgreSQL as another user, which must enter it
    postgres = EmbeddedPostgres(data_dir)
    postgres.start()
    env = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=temporal_cli(),
        dev_server_extra_args=dev_server_config_args(),
    )
    process = None
    try:
        await migrate(postgres.url)
        secret = secrets.token_urlsafe(48)
        port = find_free_port(HOST)
        environment = {
            "VIDEOQ_TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
            "VIDEOQ_DATABASE_URL": postgres.url,
            "VIDEOQ_TASK_QUEUE_PREFIX": f"bench-{uuid.uuid4().hex[:8]}",
            "VIDEOQ_JWT_SECRET": secret,
            "VIDEOQ_OUTPUT_DIR": str(data_dir / "videos"),
        }
        process = start_api(environment, port, data_dir / "api.log")
        headers = {"Authorization": f"Bearer {issue_token(secret, 'bench-user')}"}
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
        async with httpx.AsyncClient(
            base_url=f"http://{HOST}:{port}", limits=limits, timeout=30.0
        ) as http:
            await wait_until_healthy(http, process)
            await send_at_rate(http, headers, rate, warmup, first_index=0)
            count = round(rate * seconds)
            began = time.perf_counter()
            latencies, statuses = await send_at_rate(http, headers, rate, count, warmup)
            elapsed = time.perf_counter() - began

        p99 = percentile(latencies, 0.99)
        print(f"POST /v1/jobs, {count} requests at {rate:g}/s over {elapsed:.1f} s, loopback")
        print(f"status codes: {dict(sorted(statuses.items()))}")
        print(
            f"latency ms: p50 {statistics.median(latencies):.1f}, "
            f"p90 {percentile(latencies, 0.90):.1f}, p99 {p99:.1f}, max {max(latencies):.1f}"
        )
        print(
            f"target p99 <= {TARGET_P99_MS:.0f} ms: {'met' if p99 <= TARGET_P99_MS else 'MISSED'}"
        )
        print(
            f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python "
            f"{platform.python_version()}; API, Temporal dev server (in-memory), PostgreSQL and "
            "this client share it"
        )
        ok = statuses.get(202, 0) == count
        return 0 if ok and p99 <= TARGET_P99_MS else 1
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        await env.shutdown()
        postgres.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=20.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=30.0, help="measured duration, s")
    parser.add_argument(
        "--warmup", type=int, default=20, help="requests sent first and left out of the figures"
    )
    args = parser.parse_args()
    code = asyncio.run(run(args.rate, args.seconds, args.warmup))
    sys.stdout.flush()
    # A process that used the Temporal client can abort at interpreter exit in
    # PyGILState_Release (https://github.com/temporalio/sdk-python/issues/300).
    os._exit(code)


if __name__ == "__main__":
    main()
