"""The batch record in PostgreSQL (``[General] resend_database``), for several upload hosts.

The same table as ``received.sqlite`` (``received.py``), reachable from every
host that takes uploads, so that a resend is recognised whichever host it
reaches and ``audit`` sees every batch. The per-station lock that serialises
identical uploads arriving together is a session-level advisory lock
(``pg_advisory_lock(CLASS, station)``): held by the connection while the
upload is checked, spooled and recorded, released when it ends or if the
connection dies. Every statement commits at once (autocommit), and
PostgreSQL's commit is durable (``synchronous_commit`` on, its default), so a
batch is on the server's disk before the ``100`` leaves.

Any failure to reach or use the server raises ``received.Unavailable``: the
endpoint answers ``404`` and logs why. A connection the server dropped (a
restart) is opened anew at once; one that cannot be opened, on the next
upload. psycopg (3, its binary wheel: ``pip install '.[postgresql]'``) is
imported only here.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from .received import PRUNE_EVERY, Batch, Unavailable, batch

LOCK_CLASS = 0x4853  # the first key of the stations' advisory locks ('HS')
SCHEMA_LOCK = LOCK_CLASS + 1  # held while the table is made
CONNECT_TIMEOUT = 5  # seconds
# A hung server must not hold an upload for ever: statements (and waiting for
# another upload of the same station) give up after this long.
OPTIONS = '-c statement_timeout=30s -c lock_timeout=30s'

T = TypeVar('T')

_SCHEMA = (
    (
        'CREATE TABLE IF NOT EXISTS batches (id BIGSERIAL PRIMARY KEY, station INTEGER, checksum TEXT, '
        'received DOUBLE PRECISION, events INTEGER, files TEXT)'
    ),
    'CREATE INDEX IF NOT EXISTS batches_station ON batches (station, checksum)',
    'CREATE INDEX IF NOT EXISTS batches_time ON batches (received)',
)


class PostgresRecord:
    def __init__(self, url: str, window_seconds: float, keep_seconds: float = 0.0) -> None:
        self.url = url
        self.window = window_seconds
        self.keep = max(keep_seconds, window_seconds)
        self._local, self._pruned = threading.local(), 0.0

    def _call(self, work: Callable[[Any], T]) -> T:
        """``work(connection)`` on this process's (and thread's) connection.

        A connection the server dropped meanwhile (a restart) is opened anew
        and the work done once more, unless it held a station's lock: the lock
        went with it, so going on would let an identical upload in beside this
        one. Any other failure drops the connection and raises Unavailable.
        """
        import psycopg  # noqa: PLC0415

        local = self._local
        for attempt in (1, 2):
            fresh = getattr(local, 'pid', None) != os.getpid() or local.db.closed
            try:
                if fresh:
                    local.db = psycopg.connect(
                        self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT, options=OPTIONS
                    )
                    local.pid = os.getpid()
                    _create(local.db)
                return work(local.db)
            except psycopg.Error as exc:
                with contextlib.suppress(Exception):
                    local.db.close()
                local.pid = None
                locked = getattr(local, 'locked', None) is not None
                if fresh or locked or attempt == 2 or not isinstance(exc, psycopg.OperationalError):
                    raise Unavailable(
                        f'PostgreSQL: {" ".join(str(exc).split()) or type(exc).__name__}'
                    ) from exc
        raise AssertionError('unreachable')

    @contextlib.contextmanager
    def station_lock(self, station: int) -> Iterator[None]:
        self._call(lambda db: db.execute('SELECT pg_advisory_lock(%s, %s)', (LOCK_CLASS, station)))
        self._local.locked = station
        try:
            yield
        finally:
            self._local.locked = None
            # A connection lost meanwhile took its lock with it
            if getattr(self._local, 'pid', None) == os.getpid():
                with contextlib.suppress(Unavailable):
                    self._call(
                        lambda db: db.execute('SELECT pg_advisory_unlock(%s, %s)', (LOCK_CLASS, station))
                    )

    def seen(self, station: int, checksum: str, now: float | None = None) -> bool:
        since = (time.time() if now is None else now) - self.window
        row = self._call(
            lambda db: db.execute(
                'SELECT 1 FROM batches WHERE station = %s AND checksum = %s AND received >= %s LIMIT 1',
                (station, checksum, since),
            ).fetchone()
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
        now = time.time() if now is None else now
        self._call(
            lambda db: db.execute(
                'INSERT INTO batches (station, checksum, received, events, files) '
                'VALUES (%s, %s, %s, %s, %s)',
                (station, checksum, now, events, json.dumps(files)),
            )
        )
        if now - self._pruned >= PRUNE_EVERY:
            self.prune(now)

    def prune(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        self._call(lambda db: db.execute('DELETE FROM batches WHERE received < %s', (now - self.keep,)))
        self._pruned = now

    def last_uploads(self) -> dict[int, float]:
        try:
            rows = self._call(
                lambda db: db.execute(
                    'SELECT station, MAX(received) FROM batches GROUP BY station'
                ).fetchall()
            )
        except Unavailable:
            return {}
        return {int(station): received for station, received in rows}

    def batches_since(self, since: float) -> list[Batch]:
        rows = self._call(
            lambda db: db.execute(
                'SELECT station, checksum, received, events, files FROM batches '
                'WHERE received >= %s ORDER BY received, id',
                (since,),
            ).fetchall()
        )
        return [found for found in (batch(*row) for row in rows) if found is not None]

    def check(self) -> None:
        """Raise Unavailable unless the server answers."""
        self._call(lambda db: db.execute('SELECT 1'))


def _create(db: Any) -> None:
    """The table, made once: hosts starting together take turns (CREATE ... IF NOT EXISTS can still race)."""
    with db.transaction():
        db.execute('SELECT pg_advisory_xact_lock(%s, 0)', (SCHEMA_LOCK,))
        for statement in _SCHEMA:
            db.execute(statement)
