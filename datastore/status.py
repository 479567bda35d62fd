"""The figures an operator looks at.

One function, read by ``hisparc-datastore status`` and by the monitoring
URLs alike (``wsgi/metrics.py`` turns the figures into Prometheus metrics).

Sources, all under ``data_dir`` and all read-only:

- the spool folders: how many files wait in each, and the age of the oldest
  file in ``incoming/``;
- the batch record (``received.sqlite``, or PostgreSQL), written by the
  upload endpoint: the last upload per station;
- ``writer.status`` (written atomically by the writer): its pid, state, the
  time of its last update, the last stored event per station, events stored;
- ``writer.pause``: the operator's request that the writer pause (and since when);
- ``writer.sqlite`` (the writer's ledger): damaged day files, the last audit,
  events stored per hour over the last day;
- ``config.ini`` itself: what is wrong with the file on disk
  (``config_problems``), which the running processes do not take up.

Nothing here imports PyTables: the monitoring endpoint runs in the upload
workers.
"""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import time
from typing import Any

from . import config as config_mod
from . import ledger, received, writerstate
from .datadir import FOLDERS, INCOMING, LEDGER, DataDir

MIN_STALE = 30.0  # seconds; the writer updates its status at least every few seconds
DAY_SECONDS = 86400


def gather(config: config_mod.Config, now: float | None = None) -> dict[str, Any]:
    """The status of the datastore configured by ``config``, as a plain dict."""
    now = time.time() if now is None else now
    data_dir = DataDir(config.data_dir)
    incoming = data_dir.queued(INCOMING)
    folders = {name: len(incoming) if name == INCOMING else len(data_dir.queued(name)) for name in FOLDERS}
    oldest = _mtime(incoming[0]) if incoming else None
    writer = writer_state(data_dir, config.sleep, now)
    uploads = {str(number): when for number, when in received.connect(config).last_uploads().items()}
    stored = writer.pop('stations')
    numbers = sorted(uploads.keys() | stored.keys(), key=lambda n: (len(n), n))  # 99 before 501
    stations = {n: {'last_upload': uploads.get(n), 'last_stored_event': stored.get(n)} for n in numbers}
    return {
        'time': now,
        'data_dir': config.data_dir,
        'folders': folders,
        'queue': {
            'files': folders[INCOMING],
            'oldest_age': None if oldest is None else max(0.0, now - oldest),
        },
        'writer': writer,
        'stations': stations,
        **_ledger_figures(data_dir, now),
        'config_problems': config_mod.read(config.path)[1],
    }


def _ledger_figures(data_dir: DataDir, now: float) -> dict[str, Any]:
    """Damaged day files, the last audit and events stored per hour, from the writer's ledger (read-only)."""
    figures: dict[str, Any] = {'damaged_days': {}, 'audit': None, 'stored_per_hour': {}}
    if not os.path.exists(data_dir.path(LEDGER)):
        return figures
    book = ledger.Ledger(data_dir, readonly=True)
    try:
        figures['damaged_days'] = {day: damage.reason for day, damage in sorted(book.damaged().items())}
        figures['audit'] = book.last_audit()
        figures['stored_per_hour'] = book.stored_per_hour(now - DAY_SECONDS)
    except sqlite3.Error:
        pass
    finally:
        book.close()
    return figures


def _mtime(path: str) -> float | None:
    try:
        return os.stat(path).st_mtime
    except FileNotFoundError:  # claimed by the writer meanwhile
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def writer_state(data_dir: DataDir, sleep: float, now: float) -> dict[str, Any]:
    """What the writer last said of itself, whether it is running, whether it is asked to pause."""
    reported = writerstate.read(data_dir) or writerstate.WriterState(stations={})
    state = dataclasses.asdict(reported)
    updated, pid = reported.updated, reported.pid
    fresh = updated is not None and now - updated <= max(3 * sleep, MIN_STALE)
    state['running'] = bool(fresh and pid is not None and _alive(pid))
    state['paused'] = data_dir.paused()
    state['paused_since'] = data_dir.pause_requested()
    return state
