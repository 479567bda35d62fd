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
import contextlib
import fcntl
import os
import sqlite3
import threading
import time

from datastore import spool

LOCKS = 'locks'
PRUNE_EVERY = 600.0             # seconds between prunes in one process

_SCHEMA = (
    'CREATE TABLE IF NOT EXISTS received (station INTEGER, checksum TEXT, '
    'received REAL, PRIMARY KEY (station, checksum))',
    'CREATE INDEX IF NOT EXISTS received_time ON received (received)',
)


class Received:
    def __init__(self, data_dir, window_seconds):
        self.path = os.path.join(data_dir, spool.RECEIVED)
        self.locks = os.path.join(data_dir, LOCKS)
        self.window = window_seconds
        self._local, self._pruned = threading.local(), 0.0

    @contextlib.contextmanager
    def station_lock(self, station):
        """Hold the station's lock (OSError if the lock file cannot be made)."""
        os.makedirs(self.locks, exist_ok=True)
        fd = os.open(os.path.join(self.locks, f'received-{station}.lock'),
                     os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _connection(self):
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

    def seen(self, station, checksum, now=None):
        """True if ``station`` delivered the batch ``checksum`` within the window."""
        now = time.time() if now is None else now
        row = self._connection().execute(
            'SELECT received FROM received WHERE station = ? AND checksum = ?',
            (station, checksum)).fetchone()
        return row is not None and row[0] >= now - self.window

    def record(self, station, checksum, now=None):
        """Remember a delivered batch; now and then forget those out of the window."""
        now = time.time() if now is None else now
        db = self._connection()
        db.execute('INSERT OR REPLACE INTO received (station, checksum, received) '
                   'VALUES (?, ?, ?)', (station, checksum, now))
        if now - self._pruned >= PRUNE_EVERY:
            self.prune(now)

    def prune(self, now=None):
        now = time.time() if now is None else now
        self._connection().execute('DELETE FROM received WHERE received < ?',
                                   (now - self.window,))
        self._pruned = now
