"""Times as a person reads them, for the ``status`` command and the status page alike."""

from __future__ import annotations

import datetime


def ago(seconds: float | None) -> str:
    """``seconds`` in two units a person reads at a glance."""
    if seconds is None:
        return 'never'
    s = int(seconds)
    if s < 60:
        return f'{s} s'
    if s < 3600:
        return f'{s // 60} min {s % 60} s'
    if s < 86400:
        return f'{s // 3600} h {s % 3600 // 60} min'
    return f'{s // 86400} d {s % 86400 // 3600} h'


def utc(timestamp: float) -> str:
    return f'{datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc):%Y-%m-%d %H:%M:%S}'


def relative(timestamp: float, now: float) -> str:
    """'5 min 3 s ago', or 'ahead' for a time after ``now`` (a station clock that runs ahead)."""
    delta = now - timestamp
    return f'{ago(delta)} ago' if delta >= 0 else f'{ago(-delta)} ahead'


def when(timestamp: float | None, now: float) -> str:
    """'2026-11-24 13:05:00 (5 min 3 s ago)', or '-' for none."""
    if timestamp is None:
        return '-'
    return f'{utc(timestamp)} ({relative(timestamp, now)})'
