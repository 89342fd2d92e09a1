"""Scheduling of sequence steps: delays, quiet hours in the subscriber's zone, expiry."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from botdesk import sequence_schedule as sched
from botdesk.sequence_file import QuietHours, Step

NIGHT = QuietHours(start=time(22, 0), end=time(8, 0), timezone="Europe/Berlin")
LUNCH = QuietHours(start=time(12, 0), end=time(13, 30), timezone="UTC")
BERLIN = ZoneInfo("Europe/Berlin")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_zone_from_the_column_else_default() -> None:
    assert sched.zone_for("Asia/Tokyo", "UTC") == ZoneInfo("Asia/Tokyo")
    assert sched.zone_for("Not/AZone", "Europe/Berlin") == BERLIN
    assert sched.zone_for("", "Europe/Berlin") == BERLIN
    assert sched.zone_for(None, "Europe/Berlin") == BERLIN


def test_wrapping_window_moves_to_its_end() -> None:
    # 21:30 UTC is 22:30 in Berlin (winter, UTC+1): quiet until 08:00 Berlin = 07:00 UTC.
    assert sched.outside_quiet(at("2026-12-07T21:30:00"), NIGHT, BERLIN) == at(
        "2026-12-08T07:00:00"
    )
    # 05:00 UTC is 06:00 Berlin: the morning part, ends the same day.
    assert sched.outside_quiet(at("2026-12-08T05:00:00"), NIGHT, BERLIN) == at(
        "2026-12-08T07:00:00"
    )
    # 07:00 UTC is 08:00 Berlin: the window is over (its end is not inside it).
    assert sched.quiet_end(at("2026-12-08T07:00:00"), NIGHT, BERLIN) is None
    assert sched.outside_quiet(at("2026-12-08T12:00:00"), NIGHT, BERLIN) == at(
        "2026-12-08T12:00:00"
    )


def test_same_day_window_and_another_zone() -> None:
    assert sched.outside_quiet(at("2026-12-08T12:10:00"), LUNCH, ZoneInfo("UTC")) == at(
        "2026-12-08T13:30:00"
    )
    assert sched.quiet_end(at("2026-12-08T11:59:59"), LUNCH, ZoneInfo("UTC")) is None
    # The same instant is 21:10 in Tokyo (UTC+9): outside the lunch window there.
    assert sched.quiet_end(at("2026-12-08T12:10:00"), LUNCH, ZoneInfo("Asia/Tokyo")) is None
    assert sched.quiet_end(at("2026-12-08T12:10:00"), None, BERLIN) is None


def test_delay_after_previous_or_trigger() -> None:
    enrolled, done = at("2026-12-07T10:00:00"), at("2026-12-07T11:00:00")
    prev = Step(number=2, text="x", delay=timedelta(hours=2))
    trig = Step(number=2, text="x", delay=timedelta(hours=2), after="trigger")
    assert sched.due(prev, enrolled_at=enrolled, previous_done=done) == at("2026-12-07T13:00:00")
    assert sched.due(trig, enrolled_at=enrolled, previous_done=done) == at("2026-12-07T12:00:00")
    assert sched.due(prev, enrolled_at=enrolled, previous_done=None) == at("2026-12-07T12:00:00")


def test_expiry() -> None:
    step = Step(number=1, text="x", expires=timedelta(hours=1))
    due = at("2026-12-07T10:00:00")
    assert not sched.expired(step, due_at=due, now=due + timedelta(minutes=59))
    assert sched.expired(step, due_at=due, now=due + timedelta(minutes=61))
    forever = Step(number=1, text="x")
    assert not sched.expired(forever, due_at=due, now=due + timedelta(days=365))
