"""Replay recorded histories, so that a workflow change that breaks running jobs fails here.

The histories in tests/histories were recorded from real runs on a dev server: a completed
job, a job that failed after its attempts, and a job cancelled while rendering. Record new
ones when a change is meant to be incompatible, and keep the old ones while such runs exist.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows.video_job import VideoJobWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


@pytest.mark.parametrize("path", HISTORIES, ids=lambda path: path.stem)
async def test_replay_recorded_history(path):
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    replayer = Replayer(workflows=[VideoJobWorkflow], data_converter=pydantic_data_converter)

    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)

    assert result.replay_failure is None


def test_replay_histories_present():
    assert [path.stem for path in HISTORIES] == [
        "video_job_cancelled",
        "video_job_completed",
        "video_job_failed",
    ]
