"""``data_dir/writer.status``: what the writer says of itself, read and written here only.

JSON, replaced durably by the writer at least every few seconds::

    {"pid": 4711, "state": "storing", "updated": 1732400000.0,
     "events_stored": 183200, "stations": {"501": 1732399990}}

``state`` is ``storing``, ``idle``, ``paused`` or ``waiting`` (``reason`` says
for what: disk full, a locked day file); ``stations`` holds the
timestamp of the last event stored per station (each writer carries over
what the one before it reported); ``events_stored`` counts since the writer
started.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
from typing import Any

from . import durable
from .datadir import WRITER_STATUS, DataDir


@dataclasses.dataclass
class WriterState:
    pid: int | None = None
    state: str | None = None
    updated: float | None = None
    events_stored: int | None = None
    stations: dict[str, int] = dataclasses.field(default_factory=dict)
    reason: str | None = None  # what a writer that is ``waiting`` waits for


def write(data_dir: DataDir, state: WriterState) -> None:
    """Replace the status durably; on a full disk, overwrite the old one in place.

    In place needs no new blocks, so a writer waiting for space can still
    say so; a reader may then meet a half-written file, which reads as unknown.
    """
    payload = json.dumps(dataclasses.asdict(state)).encode()
    path = data_dir.path(WRITER_STATUS)
    try:
        durable.replace(path, payload)
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT) or not os.path.exists(path):
            raise
        with open(path, 'r+b') as f:
            f.write(payload)
            f.truncate()


def read(data_dir: DataDir) -> WriterState | None:
    """The last state the writer wrote; None if there is none or it cannot be read."""
    try:
        with open(data_dir.path(WRITER_STATUS), encoding='utf-8') as f:
            reported = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(reported, dict):
        return None
    return WriterState(
        pid=_typed(reported.get('pid'), int),
        state=_typed(reported.get('state'), str),
        updated=_typed(reported.get('updated'), (int, float)),
        events_stored=_typed(reported.get('events_stored'), int),
        stations=_stations(reported.get('stations')),
        reason=_typed(reported.get('reason'), str),
    )


def _typed(value: Any, kind: type | tuple[type, ...]) -> Any:
    return value if isinstance(value, kind) and not isinstance(value, bool) else None


def _stations(value: Any) -> dict[str, int]:
    if not isinstance(value, dict):
        return {}
    stations = {}
    for station, when in value.items():
        if isinstance(when, (int, float)) and not isinstance(when, bool):
            stations[str(station)] = int(when)
    return stations
