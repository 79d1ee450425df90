"""Render slots: one budget shared by the Manim and standard activity workers of a process."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass

from temporalio.worker import (
    CustomSlotSupplier,
    SlotMarkUsedContext,
    SlotPermit,
    SlotReleaseContext,
    SlotReserveContext,
)

from videoq.jobs import Engine

# How often a waiting reservation re-reads the limits, so that a raised limit (peak hours)
# takes effect without a release to wake it.
RECHECK_SECONDS = 1.0


@dataclass(frozen=True)
class SlotLimits:
    total: int
    manim: int


class RenderSlots:
    """Counts render slots per engine and hands out permits within the current limits.

    A slot counts from its reservation, which the SDK makes before it polls, until its release.
    Each activity worker should poll with one poller, so that an idle queue keeps at most one
    reserved slot.
    """

    def __init__(self, limits: Callable[[], SlotLimits]) -> None:
        self._limits = limits
        self._lock = threading.Lock()
        self._held = {Engine.MANIM: 0, Engine.STANDARD: 0}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._released: asyncio.Event | None = None

    def supplier(self, engine: Engine) -> CustomSlotSupplier:
        return _EngineSlotSupplier(self, engine)

    def limits(self) -> SlotLimits:
        return self._limits()

    def held(self) -> dict[Engine, int]:
        with self._lock:
            return dict(self._held)

    def _try_take(self, engine: Engine) -> bool:
        limits = self._limits()
        with self._lock:
            if sum(self._held.values()) >= limits.total:
                return False
            if engine is Engine.MANIM and self._held[Engine.MANIM] >= limits.manim:
                return False
            self._held[engine] += 1
            return True

    async def _take(self, engine: Engine) -> None:
        if self._released is None:
            self._loop = asyncio.get_running_loop()
            self._released = asyncio.Event()
        while True:
            # Clear before checking, so that a release between the check and the wait still
            # wakes this reservation.
            self._released.clear()
            if self._try_take(engine):
                return
            try:
                await asyncio.wait_for(self._released.wait(), RECHECK_SECONDS)
            except TimeoutError:
                pass

    def _give_back(self, engine: Engine) -> None:
        # The SDK calls this from a thread other than the event loop's.
        with self._lock:
            self._held[engine] -= 1
        if self._loop is not None and self._released is not None:
            self._loop.call_soon_threadsafe(self._released.set)


class _EngineSlotSupplier(CustomSlotSupplier):
    def __init__(self, slots: RenderSlots, engine: Engine) -> None:
        self._slots = slots
        self._engine = engine

    async def reserve_slot(self, ctx: SlotReserveContext) -> SlotPermit:
        await self._slots._take(self._engine)
        return SlotPermit()

    def try_reserve_slot(self, ctx: SlotReserveContext) -> SlotPermit | None:
        return SlotPermit() if self._slots._try_take(self._engine) else None

    def mark_slot_used(self, ctx: SlotMarkUsedContext) -> None:
        pass

    def release_slot(self, ctx: SlotReleaseContext) -> None:
        self._slots._give_back(self._engine)
