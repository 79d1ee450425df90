"""Several worker processes on the same queues: limits per process, and a killed worker."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import httpx
import pytest

from tests.conftest import REPO, fake_render_command
from tests.helpers import job_request, pid_alive, read_record, starts, wait_until
from tests.test_render_slots import max_concurrent
from videoq.devstack import free_port
from videoq.jobs import Engine
from videoq.settings import Settings
from videoq.temporal import new_job, start_job
from workflows.video_job import VideoJobWorkflow


def settings_env(settings: Settings) -> dict[str, str]:
    env = {**os.environ, "VIDEOQ_LOG_LEVEL": "WARNING"}
    for name, value in settings.model_dump(exclude_none=True).items():
        env[f"VIDEOQ_{name.upper()}"] = str(value)
    return env


@pytest.fixture
def worker_processes():
    """Start ``python -m worker`` processes; each is killed when the test ends."""
    processes: list[subprocess.Popen] = []

    def start(settings: Settings, count: int) -> list[subprocess.Popen]:
        for _ in range(count):
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "worker"], env=settings_env(settings), cwd=REPO
                )
            )
        return processes

    yield start
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()


async def test_workers_fleet_capacity_is_sum(client, make_settings, worker_processes, tmp_path):
    record_path = tmp_path / "record.jsonl"
    settings = make_settings(
        standard_renderer="command",
        render_command=fake_render_command(record_path, "ok", 1.5),
        max_renders=2,
    )
    worker_processes(settings, 2)
    # Each worker's idle Manim poll keeps one of its two slots until the first long poll
    # expires (2 s on the dev server), so the test measures the steady state after that.
    await asyncio.sleep(3)
    jobs = [new_job(job_request()) for _ in range(10)]

    handles = [await start_job(client, settings, job) for job in jobs]
    results = await asyncio.gather(*(handle.result() for handle in handles))

    record = read_record(record_path)
    assert max_concurrent(record) == 4
    assert [result.attempts for result in results] == [1] * 10
    workers = {}
    for handle in handles:
        state = await handle.query(VideoJobWorkflow.state)
        workers.setdefault(state.worker, set()).add(handle.id)
    assert len(workers) == 2
    for worker, job_ids in workers.items():
        own = [entry for entry in record if entry["job_id"] in job_ids]
        assert max_concurrent(own) <= 2, worker
    # No job rendered twice.
    assert sorted(entry["job_id"] for entry in starts(record_path)) == sorted(j.id for j in jobs)


async def test_workers_killed_worker_job_retried_elsewhere(
    client, make_settings, worker_processes, tmp_path
):
    record_path = tmp_path / "record.jsonl"
    settings = make_settings(
        standard_renderer="command",
        render_command=fake_render_command(record_path, "slow_first", 60),
        heartbeat_timeout=3,
        retry_interval=1,
    )
    processes = worker_processes(settings, 2)
    handle = await start_job(client, settings, new_job(job_request()))
    await wait_until(lambda: len(starts(record_path)) == 1, 20, "first attempt")
    first = starts(record_path)[0]
    state = await handle.query(VideoJobWorkflow.state)
    worker_pid = int(state.worker.rsplit(":", 1)[1])
    victim = next(process for process in processes if process.pid == worker_pid)

    victim.send_signal(signal.SIGKILL)
    victim.wait()
    result = await asyncio.wait_for(handle.result(), 60)

    assert result.attempts == 2
    second = starts(record_path)[1]
    assert second["attempt"] == 2
    # Retried after the 3 s heartbeat timeout and the 1 s interval, not the 10-minute timeout.
    assert second["time"] - first["time"] < 20
    final = await handle.query(VideoJobWorkflow.state)
    assert final.worker != state.worker
    # The killed worker's renderer died with it, so the job never rendered twice at once.
    await wait_until(lambda: not pid_alive(first["pid"]), 5, "orphan renderer exit")


async def test_worker_serves_sdk_metrics(make_settings, worker_processes, tmp_path):
    port = free_port()
    settings = make_settings(worker_metrics_port=port)
    worker_processes(settings, 1)
    body = ""

    async def scrape() -> bool:
        nonlocal body
        try:
            async with httpx.AsyncClient() as http:
                body = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
        except httpx.TransportError:
            return False
        return "temporal_worker_task_slots_available" in body

    for _ in range(100):
        if await scrape():
            break
        await asyncio.sleep(0.1)
    assert "temporal_worker_task_slots_available" in body
    assert settings.render_task_queue(Engine.MANIM) in body


async def test_workers_split_roles_share_work(client, make_settings, worker_processes, tmp_path):
    record_path = tmp_path / "record.jsonl"
    settings = make_settings(
        standard_renderer="command",
        manim_renderer="command",
        render_command=fake_render_command(record_path, "ok", 0.5),
        max_renders=2,
        max_manim_renders=1,
    )
    worker_processes(settings.model_copy(update={"worker_role": "workflows"}), 1)
    worker_processes(settings.model_copy(update={"worker_role": "renders"}), 2)
    jobs = [new_job(job_request(engine=engine)) for engine in [Engine.STANDARD, Engine.MANIM] * 4]

    handles = [await start_job(client, settings, job) for job in jobs]
    results = await asyncio.wait_for(asyncio.gather(*(handle.result() for handle in handles)), 60)

    assert [result.attempts for result in results] == [1] * 8
    rendered_by = set()
    for handle in handles:
        state = await handle.query(VideoJobWorkflow.state)
        rendered_by.add(state.worker)
    # Both render processes took jobs, and the workflow process rendered none.
    assert len(rendered_by) == 2
    record = read_record(record_path)
    assert max_concurrent(record) <= 4
