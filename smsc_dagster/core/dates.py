"""Dates and zones: partition days, the server's request windows, and parsing date settings.

SMSC reads the ``start``/``end`` dates of a history request as whole days in its own zone; partitions are
local days of the pipeline's zone. Everything that converts between the two lives here.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def add_months(day: dt.date, months: int) -> dt.date:
    """``day`` moved by whole calendar months, clamped to the month's last day."""
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    for candidate in (31, 30, 29, 28):
        try:
            return dt.date(year, month, min(day.day, candidate))
        except ValueError:
            continue
    raise AssertionError("unreachable")


def days_between(first: dt.date, last: dt.date) -> list[dt.date]:
    """Every date from ``first`` to ``last``, both included."""
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def split_range(start: dt.date, end: dt.date) -> list[tuple[dt.date, dt.date]]:
    """Split ``[start, end]`` (inclusive) into request windows SMSC accepts, newest first.

    A window spans less than six calendar months, so the server's six-month limit holds whichever way it
    counts the end day. Newest first, so one backwards paging walk covers the whole range in order.
    """
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    windows = []
    window_end = end
    while window_end >= start:
        window_start = add_months(window_end, -6) + dt.timedelta(days=1)
        while add_months(window_start, 6) <= window_end:  # month-end clamping: 31.05 + 6 months is 30.11
            window_start += dt.timedelta(days=1)
        window_start = max(start, window_start)
        windows.append((window_start, window_end))
        window_end = window_start - dt.timedelta(days=1)
    return windows


def api_dates(first: dt.date, last: dt.date, timezone: str, api_timezone: str) -> tuple[dt.date, dt.date]:
    """The ``start``/``end`` dates to request so the server's days (in ``api_timezone``) cover the local
    days ``first``..``last`` of ``timezone`` completely."""
    zone, api_zone = ZoneInfo(timezone), ZoneInfo(api_timezone)
    window_start = dt.datetime.combine(first, dt.time(), zone)
    window_end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), zone)
    return (
        window_start.astimezone(api_zone).date(),
        (window_end - dt.timedelta(seconds=1)).astimezone(api_zone).date(),
    )


def day_bounds(first: dt.date, last: dt.date, timezone: str) -> tuple[int, int]:
    """Unix seconds ``[start, end)`` of the local days ``first``..``last`` in ``timezone``."""
    zone = ZoneInfo(timezone)
    start = dt.datetime.combine(first, dt.time(), zone)
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), zone)
    return int(start.timestamp()), int(end.timestamp())


def parse_date(value: object, *, setting: str) -> dt.date:
    """A ``YYYY-MM-DD`` setting as a date, or a ``ValueError`` naming the setting and the value."""
    if isinstance(value, dt.datetime):
        raise ValueError(f"{setting} must be a date (YYYY-MM-DD), got the datetime {value!r}")
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError(f"{setting} must be a date written YYYY-MM-DD (for example 2026-01-01), got {value!r}")


def check_timezone(value: object, *, setting: str) -> str:
    """``value`` when it names an IANA zone, else a ``ValueError`` naming the setting."""
    if isinstance(value, str) and value:
        try:
            ZoneInfo(value)
            return value
        except (ZoneInfoNotFoundError, ValueError):
            pass
    raise ValueError(f"{setting} must be an IANA time zone such as 'Asia/Almaty', got {value!r}")
