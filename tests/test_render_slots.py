"""Render slot limits, measured from the renderer's own record of starts and finishes."""

from __future__ import annotations

import asyncio

from tests.conftest import fake_render_command
from tests.helpers import job_request, read_record, starts, wait_until
from videoq import slots as slots_module
from videoq.jobs import Engine, JobType
from videoq.slots import Backlog, RenderSlots, SlotLimits
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


async def test_slots_ended_render_frees_slot():
    slots = RenderSlots(lambda: SlotLimits(total=2, manim=1))
    manim, standard = slots.supplier(Engine.MANIM), slots.supplier(Engine.STANDARD)
    await manim.reserve_slot(None)
    await standard.reserve_slot(None)
    manim.mark_slot_used(None)
    assert standard.try_reserve_slot(None) is None

    slots.render_ended(Engine.MANIM)
    # The Manim renderer has exited: its slot serves a new poll, of either engine, while the
    # SDK still holds the permit.
    assert manim.try_reserve_slot(None) is not None
    assert standard.try_reserve_slot(None) is None
    manim.release_slot(_Used())
    assert slots.held() == {Engine.MANIM: 1, Engine.STANDARD: 1}
    assert standard.try_reserve_slot(None) is None


async def test_slots_ended_render_wakes_waiter():
    slots = RenderSlots(lambda: SlotLimits(total=1, manim=1))
    standard = slots.supplier(Engine.STANDARD)
    await standard.reserve_slot(None)
    standard.mark_slot_used(None)
    waiting = asyncio.create_task(standard.reserve_slot(None))
    await asyncio.sleep(0.05)
    assert not waiting.done()

    slots.render_ended(Engine.STANDARD)
    await asyncio.wait_for(waiting, 0.5)  # well inside the 1 s recheck
    standard.release_slot(_Used())
    assert slots.held() == {Engine.MANIM: 0, Engine.STANDARD: 1}


async def test_slots_release_without_end_is_safe():
    slots = RenderSlots(lambda: SlotLimits(total=2, manim=2))
    standard = slots.supplier(Engine.STANDARD)
    await standard.reserve_slot(None)
    await standard.reserve_slot(None)
    slots.render_ended(Engine.STANDARD)  # the first render ended
    # The second activity was cancelled while its renderer ran and is released first.
    standard.release_slot(_Used())
    assert slots.held() == {Engine.MANIM: 0, Engine.STANDARD: 1}
    assert standard.try_reserve_slot(None) is not None
    assert standard.try_reserve_slot(None) is None
    standard.release_slot(_Used())  # the first activity's permit
    assert slots.held() == {Engine.MANIM: 0, Engine.STANDARD: 1}


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


async def test_slots_idle_engine_yields_to_backlog():
    slots = RenderSlots(lambda: SlotLimits(total=3, manim=3))
    manim, standard = slots.supplier(Engine.MANIM), slots.supplier(Engine.STANDARD)
    slots.observe_backlog({Engine.MANIM: Backlog({}), Engine.STANDARD: Backlog({5: 10})})

    assert manim.try_reserve_slot(None) is None
    for _ in range(3):
        assert standard.try_reserve_slot(None) is not None
    assert slots.held() == {Engine.MANIM: 0, Engine.STANDARD: 3}


async def test_slots_urgent_backlog_takes_freed_slot():
    slots = RenderSlots(lambda: SlotLimits(total=2, manim=1))
    manim, standard = slots.supplier(Engine.MANIM), slots.supplier(Engine.STANDARD)
    await standard.reserve_slot(None)
    await standard.reserve_slot(None)
    slots.observe_backlog({Engine.MANIM: Backlog({1: 1}), Engine.STANDARD: Backlog({5: 100})})

    standard.release_slot(_Used())
    # The Manim doubt outranks the standard daily_ca backlog, so standard leaves it the slot.
    assert standard.try_reserve_slot(None) is None
    assert manim.try_reserve_slot(None) is not None


