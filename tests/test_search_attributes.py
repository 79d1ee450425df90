"""Search attributes: set at start, kept current by the workflow, registered idempotently."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from tests.conftest import fake_render_command
from tests.helpers import job_request
from videoq import search_attributes
from videoq.binaries import dev_server_config_args, temporal_cli
from videoq.jobs import Engine, JobType
from videoq.temporal import new_job, start_job


async def _find(client, query: str) -> set[str]:
    return {execution.id async for execution in client.list_workflows(query)}


async def test_search_attributes_follow_job(client, make_settings, worker_for, tmp_path):
    settings = make_settings(
        manim_renderer="command",
        render_command=fake_render_command(tmp_path / "record.jsonl", "ok", 0.1),
    )
    await worker_for(settings)
    job = new_job(job_request(job_type=JobType.TOPIC_SHORT, engine=Engine.MANIM, user_id="u-42"))
    await (await start_job(client, settings, job)).result()

    query = (
        'VideoqStatus = "completed" AND VideoqEngine = "manim" AND VideoqPriority = "medium" '
        f'AND VideoqJobType = "topic_short" AND VideoqUserId = "u-42" AND WorkflowId = "{job.id}"'
    )
    found: set[str] = set()

    async def visible() -> bool:
        found.update(await _find(client, query))
        return job.id in found

    for _ in range(100):
        if await visible():
            break
        await asyncio.sleep(0.1)
    assert found == {job.id}


async def test_search_attributes_register_is_idempotent():
    env = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter, dev_server_existing_path=temporal_cli()
    )
    try:
        first = await search_attributes.register(env.client, "default")
        second = await search_attributes.register(env.client, "default")
    finally:
        await env.shutdown()
    assert first == [key.name for key in search_attributes.ALL_KEYS]
    assert second == []


@pytest.mark.parametrize("key", search_attributes.ALL_KEYS, ids=lambda key: key.name)
def test_search_attributes_registered_on_dev_server(key):
    assert f"{key.name}=Keyword" in dev_server_config_args()
