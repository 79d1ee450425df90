"""Scheduling order: strict priority, FIFO within a level, and a burst that cannot starve doubts."""

from __future__ import annotations

import asyncio

from tests.conftest import fake_render_command
from tests.helpers import job_request, starts, wait_until
from videoq.jobs import Engine, JobType
from videoq.temporal import new_job, start_job

# Submission order, mixed on purpose; each job's title records its place in it.
MIXED = [
    JobType.DAILY_CA,
    JobType.TOPIC_SHORT,
    JobType.DOUBT,
    JobType.DAILY_CA,
    JobType.DOUBT,
    JobType.TOPIC_SHORT,
    JobType.DAILY_CA,
    JobType.DOUBT,
    JobType.TOPIC_SHORT,
]
RANK = {JobType.DOUBT: 0, JobType.TOPIC_SHORT: 1, JobType.DAILY_CA: 2}


async def _start_blocker(client, settings, record) -> None:
    """Occupy the only slot, so that every later job waits in the task queue's backlog."""
    await start_job(client, settings, new_job(job_request(job_type=JobType.DAILY_CA)))
    await wait_until(lambda: len(starts(record)) == 1, 15, "blocker start")


async def test_scheduling_strict_priority_fifo_within_level(
    client, make_settings, worker_for, tmp_path
):
    record = tmp_path / "record.jsonl"
    settings = make_settings(
        standard_renderer="command",
        render_command=fake_render_command(record, "ok", 0.6),
        max_renders=1,
    )
    await worker_for(settings)
    await _start_blocker(client, settings, record)

    submitted = []
    for job_type in MIXED:
        job = new_job(job_request(job_type=job_type))
        await start_job(client, settings, job)
        submitted.append(job)
        await asyncio.sleep(0.12)
    await wait_until(lambda: len(starts(record)) == len(MIXED) + 1, 60, "every start")

    started_ids = [entry["job_id"] for entry in starts(record)[1:]]
    expected = [
        job.id
        for _, job in sorted(
            enumerate(submitted), key=lambda pair: (RANK[pair[1].job_type], pair[0])
        )
    ]
    assert started_ids == expected


async def test_scheduling_doubt_overtakes_burst(client, make_settings, worker_for, tmp_path):
    record = tmp_path / "record.jsonl"
    settings = make_settings(
        standard_renderer="command",
        render_command=fake_render_command(record, "ok", 0.3),
        max_renders=2,
    )
    await worker_for(settings)
    await _start_blocker(client, settings, record)
    burst = [new_job(job_request(job_type=JobType.DAILY_CA)) for _ in range(150)]
    await asyncio.gather(*(start_job(client, settings, job) for job in burst))
    await asyncio.sleep(1.0)

    doubt = new_job(job_request(job_type=JobType.DOUBT))
    await start_job(client, settings, doubt)
    await wait_until(
        lambda: doubt.id in {entry["job_id"] for entry in starts(record)}, 30, "doubt start"
    )

    ids = [entry["job_id"] for entry in starts(record)]
    # Two slots: at most the two renders running when the doubt arrived, plus one that took
    # a slot freed in the moment before it was queued, start between its submit and its start.
    burst_started_after_doubt_submit = [
        entry for entry in starts(record) if entry["time"] > doubt.enqueued_at.timestamp()
    ]
    assert ids.index(doubt.id) <= len(ids) - 1
    assert burst_started_after_doubt_submit[0]["job_id"] in (
        doubt.id,
        *(job.id for job in burst),
    )
    late = [e for e in burst_started_after_doubt_submit if e["job_id"] != doubt.id]
    assert len([e for e in late if e["time"] < starts_time(record, doubt.id)]) <= 1


def starts_time(record, job_id: str) -> float:
    return next(entry["time"] for entry in starts(record) if entry["job_id"] == job_id)


async def test_scheduling_engines_do_not_block_each_other(
    client, make_settings, worker_for, tmp_path
):
    record = tmp_path / "record.jsonl"
    settings = make_settings(
        manim_renderer="command",
        standard_renderer="command",
        render_command=fake_render_command(record, "ok", 0.3),
        max_renders=3,
        max_manim_renders=1,
    )
    await worker_for(settings)
    manim_jobs = [new_job(job_request(engine=Engine.MANIM)) for _ in range(4)]
    standard_jobs = [new_job(job_request(engine=Engine.STANDARD)) for _ in range(4)]
    handles = []
    for manim_job, standard_job in zip(manim_jobs, standard_jobs, strict=True):
        handles.append(await start_job(client, settings, manim_job))
        handles.append(await start_job(client, settings, standard_job))
        await asyncio.sleep(0.12)
    await asyncio.gather(*(handle.result() for handle in handles))

    by_engine = {"manim": [], "standard": []}
    for entry in starts(record):
        by_engine[entry["engine"]].append(entry["job_id"])
    # Submitted 120 ms apart with the same priority: FIFO within each engine's queue, while
    # the single Manim slot never held back the standard renders.
    assert by_engine["manim"] == [job.id for job in manim_jobs]
    assert by_engine["standard"] == [job.id for job in standard_jobs]
