"""Workflow task slots: one for the workflow task queue's polls, the rest for sticky polls."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass

import pytest

from videoq.workflow_slots import WorkflowTaskSlots


@dataclass
class _Reserve:
    """Stands in for the SDK's reservation context."""

    is_sticky: bool


@dataclass
class _Release:
    """Stands in for the SDK's release context."""

    permit: object
    slot_info: object = None


NEW_JOBS = _Reserve(is_sticky=False)
STICKY = _Reserve(is_sticky=True)


def test_workflow_slots_one_for_new_jobs():
    slots = WorkflowTaskSlots(sticky_slots=3)

    assert slots.try_reserve_slot(NEW_JOBS) is not None
    assert slots.try_reserve_slot(NEW_JOBS) is None
    assert slots.held() == (1, 0)


def test_workflow_slots_sticky_pool_apart():
    slots = WorkflowTaskSlots(sticky_slots=2)
    slots.try_reserve_slot(NEW_JOBS)

    assert slots.try_reserve_slot(STICKY) is not None
    assert slots.try_reserve_slot(STICKY) is not None
    assert slots.try_reserve_slot(STICKY) is None
    assert slots.held() == (1, 2)


async def test_workflow_slots_release_wakes_same_pool():
    slots = WorkflowTaskSlots(sticky_slots=1)
    first = await slots.reserve_slot(NEW_JOBS)
    sticky = await slots.reserve_slot(STICKY)
    waiting = asyncio.create_task(slots.reserve_slot(NEW_JOBS))
    await asyncio.sleep(0.05)
    assert not waiting.done()

    # A sticky release leaves the new-job waiter waiting.
    await asyncio.to_thread(slots.release_slot, _Release(sticky))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    # The SDK releases from another thread; the waiter wakes well inside the 1 s recheck.
    await asyncio.to_thread(slots.release_slot, _Release(first))
    await asyncio.wait_for(waiting, 0.5)
    assert slots.held() == (1, 0)


def test_workflow_slots_need_a_sticky_slot():
    with pytest.raises(ValueError, match="sticky_slots must be at least 1"):
        WorkflowTaskSlots(sticky_slots=0)


def test_workflow_slots_count_across_threads():
    slots = WorkflowTaskSlots(sticky_slots=5)
    permits = [slots.try_reserve_slot(STICKY) for _ in range(5)]
    threads = [
        threading.Thread(target=slots.release_slot, args=(_Release(permit),))
        for permit in permits
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert slots.held() == (0, 0)
