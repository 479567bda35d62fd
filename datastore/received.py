"""Which batches each station has already delivered: resends answer 100 once more.

A station whose read timed out sends the same batch again, though it may
have been stored. ``data_dir/received.sqlite`` remembers the checksum of every
batch delivered within the resend window, shared by all worker processes and
kept across restarts:

    received(station INTEGER, checksum TEXT, received REAL /* unix time */,
             PRIMARY KEY (station, checksum))

Identical uploads of one station that arrive together are serialized by an
flock on ``data_dir/locks/received-{station}.lock``, held while checking,
spooling and recording: the second waits, then finds the first one recorded.
A checksum is recorded only after its batch is durable in the spool.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pathlib
import sqlite3
import threading
import time
from collections.abc import Iterator

from .datadir import LOCKS, RECEIVED, DataDir

PRUNE_EVERY = 600.0  # seconds between prunes in one process

_SCHEMA = (
    (
        'CREATE TABLE IF NOT EXISTS received (station INTEGER, checksum TEXT, '
        'received REAL, PRIMARY KEY (station, checksum))'
    ),
    'CREATE INDEX IF NOT EXISTS received_time ON received (received)',
)


class Received:
    def __init__(self, data_dir: DataDir, window_seconds: float) -> None:
        self.path = data_dir.path(RECEIVED)
        self.locks = data_dir.path(LOCKS)
        self.window = window_seconds
        self._local, self._pruned = threading.local(), 0.0

    @contextlib.contextmanager
    def station_lock(self, station: int) -> Iterator[None]:
        """Hold the station's lock (OSError if the lock file cannot be made)."""
        os.makedirs(self.locks, exist_ok=True)
        fd = os.open(os.path.join(self.locks, f'received-{station}.lock'), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _connection(self) -> sqlite3.Connection:
        # Opened lazily, per process and thread: an SQLite connection must not
        # cross the fork of a uWSGI worker, nor be shared by its threads.
        local = self._local
        if getattr(local, 'pid', None) != os.getpid():
            db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            db.execute('PRAGMA journal_mode=WAL')
            # A record lost in a power cut costs one duplicate batch, never data.
            db.execute('PRAGMA synchronous=NORMAL')
            for statement in _SCHEMA:
                db.execute(statement)
            local.db, local.pid = db, os.getpid()
        return local.db

    def seen(self, station: int, checksum: str, now: float | None = None) -> bool:
        """True if ``station`` delivered the batch ``checksum`` within the window."""
        now = time.time() if now is None else now
        row = (
            self._connection()
            .execute('SELECT received FROM received WHERE station = ? AND checksum = ?', (station, checksum))
            .fetchone()
        )
        return row is not None and row[0] >= now - self.window

    def record(self, station: int, checksum: str, now: float | None = None) -> None:
        """Remember a delivered batch; now and then forget those out of the window."""
        now = time.time() if now is None else now
        db = self._connection()
        db.execute(
            'INSERT OR REPLACE INTO received (station, checksum, received) VALUES (?, ?, ?)',
            (station, checksum, now),
        )
        if now - self._pruned >= PRUNE_EVERY:
            self.prune(now)

    def prune(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        self._connection().execute('DELETE FROM received WHERE received < ?', (now - self.window,))
        self._pruned = now


def last_uploads(data_dir: DataDir) -> dict[int, float]:
    """{station: unix time of its last upload}, read-only; empty if there is no record yet."""
    path = pathlib.Path(data_dir.path(RECEIVED)).resolve()
    if not path.is_file():
        return {}
    try:
        db = sqlite3.connect(f'{path.as_uri()}?mode=ro', uri=True, timeout=5.0)
        try:
            rows = db.execute('SELECT station, MAX(received) FROM received GROUP BY station')
            return {int(station): received for station, received in rows}
        finally:
            db.close()
    except sqlite3.Error:
        return {}
