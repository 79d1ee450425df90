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

    The SDK reserves a slot before each poll, and an idle poll keeps its slot until the
    server's long poll expires. So a slot counts from its reservation until its release, each
    activity worker polls with one poller, and the last free slot goes to an engine whose
    queue is busy rather than to one whose last poll came back empty.

    NOTE: a slot reserved by an idle poll before the other queue got busy stays stranded until
    that poll expires (2 s with the long-poll setting of ``videoq.binaries``), most visibly
    right after a worker starts.
    """

    def __init__(self, limits: Callable[[], SlotLimits]) -> None:
        self._limits = limits
        self._lock = threading.Lock()
        self._held = dict.fromkeys(Engine, 0)
        self._waiting = dict.fromkeys(Engine, 0)
        # True once a poll of that engine's queue returned no task; False once one returned a
        # task. Only the arbitration of the last free slot reads it.
        self._idle = dict.fromkeys(Engine, False)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._released: asyncio.Event | None = None

    def supplier(self, engine: Engine) -> CustomSlotSupplier:
        return _EngineSlotSupplier(self, engine)

    def limits(self) -> SlotLimits:
        return self._limits()

    def held(self) -> dict[Engine, int]:
        with self._lock:
            return dict(self._held)

    def _fits(self, engine: Engine, limits: SlotLimits) -> bool:
        if sum(self._held.values()) >= limits.total:
            return False
        return engine is not Engine.MANIM or self._held[Engine.MANIM] < limits.manim

    def _try_take(self, engine: Engine) -> bool:
        limits = self._limits()
        with self._lock:
            if not self._fits(engine, limits):
                return False
            other = Engine.STANDARD if engine is Engine.MANIM else Engine.MANIM
            last_slot = limits.total - sum(self._held.values()) == 1
            if (
                last_slot
                and self._idle[engine]
                and not self._idle[other]
                and self._waiting[other]
                and self._fits(other, limits)
            ):
                return False  # leave it to the busy queue's waiting poller
            self._held[engine] += 1
            return True

    async def _take(self, engine: Engine) -> None:
        if self._released is None:
            self._loop = asyncio.get_running_loop()
            self._released = asyncio.Event()
        with self._lock:
            self._waiting[engine] += 1
        try:
            while True:
                # Clear before checking, so that a release between the check and the wait
                # still wakes this reservation.
                self._released.clear()
                if self._try_take(engine):
                    return
                try:
                    await asyncio.wait_for(self._released.wait(), RECHECK_SECONDS)
                except TimeoutError:
                    pass
        finally:
            with self._lock:
                self._waiting[engine] -= 1

    def _mark_used(self, engine: Engine) -> None:
        with self._lock:
            self._idle[engine] = False

    def _give_back(self, engine: Engine, used: bool) -> None:
        # The SDK calls this from a thread other than the event loop's.
        with self._lock:
            self._held[engine] -= 1
            if not used:
                self._idle[engine] = True
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
        self._slots._mark_used(self._engine)

    def release_slot(self, ctx: SlotReleaseContext) -> None:
        self._slots._give_back(self._engine, used=ctx is not None and ctx.slot_info is not None)
