"""Per-user fairness within a priority level, on a dev server with fairness enabled."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from tests.conftest import fake_render_command
from tests.helpers import job_request, starts, wait_until
from videoq.binaries import dev_server_config_args, temporal_cli
from videoq.jobs import JobType
from videoq.settings import Settings
from videoq.temporal import new_job, start_job
from worker import running_workers


@pytest.fixture(scope="module")
async def fair_env():
    env = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=temporal_cli(),
        dev_server_extra_args=dev_server_config_args(fairness=True),
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.mark.parametrize(("fairness", "burst_ahead"), [("user", False), ("off", True)])
async def test_fairness_burst_shares_level(fair_env, tmp_path, fairness, burst_ahead):
    record = tmp_path / "record.jsonl"
    settings = Settings(
        temporal_address=fair_env.client.service_client.config.target_host,
        task_queue_prefix=f"fair-{fairness}-{tmp_path.name[-8:]}",
        output_dir=tmp_path / "videos",
        peak_windows="",
        standard_renderer="command",
        render_command=fake_render_command(record, "ok", 0.4),
        max_renders=1,
        fairness=fairness,
    )
    client = fair_env.client
    async with running_workers(client, settings):
        blocker = new_job(
            job_request(job_type=JobType.DAILY_CA, user_id="blocker", title="blocker")
        )
        await start_job(client, settings, blocker)
        await wait_until(lambda: len(starts(record)) == 1, 15, "blocker start")
        burst = [
            new_job(job_request(job_type=JobType.TOPIC_SHORT, user_id="busy")) for _ in range(8)
        ]
        for job in burst:
            await start_job(client, settings, job)
            await asyncio.sleep(0.05)
        other = new_job(job_request(job_type=JobType.TOPIC_SHORT, user_id="other"))
        await start_job(client, settings, other)
        await wait_until(lambda: len(starts(record)) == 10, 60, "every start")

    order = [entry["job_id"] for entry in starts(record)][1:]
    place = order.index(other.id)
    if burst_ahead:
        assert place == 8  # plain FIFO: behind all eight of the busy user's jobs
    else:
        assert place <= 2  # fairness: within the first turns, not behind the whole burst
