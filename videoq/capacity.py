"""Render capacity of a worker process: base limits, raised during peak windows of local time."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

from videoq.slots import SlotLimits

logger = logging.getLogger("videoq.capacity")

_WINDOW = re.compile(r"^\s*(\d{2}):(\d{2})\s*-\s*(\d{2}):(\d{2})\s*$")


@dataclass(frozen=True)
class PeakWindow:
    """A daily span of local wall-clock time, ``start`` included and ``end`` excluded.

    A window whose end is not after its start runs over midnight, such as 22:00-02:00.
    """

    start: time
    end: time

    def contains(self, moment: time) -> bool:
        if self.start < self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end


def parse_peak_windows(text: str) -> tuple[PeakWindow, ...]:
    """Parse ``HH:MM-HH:MM`` spans separated by commas; an empty string means no peak."""
    windows = []
    for part in filter(str.strip, text.split(",")):
        match = _WINDOW.match(part)
        if match is None:
            raise ValueError(f"peak window {part.strip()!r} is not HH:MM-HH:MM")
        start_h, start_m, end_h, end_m = (int(group) for group in match.groups())
        if start_h > 23 or end_h > 24 or start_m > 59 or end_m > 59 or (end_h == 24 and end_m):
            raise ValueError(f"peak window {part.strip()!r} has an invalid time of day")
        end = time(0, 0) if end_h == 24 else time(end_h, end_m)
        if time(start_h, start_m) == end:
            raise ValueError(f"peak window {part.strip()!r} is empty")
        windows.append(PeakWindow(time(start_h, start_m), end))
    return tuple(windows)


@dataclass(frozen=True)
class CapacityPlan:
    """Base limits, the peak multiplier and when it applies."""

    max_renders: int
    max_manim_renders: int
    peak_multiplier: float
    peak_windows: tuple[PeakWindow, ...]
    timezone: ZoneInfo

    def in_peak(self, now: datetime) -> bool:
        """Return whether the aware instant ``now`` falls in a peak window of the plan's local time.

        Local wall time comes from the time zone's rules, so windows follow daylight saving.
        """
        local = now.astimezone(self.timezone).time()
        return any(window.contains(local) for window in self.peak_windows)

    def limits_at(self, now: datetime) -> SlotLimits:
        multiplier = self.peak_multiplier if self.in_peak(now) else 1.0
        # Rounded down, so the raised limits never exceed multiplier x base: 10 -> 15, 4 -> 6.
        total = math.floor(self.max_renders * multiplier)
        manim = math.floor(self.max_manim_renders * multiplier)
        return SlotLimits(total=total, manim=min(manim, total))


class LimitsClock:
    """Callable that returns the limits in force now and logs each change of them."""

    def __init__(self, plan: CapacityPlan, now: Callable[[], datetime] | None = None) -> None:
        self._plan = plan
        self._now = now or (lambda: datetime.now(UTC))
        self._last: SlotLimits | None = None

    def __call__(self) -> SlotLimits:
        limits = self._plan.limits_at(self._now())
        if limits != self._last:
            if self._last is not None:
                logger.info(
                    "render limits now %d (%d Manim)%s",
                    limits.total,
                    limits.manim,
                    ", peak hours" if self._plan.in_peak(self._now()) else "",
                    extra={"action": "limits_changed"},
                )
            self._last = limits
        return limits
