"""Test environments: a real Temporal dev server for the session, a worker per test."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from videoq.binaries import dev_server_config_args, temporal_cli
from videoq.settings import Settings
from worker import running_workers

pytest_plugins = ["tests.fixtures_postgres", "tests.fixtures_api"]

REPO = Path(__file__).resolve().parent.parent
FAKE_RENDERER = REPO / "tests" / "fake_renderer.py"


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=temporal_cli(),
        dev_server_extra_args=dev_server_config_args(),
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture
def client(temporal_env: WorkflowEnvironment) -> Client:
    return temporal_env.client


@pytest.fixture
def make_settings(tmp_path: Path, temporal_env: WorkflowEnvironment):
    """Build settings on a uuid task-queue prefix and a temporary output folder."""
    prefix = f"test-{uuid.uuid4().hex[:12]}"

    def make(**overrides) -> Settings:
        values = {
            "temporal_address": temporal_env.client.service_client.config.target_host,
            "task_queue_prefix": prefix,
            "output_dir": tmp_path / "videos",
            # No peak window, so limits do not depend on the hour the tests run at.
            "peak_windows": "",
            **overrides,
        }
        return Settings(**values)

    return make


def fake_render_command(record: Path, behaviour: str, seconds: float = 0.0) -> str:
    """Command-renderer template running tests/fake_renderer.py with every placeholder."""
    return (
        f"{sys.executable} {FAKE_RENDERER} --record {record} --behaviour {behaviour} "
        f"--seconds {seconds} --job-id {{job_id}} --job-type {{job_type}} --engine {{engine}} "
        f"--priority {{priority}} --attempt {{attempt}} --input {{input}} --output {{output}}"
    )


@pytest.fixture
async def worker_for(client: Client):
    """Start this process's workers for given settings; they stop when the test ends."""
    stack = []

    async def start(settings: Settings, pool=None):
        context = running_workers(client, settings, pool)
        slots = await context.__aenter__()
        stack.append(context)
        return slots

    yield start
    for context in reversed(stack):
        await context.__aexit__(None, None, None)


_exit_status = 0


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    global _exit_status
    _exit_status = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    # A process that used the Temporal client can abort in PyGILState_Release at interpreter
    # exit (https://github.com/temporalio/sdk-python/issues/300), turning a green run into exit
    # code 134. The summary is printed by now, so leave with pytest's own status.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_exit_status)
