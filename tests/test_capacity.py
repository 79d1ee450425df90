"""Peak windows and render limits, with a clock the tests control."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from videoq.capacity import CapacityPlan, LimitsClock, parse_peak_windows
from videoq.jobs import Engine
from videoq.settings import Settings
from videoq.slots import RenderSlots, SlotLimits

KOLKATA = ZoneInfo("Asia/Kolkata")


def plan(windows: str = "06:00-09:00,20:00-23:00", zone: str = "Asia/Kolkata") -> CapacityPlan:
    return CapacityPlan(
        max_renders=10,
        max_manim_renders=4,
        peak_multiplier=1.5,
        peak_windows=parse_peak_windows(windows),
        timezone=ZoneInfo(zone),
    )


def local(hour: int, minute: int = 0, zone=KOLKATA, day: int = 4, month: int = 12) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=zone)


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (local(5, 59), SlotLimits(10, 4)),
        (local(6, 0), SlotLimits(15, 6)),
        (local(8, 59), SlotLimits(15, 6)),
        (local(9, 0), SlotLimits(10, 4)),
        (local(19, 59), SlotLimits(10, 4)),
        (local(20, 0), SlotLimits(15, 6)),
        (local(22, 59), SlotLimits(15, 6)),
        (local(23, 0), SlotLimits(10, 4)),
    ],
    ids=["05:59", "06:00", "08:59", "09:00", "19:59", "20:00", "22:59", "23:00"],
)
def test_capacity_peak_window_edges(moment, expected):
    assert plan().limits_at(moment) == expected


def test_capacity_uses_local_time_not_utc():
    # 01:00 UTC is 06:30 in Kolkata (UTC+05:30): peak there, although 01:00 is in no window.
    assert plan().in_peak(datetime(2026, 12, 4, 1, 0, tzinfo=UTC))
    assert not plan(zone="UTC").in_peak(datetime(2026, 12, 4, 1, 0, tzinfo=UTC))


def test_capacity_follows_daylight_saving():
    new_york = ZoneInfo("America/New_York")
    evening = plan(zone="America/New_York")
    # 20:30 local is 00:30 UTC the next day in summer (UTC-4) and 01:30 UTC in winter (UTC-5).
    summer = datetime(2026, 7, 2, 0, 30, tzinfo=UTC)
    winter = datetime(2026, 12, 5, 1, 30, tzinfo=UTC)
    assert summer.astimezone(new_york).hour == 20
    assert winter.astimezone(new_york).hour == 20
    assert evening.in_peak(summer)
    assert evening.in_peak(winter)
    # On the night clocks go back (2026-11-01), 06:00 local comes 25 hours after 06:00 the day
    # before; the window still opens at local 06:00.
    before = datetime(2026, 10, 31, 6, 0, tzinfo=new_york)
    after = datetime(2026, 11, 1, 6, 0, tzinfo=new_york)
    assert after.astimezone(UTC) - before.astimezone(UTC) == timedelta(hours=25)
    assert evening.in_peak(after.astimezone(UTC))


def test_capacity_window_over_midnight():
    overnight = plan("22:00-02:00")
    assert overnight.in_peak(local(23, 30))
    assert overnight.in_peak(local(1, 59))
    assert not overnight.in_peak(local(2, 0))


@pytest.mark.parametrize(
    "text", ["6-9", "06:00-09:60", "25:00-26:00", "06:00-06:00", "06:00"], ids=str
)
def test_capacity_rejects_invalid_window(text):
    with pytest.raises(ValueError, match="peak window"):
        parse_peak_windows(text)


def test_settings_reject_unknown_timezone():
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        Settings(timezone="Mars/Olympus")


async def test_capacity_change_applies_without_restart_and_kills_nothing():
    now = [local(8, 59)]
    slots = RenderSlots(LimitsClock(plan(), now=lambda: now[0]))
    standard = slots.supplier(Engine.STANDARD)
    permits = [standard.try_reserve_slot(None) for _ in range(16)]
    assert sum(permit is not None for permit in permits) == 15

    # 09:00: capacity drops to 10 while 15 renders run. None is stopped; no new one starts
    # until fewer than 10 run.
    now[0] = local(9, 0)
    assert standard.try_reserve_slot(None) is None
    assert slots.held()[Engine.STANDARD] == 15
    for _ in range(6):
        standard.release_slot(None)
    assert standard.try_reserve_slot(None) is not None
    assert standard.try_reserve_slot(None) is None
