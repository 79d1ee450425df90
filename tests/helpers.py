"""Helpers shared by the tests: reading the fake renderer's record, waiting on conditions."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from videoq.jobs import Engine, JobContent, JobRequest, JobType


def read_record(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def starts(path: Path) -> list[dict]:
    return [entry for entry in read_record(path) if entry["event"] == "start"]


async def wait_until(check: Callable[[], bool], timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or check}")
        await asyncio.sleep(0.05)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still passes kill(0), so it counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as file:
            return file.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def job_request(
    job_type: JobType = JobType.DOUBT,
    engine: Engine = Engine.STANDARD,
    user_id: str = "student-1",
    title: str = "Why is the sky blue?",
) -> JobRequest:
    return JobRequest(
        job_type=job_type,
        engine=engine,
        user_id=user_id,
        content=JobContent(
            title=title,
            text="Air molecules scatter short blue wavelengths far more than red ones.",
            steps=["Sunlight holds every colour", "Blue light scatters the most"],
        ),
    )