async def test_slots_equal_backlogs_share_slots():
    slots = RenderSlots(lambda: SlotLimits(total=2, manim=2))
    manim, standard = slots.supplier(Engine.MANIM), slots.supplier(Engine.STANDARD)
    slots.observe_backlog({Engine.MANIM: Backlog({3: 5}), Engine.STANDARD: Backlog({3: 5})})

    assert manim.try_reserve_slot(None) is not None
    assert standard.try_reserve_slot(None) is not None


async def test_slots_running_poll_covers_backlog():
    slots = RenderSlots(lambda: SlotLimits(total=2, manim=1))
    manim, standard = slots.supplier(Engine.MANIM), slots.supplier(Engine.STANDARD)
    await manim.reserve_slot(None)  # its poll will take the one waiting Manim task
    slots.observe_backlog({Engine.MANIM: Backlog({1: 1}), Engine.STANDARD: Backlog({5: 3})})

    assert standard.try_reserve_slot(None) is not None


async def test_slots_unknown_backlog_restores_poll_rule():
    slots = RenderSlots(lambda: SlotLimits(total=1, manim=1))
    manim = slots.supplier(Engine.MANIM)
    slots.observe_backlog({Engine.MANIM: Backlog({}), Engine.STANDARD: Backlog({5: 10})})
    assert manim.try_reserve_slot(None) is None

    slots.observe_backlog(None)
    assert manim.try_reserve_slot(None) is not None


async def test_slots_stale_backlog_counts_as_unknown(monkeypatch):
    monkeypatch.setattr(slots_module, "BACKLOG_MAX_AGE_SECONDS", 0.05)
    slots = RenderSlots(lambda: SlotLimits(total=1, manim=1))
    manim = slots.supplier(Engine.MANIM)
    slots.observe_backlog({Engine.MANIM: Backlog({}), Engine.STANDARD: Backlog({5: 10})})
    assert manim.try_reserve_slot(None) is None

    await asyncio.sleep(0.1)
    assert manim.try_reserve_slot(None) is not None


async def test_slots_manim_doubt_overtakes_standard(client, make_settings, worker_for, tmp_path):
    record_path = tmp_path / "record.jsonl"
    settings = make_settings(
        manim_renderer="command",
        standard_renderer="command",
        render_command=fake_render_command(record_path, "ok", 5),
        max_renders=2,
        max_manim_renders=1,
    )
    await worker_for(settings)
    # Past the first long poll of the idle Manim queue, whose slot then returns to the budget.
    await asyncio.sleep(2.5)
    daily = [new_job(job_request(job_type=JobType.DAILY_CA)) for _ in range(4)]
    handles = [await start_job(client, settings, daily[0])]
    await wait_until(lambda: len(starts(record_path)) >= 1, 15, "the first standard render")
    # A second later, so that the two standard renders end one at a time. They last 5 s, so
    # that the doubt's backlog is known before the first one ends even if an idle Manim poll
    # delays the second start by up to 2 s.
    await asyncio.sleep(1.0)
    handles += [await start_job(client, settings, job) for job in daily[1:]]
    await wait_until(lambda: len(starts(record_path)) >= 2, 15, "two standard renders")
    doubt = new_job(job_request(job_type=JobType.DOUBT, engine=Engine.MANIM))
    handles.append(await start_job(client, settings, doubt))
    await asyncio.gather(*(handle.result() for handle in handles))

    order = [entry["job_id"] for entry in starts(record_path)]
    # Both slots rendered standard jobs while the Manim queue was idle.
    assert order[0] == daily[0].id
    assert order[1] in {job.id for job in daily[1:]}
    # The Manim doubt took the first slot that freed, ahead of the waiting daily_ca jobs.
    assert order[2] == doubt.id


class _Used:
    """Stands in for the SDK's release context of a slot that ran a task."""

    slot_info = object()
