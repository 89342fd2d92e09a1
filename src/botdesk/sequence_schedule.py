"""When a sequence's step is due: delays, quiet hours in the subscriber's time zone, expiry.

Pure functions of their arguments (time is passed in), used by ``sequences.py`` and tested
alone. A subscriber's time zone is the ``subscribers.timezone`` column (an IANA name, see
``timezones.py``) when it is set and valid; otherwise the sequence's ``quiet_hours.timezone``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from botdesk.sequence_file import QuietHours, Step
from botdesk.timezones import is_zone


def zone_for(name: str | None, default: str) -> ZoneInfo:
    """The subscriber's own time zone (``subscribers.timezone``) where known, else
    ``default``."""
    return ZoneInfo(name if name is not None and is_zone(name) else default)


def quiet_end(at: datetime, quiet: QuietHours | None, zone: ZoneInfo) -> datetime | None:
    """The end of the quiet window ``at`` falls in (an aware UTC time), or None if it is not in
    one. A window may wrap midnight (22:00-08:00)."""
    if quiet is None:
        return None
    local = at.astimezone(zone)
    t = local.time().replace(tzinfo=None)
    start, end = quiet.start, quiet.end
    day = local.date()
    if start < end:
        if not (start <= t < end):
            return None
        target = datetime.combine(day, end, tzinfo=zone)
    elif t >= start:  # wraps midnight: the evening part, ends tomorrow
        target = datetime.combine(day + timedelta(days=1), end, tzinfo=zone)
    elif t < end:  # the morning part, ends today
        target = datetime.combine(day, end, tzinfo=zone)
    else:
        return None
    return target.astimezone(at.tzinfo or zone)


def outside_quiet(at: datetime, quiet: QuietHours | None, zone: ZoneInfo) -> datetime:
    """``at``, or the end of the quiet window it falls in."""
    end = quiet_end(at, quiet, zone)
    return at if end is None else end


def due(step: Step, *, enrolled_at: datetime, previous_done: datetime | None) -> datetime:
    """When ``step`` is due before quiet hours: its delay after the trigger, or after the
    moment the previous step was settled (sent, failed, expired, skipped)."""
    base = enrolled_at if step.after == "trigger" or previous_done is None else previous_done
    return base + step.delay


def expired(step: Step, *, due_at: datetime, now: datetime) -> bool:
    """A step sent later than ``expires`` after it was due is not sent at all."""
    return step.expires is not None and now > due_at + step.expires
