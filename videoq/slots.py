"""Render slots: one budget shared by the Manim and standard activity workers of a process."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from temporalio.worker import (
    CustomSlotSupplier,
    SlotMarkUsedContext,
    SlotPermit,
    SlotReleaseContext,
    SlotReserveContext,
)

from videoq.jobs import Engine

# How often a waiting reservation tries again without a release to wake it, so that a raised
# limit (peak hours) takes effect.
RECHECK_SECONDS = 1.0
# Backlogs older than this count as unknown, so that a watcher that stopped reporting cannot
# keep an engine yielding slots to work that is gone.
BACKLOG_MAX_AGE_SECONDS = 5.0


T = TypeVar("T")


async def wait_for_slot(released: asyncio.Event, try_take: Callable[[], T]) -> T:
    """Call ``try_take`` until it returns a true value, waiting for ``released`` in between.

    The event is cleared before each try, so that a release between the try and the wait still
    wakes the caller. Without a release, the next try comes after RECHECK_SECONDS.
    """
    while True:
        released.clear()
        permit = try_take()
        if permit:
            return permit
        try:
            await asyncio.wait_for(released.wait(), RECHECK_SECONDS)
        except TimeoutError:
            pass


@dataclass(frozen=True)
class SlotLimits:
    total: int
    manim: int

    def for_engine(self, engine: Engine) -> int:
        """Return the most renders of ``engine`` one worker runs at once under these limits.

        Standard renders have no cap of their own: they may take every slot of the budget.
        """
        return self.manim if engine is Engine.MANIM else self.total


@dataclass(frozen=True)
class Backlog:
    """Tasks of one render task queue that no poll has taken yet, counted by priority key."""

    by_priority_key: dict[int, int]

    @property
    def total(self) -> int:
        return sum(self.by_priority_key.values())

    @property
    def best_priority_key(self) -> int | None:
        """The lowest (most urgent) priority key with waiting tasks, or None."""
        waiting = [key for key, count in self.by_priority_key.items() if count > 0]
        return min(waiting, default=None)


class RenderSlots:
    """Counts render slots per engine and hands out permits within the current limits.

    The SDK reserves a slot before each poll, and an idle poll keeps its slot until the
    server's long poll expires. So a slot counts from its reservation until its release, each
    activity worker polls with one poller, and the last free slot goes to an engine whose
    queue is busy rather than to one whose last poll came back empty.

    When ``observe_backlog`` has reported both queues' backlogs, those decide instead. An
    engine yields a free slot that the other engine's more urgent backlog can use. So an idle
    queue polls only with slots that the busy queue cannot use, and a more urgent job of the
    other engine takes the next slot that frees. Without backlogs (the server did not
    respond), the last free slot goes to the engine whose last poll returned a task.

    A slot frees when its render ends (``render_ended``), before the SDK reports the finished
    activity to the server and releases the permit. So the next poll of that slot overlaps the
    report's round trip, while no more renders than the limits allow run at once.

    NOTE: a slot reserved by an idle poll before the other queue got busy stays stranded until
    that poll expires (2 s with the long-poll setting of ``videoq.binaries``).
    """

    def __init__(self, limits: Callable[[], SlotLimits]) -> None:
        self._limits = limits
        self._lock = threading.Lock()
        self._held = dict.fromkeys(Engine, 0)
        # Permits still held by activities whose render has ended. They no longer take a slot.
        self._ended = dict.fromkeys(Engine, 0)
        self._waiting = dict.fromkeys(Engine, 0)
        # Slots reserved for a poll that has not returned a task yet.
        self._polling = dict.fromkeys(Engine, 0)
        # True once a poll of that engine's queue returned no task; False once one returned a
        # task. Only the arbitration of the last free slot reads it.
        self._idle = dict.fromkeys(Engine, False)
        # The newest backlog of each render task queue, or None while it is not known.
        self._backlog: dict[Engine, Backlog | None] = dict.fromkeys(Engine)
        self._backlog_at = float("-inf")  # time.monotonic() of the newest report
        self._loop: asyncio.AbstractEventLoop | None = None
        self._released: asyncio.Event | None = None

    def supplier(self, engine: Engine) -> CustomSlotSupplier:
        return _EngineSlotSupplier(self, engine)

    def limits(self) -> SlotLimits:
        return self._limits()

    def held(self) -> dict[Engine, int]:
        """Count the slots in use per engine: reserved for a poll, or running a render."""
        with self._lock:
            return {engine: self._in_use(engine) for engine in Engine}

    def render_ended(self, engine: Engine) -> None:
        """Free the slot of a render of ``engine`` whose renderer has exited.

        The render activity calls this once per attempt, after its renderer has exited by itself,
        and not when the renderer was killed. The activity's permit stays with the SDK until it
        is released.
        """
        with self._lock:
            self._ended[engine] += 1
        self._wake()

    def observe_backlog(self, backlogs: dict[Engine, Backlog] | None) -> None:
        """Record the render task queues' backlogs (None: unknown) and wake waiting pollers."""
        with self._lock:
            for engine in Engine:
                self._backlog[engine] = None if backlogs is None else backlogs.get(engine)
            self._backlog_at = time.monotonic()
        self._wake()

    def _in_use(self, engine: Engine) -> int:
        return self._held[engine] - self._ended[engine]

    def _free(self, limits: SlotLimits) -> int:
        return limits.total - sum(self._in_use(engine) for engine in Engine)

    def _room(self, engine: Engine, limits: SlotLimits) -> int:
        """Count the slots ``engine`` may still take under the limits."""
        room = self._free(limits)
        if engine is Engine.MANIM:
            room = min(room, limits.manim - self._in_use(Engine.MANIM))
        return max(room, 0)

    def _fits(self, engine: Engine, limits: SlotLimits) -> bool:
        return self._room(engine, limits) > 0

    def _yields_to(self, engine: Engine, other: Engine, limits: SlotLimits) -> bool:
        """Tell whether ``engine`` should leave the next free slot to ``other``."""
        free = self._free(limits)
        mine, theirs = self._backlog[engine], self._backlog[other]
        if time.monotonic() - self._backlog_at > BACKLOG_MAX_AGE_SECONDS:
            mine = theirs = None
        if mine is None or theirs is None:
            # Backlogs unknown: only the last slot is arbitrated, by the outcome of the polls.
            return (
                free == 1
                and self._idle[engine]
                and not self._idle[other]
                and self._waiting[other] > 0
                and self._fits(other, limits)
            )
        their_key = theirs.best_priority_key
        if their_key is None:
            return False
        my_key = mine.best_priority_key
        if my_key is not None and my_key <= their_key:
            return False
        # Keep as many free slots as the other engine's more urgent backlog can fill, less the
        # slots its running polls already hold for that backlog.
        needed = min(theirs.total - self._polling[other], self._room(other, limits))
        return free <= needed

    def _try_take(self, engine: Engine) -> bool:
        limits = self._limits()
        with self._lock:
            if not self._fits(engine, limits):
                return False
            other = Engine.STANDARD if engine is Engine.MANIM else Engine.MANIM
            if self._yields_to(engine, other, limits):
                return False
            self._held[engine] += 1
            self._polling[engine] += 1
            return True

    async def _take(self, engine: Engine) -> None:
        if self._released is None:
            self._loop = asyncio.get_running_loop()
            self._released = asyncio.Event()
        with self._lock:
            self._waiting[engine] += 1
        try:
            await wait_for_slot(self._released, lambda: self._try_take(engine))
        finally:
            with self._lock:
                self._waiting[engine] -= 1

    def _mark_used(self, engine: Engine) -> None:
        with self._lock:
            self._idle[engine] = False
            self._polling[engine] -= 1

    def _give_back(self, engine: Engine, used: bool) -> None:
        # The SDK calls this from a thread other than the event loop's.
        with self._lock:
            self._held[engine] -= 1
            if used and self._ended[engine] > 0:
                # Usually this permit's own render ended. If its activity stopped before the
                # renderer exited (cancelled, or it never ran), the mark taken is another
                # permit's, and one slot counts as in use until that permit is released too.
                self._ended[engine] -= 1
            if not used:
                self._idle[engine] = True
                self._polling[engine] -= 1
        self._wake()

    def _wake(self) -> None:
        """Wake the waiting reservations. Safe to call from any thread."""
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
