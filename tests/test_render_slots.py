"""Render slot limits, measured from the renderer's own record of starts and finishes."""

from __future__ import annotations

import asyncio

from tests.conftest import fake_render_command
from tests.helpers import job_request, read_record
from videoq.jobs import Engine, JobType
from videoq.slots import RenderSlots, SlotLimits
from videoq.temporal import new_job, start_job


def max_concurrent(record: list[dict], engine: str | None = None) -> int:
    events = sorted(
        (entry["time"], 1 if entry["event"] == "start" else -1)
        for entry in record
        if engine is None or entry["engine"] == engine
    )
    running = peak = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    return peak


async def test_slots_cap_renders_per_process(client, make_settings, worker_for, tmp_path):
    record_path = tmp_path / "record.jsonl"
    command = fake_render_command(record_path, "ok", 1.5)
    settings = make_settings(
        manim_renderer="command", standard_renderer="command", render_command=command
    )
    await worker_for(settings)
    jobs = [
        new_job(job_request(job_type=JobType.TOPIC_SHORT, engine=engine))
        for engine in (Engine.MANIM, Engine.STANDARD)
        for _ in range(12)
    ]

    handles = [await start_job(client, settings, job) for job in jobs]
    await asyncio.gather(*(handle.result() for handle in handles))

    record = read_record(record_path)
    assert len([entry for entry in record if entry["event"] == "finish"]) == 24
    assert max_concurrent(record, "manim") == 4
    assert max_concurrent(record) <= 10
    # The cap is a ceiling, not a throttle: with both queues busy the process ran near it.
    assert max_concurrent(record) >= 8


async def test_slots_raised_limit_wakes_waiting_reservation():
    limits = SlotLimits(total=1, manim=1)
    slots = RenderSlots(lambda: limits)
    standard = slots.supplier(Engine.STANDARD)
    await standard.reserve_slot(None)

    waiting = asyncio.create_task(standard.reserve_slot(None))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    limits = SlotLimits(total=2, manim=1)
    await asyncio.wait_for(waiting, 3)

    assert slots.held() == {Engine.MANIM: 0, Engine.STANDARD: 2}


async def test_slots_manim_cap_leaves_room_for_standard():
    slots = RenderSlots(lambda: SlotLimits(total=3, manim=1))
    manim, standard = slots.supplier(Engine.MANIM), slots.supplier(Engine.STANDARD)
    await manim.reserve_slot(None)
    assert manim.try_reserve_slot(None) is None
    assert standard.try_reserve_slot(None) is not None
    assert standard.try_reserve_slot(None) is not None
    assert standard.try_reserve_slot(None) is None

    manim.release_slot(None)
    assert standard.try_reserve_slot(None) is not None


async def test_slots_last_slot_goes_to_busy_queue():
    slots = RenderSlots(lambda: SlotLimits(total=2, manim=2))
    manim, standard = slots.supplier(Engine.MANIM), slots.supplier(Engine.STANDARD)
    # The Manim queue's last poll came back empty; the standard queue keeps getting tasks.
    await manim.reserve_slot(None)
    manim.release_slot(None)
    await standard.reserve_slot(None)
    await standard.reserve_slot(None)
    waiting = asyncio.create_task(standard.reserve_slot(None))
    await asyncio.sleep(0.05)

    standard.release_slot(_Used())
    assert manim.try_reserve_slot(None) is None
    await asyncio.wait_for(waiting, 3)
    assert slots.held() == {Engine.MANIM: 0, Engine.STANDARD: 2}


async def test_slots_idle_queue_takes_unwanted_slot():
    slots = RenderSlots(lambda: SlotLimits(total=1, manim=1))
    manim = slots.supplier(Engine.MANIM)
    await manim.reserve_slot(None)
    manim.release_slot(None)
    assert manim.try_reserve_slot(None) is not None


class _Used:
    """Stands in for the SDK's release context of a slot that ran a task."""

    slot_info = object()
