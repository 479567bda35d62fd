"""``data_dir/received.sqlite``: every batch the endpoint acknowledged, and resends.

The endpoint records each batch it answers ``100``, durably (fsynced)
before the ``100`` leaves: its station, checksum, time, event count, and the
spool files it wrote with the events in each. ``audit`` reconciles this
record with where the events are now. The same record recognises a resend:
a station whose read timed out sends the same batch again, though it may
have been stored, and is answered ``100`` without storing it twice while the
first is within ``[General] resend_window``::

    batches(id INTEGER PRIMARY KEY, station INTEGER, checksum TEXT,
            received REAL /* unix time */, events INTEGER,
            files TEXT /* JSON [[folder, spool file name, events], ...] */)

Batches are kept ``[General] audit_days`` (at least the resend window).
Identical uploads of one station that arrive together are serialized by an
flock on ``data_dir/locks/received-{station}.lock``, held while checking,
spooling and recording: the second waits, then finds the first one recorded.
A batch is recorded only after its spool files are durable; the records of
all stations are written one at a time, queued on ``locks/received.lock``.

With ``[General] resend_database`` set to a PostgreSQL URL, the same record
(and the station lock) lives there instead, for several upload hosts
(``received_pg.py``); ``connect`` picks the one configured.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import pathlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

from .datadir import RECEIVED, DataDir

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from .config import Config

PRUNE_EVERY = 600.0  # seconds between prunes in one process

_SCHEMA = (
    (
        'CREATE TABLE IF NOT EXISTS batches (id INTEGER PRIMARY KEY, station INTEGER, checksum TEXT, '
        'received REAL, events INTEGER, files TEXT)'
    ),
    'CREATE INDEX IF NOT EXISTS batches_station ON batches (station, checksum)',
    'CREATE INDEX IF NOT EXISTS batches_time ON batches (received)',
)


@dataclasses.dataclass(frozen=True)
class Batch:
    """An acknowledged batch: who sent it, when, and the spool files it became."""

    station: int
    checksum: str
    received: float
    events: int
    files: tuple[tuple[str, str, int], ...]  # (folder, spool file name, events)


class Unavailable(Exception):
    """The record cannot be reached (a database server down): the upload is answered ``404``."""


class Record(Protocol):
    """The batch record, wherever it lives."""

    def station_lock(self, station: int) -> AbstractContextManager[None]: ...
    def seen(self, station: int, checksum: str, now: float | None = None) -> bool: ...
    def record(
        self,
        station: int,
        checksum: str,
        events: int,
        files: list[tuple[str, str, int]],
        now: float | None = None,
    ) -> None: ...
    def last_uploads(self) -> dict[int, float]: ...
    def batches_since(self, since: float) -> list[Batch]: ...
    def check(self) -> None: ...


def connect(config: Config) -> Record:
    """The batch record ``config`` names: PostgreSQL (``resend_database``) or ``data_dir/received.sqlite``."""
    window, keep = config.resend_window_seconds, config.audit_days * 86400.0
    if config.resend_database:
        from . import received_pg  # noqa: PLC0415 (psycopg only where configured)

        return received_pg.PostgresRecord(config.resend_database, window, keep)
    return Received(DataDir(config.data_dir), window, keep)


class Received:
    """The batch record in ``data_dir/received.sqlite`` (the default)."""

    def __init__(self, data_dir: DataDir, window_seconds: float, keep_seconds: float = 0.0) -> None:
        self.path = data_dir.path(RECEIVED)
        self.data_dir = data_dir
        self.window = window_seconds
        self.keep = max(keep_seconds, window_seconds)
        self._local, self._pruned = threading.local(), 0.0

    @contextlib.contextmanager
    def station_lock(self, station: int) -> Iterator[None]:
        """Hold the station's lock (OSError if the lock file cannot be made)."""
        with self.data_dir.lock(f'received-{station}.lock'):
            yield

    def _connection(self) -> sqlite3.Connection:
        # Opened lazily, per process and thread: an SQLite connection must not
        # cross the fork of a uWSGI worker, nor be shared by its threads.
        local = self._local
        if getattr(local, 'pid', None) != os.getpid():
            db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            db.execute('PRAGMA journal_mode=WAL')
            # The record is on disk before the 100: audit relies on it
            db.execute('PRAGMA synchronous=FULL')
            for statement in _SCHEMA:
                db.execute(statement)
            _migrate(db)
            local.db, local.pid = db, os.getpid()
        return local.db

    def seen(self, station: int, checksum: str, now: float | None = None) -> bool:
        """True if ``station`` delivered the batch ``checksum`` within the window."""
        now = time.time() if now is None else now
        row = (
            self._connection()
            .execute(
                'SELECT 1 FROM batches WHERE station = ? AND checksum = ? AND received >= ? LIMIT 1',
                (station, checksum, now - self.window),
            )
            .fetchone()
        )
        return row is not None

    def record(
        self,
        station: int,
        checksum: str,
        events: int,
        files: list[tuple[str, str, int]],
        now: float | None = None,
    ) -> None:
        """Record an acknowledged batch durably; now and then forget those past ``keep``."""
        now = time.time() if now is None else now
        db = self._connection()
        # One writer at a time, queued on an flock: a writer that finds SQLite's
        # write lock taken polls it, sleeping a millisecond or more each time,
        # while a commit (its fsync) takes less.
        with self.data_dir.lock('received.lock'):
            db.execute(
                'INSERT INTO batches (station, checksum, received, events, files) VALUES (?, ?, ?, ?, ?)',
                (station, checksum, now, events, json.dumps(files)),
            )
            if now - self._pruned >= PRUNE_EVERY:
                self.prune(now)

    def prune(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        self._connection().execute('DELETE FROM batches WHERE received < ?', (now - self.keep,))
        self._pruned = now

    def check(self) -> None:
        """Nothing to reach: the file is on the spool's disk, which ``ready`` probes."""

    # -- read-only: for status and audit, which must not create the record

    def last_uploads(self) -> dict[int, float]:
        """{station: unix time of its last upload}; empty if there is no record (yet) or it cannot be read."""
        try:
            db = _readonly(self.path)
            if db is None:
                return {}
            with contextlib.closing(db):
                rows = db.execute('SELECT station, MAX(received) FROM batches GROUP BY station')
                return {int(station): received for station, received in rows}
        except sqlite3.Error:
            return {}

    def batches_since(self, since: float) -> list[Batch]:
        """Every batch acknowledged at or after ``since``, oldest first (sqlite3.Error if unreadable)."""
        db = _readonly(self.path)
        if db is None:
            return []
        with contextlib.closing(db):
            rows = db.execute(
                'SELECT station, checksum, received, events, files FROM batches '
                'WHERE received >= ? ORDER BY received, id',
                (since,),
            ).fetchall()
        return [found for found in (batch(*row) for row in rows) if found is not None]


def _migrate(db: sqlite3.Connection) -> None:
    """Take over the resend record of version 1 (``received``: station, checksum, time).

    Its batches have no event count or spool files (``audit`` skips them).
    """
    if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'received'").fetchone() is None:
        return
    with contextlib.suppress(sqlite3.OperationalError):  # another worker did it first
        db.execute('BEGIN IMMEDIATE')
        if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'received'").fetchone():
            db.execute(
                'INSERT INTO batches (station, checksum, received) '
                'SELECT station, checksum, received FROM received'
            )
            db.execute('DROP TABLE received')
        db.execute('COMMIT')


def _readonly(path: str) -> sqlite3.Connection | None:
    resolved = pathlib.Path(path).resolve()
    if not resolved.is_file():
        return None
    return sqlite3.connect(f'{resolved.as_uri()}?mode=ro', uri=True, timeout=5.0)


def batch(
    station: int, checksum: str, received: float, events: int | None, files: str | None
) -> Batch | None:
    """A row of the record as a Batch (None for a batch of version 1, whose files are not known)."""
    if files is None:
        return None
    return Batch(station, checksum, received, events or 0, tuple(tuple(f) for f in json.loads(files)))
