"""``data_dir/writer.sqlite``: the writer's ledger of what it stored where.

Written by the writer only (one transaction per pass, fsynced before the
pass counts as done); read by ``status``, ``audit`` and ``rebuild``. It is the
record outside the day files that says what they must hold:

    passes(id, committed)                      a committed pass (its journal names it)
    spools(spool, pass, station, cluster, events, rows, held, archived, stored)
                                               a stored spool file: its events became
                                               ``rows`` rows, ``held`` went to suspicious/
    stored(spool, day, node, first, count)     the rows a spool file became, per node
    nodes(day, node, length)                   every node of every day file and its length
                                               (-1: a group)
    days(day, last_write, damaged, hard)       last write per day file; why it is damaged
    failed(spool, reason, time)                why a spool file went to failed/
    suspects(position, names)                  spool files a failing pass left to try alone
    rebuilds(day, inode, nodes, stored)        a rebuilt day file about to be swapped in, and what
                                               the ledger then says of it
    audits(time, since, batches, unaccounted, deep, report)

``day`` is the ISO date of the day file (``2024-05-17``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

from .datadir import LEDGER, DataDir

_SCHEMA = (
    'CREATE TABLE IF NOT EXISTS passes (id INTEGER PRIMARY KEY, committed REAL)',
    (
        'CREATE TABLE IF NOT EXISTS spools (spool TEXT PRIMARY KEY, pass INTEGER, station INTEGER, '
        'cluster TEXT, events INTEGER, rows INTEGER, held INTEGER, archived TEXT, stored REAL)'
    ),
    'CREATE INDEX IF NOT EXISTS spools_stored ON spools (stored)',
    'CREATE TABLE IF NOT EXISTS stored (spool TEXT, day TEXT, node TEXT, first INTEGER, count INTEGER)',
    'CREATE INDEX IF NOT EXISTS stored_spool ON stored (spool)',
    'CREATE INDEX IF NOT EXISTS stored_day ON stored (day, node)',
    'CREATE TABLE IF NOT EXISTS nodes (day TEXT, node TEXT, length INTEGER, PRIMARY KEY (day, node))',
    'CREATE TABLE IF NOT EXISTS days (day TEXT PRIMARY KEY, last_write REAL, damaged TEXT, hard INTEGER)',
    'CREATE TABLE IF NOT EXISTS failed (spool TEXT PRIMARY KEY, reason TEXT, time REAL)',
    'CREATE TABLE IF NOT EXISTS suspects (position INTEGER PRIMARY KEY, names TEXT)',
    'CREATE TABLE IF NOT EXISTS rebuilds (day TEXT PRIMARY KEY, inode INTEGER, nodes TEXT, stored TEXT)',
    (
        'CREATE TABLE IF NOT EXISTS audits (time REAL, since REAL, batches INTEGER, unaccounted INTEGER, '
        'deep INTEGER, report TEXT)'
    ),
)


@dataclasses.dataclass
class SpoolEntry:
    """A spool file a pass stored, and the rows it became."""

    spool: str
    station: int
    cluster: str
    events: int
    held: int
    archived: str | None
    segments: list[tuple[str, str, int, int]]  # (day, node, first row, count)

    @property
    def rows(self) -> int:
        return sum(count for _, node, _, count in self.segments if not node.endswith('/blobs'))


@dataclasses.dataclass
class Damage:
    day: str
    reason: str
    hard: bool  # only a rebuild clears it (a soft one: the file would not open; retried)


class Ledger:
    """The ledger of ``data_dir``; one connection per thread and process."""

    def __init__(self, data_dir: DataDir, readonly: bool = False) -> None:
        self.path = data_dir.path(LEDGER)
        self.readonly = readonly
        self._local = threading.local()

    def _db(self) -> sqlite3.Connection:
        local = self._local
        if getattr(local, 'db', None) is None:
            if self.readonly:
                db = sqlite3.connect(
                    f'file:{self.path}?mode=ro', uri=True, timeout=30.0, isolation_level=None
                )
            else:
                db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
                db.execute('PRAGMA journal_mode=WAL')
                # A pass counts as done once its transaction is on disk
                db.execute('PRAGMA synchronous=FULL')
                for statement in _SCHEMA:
                    db.execute(statement)
            local.db = db
        return local.db

    def close(self) -> None:
        db = getattr(self._local, 'db', None)
        if db is not None:
            db.close()
            self._local.db = None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One transaction; on any failure, COMMIT's own included, nothing of it stays readable here.

        SQLite rolls a transaction back itself on some errors (a full disk in
        WAL mode) and leaves it open on others (busy, interrupted): left open,
        this connection would read its uncommitted rows as if they were on
        disk, and ``committed()`` would call an undone pass stored.
        """
        db = self._db()
        db.execute('BEGIN IMMEDIATE')
        try:
            yield db
            db.execute('COMMIT')
        except BaseException:
            self._abandon(db)
            raise

    def _abandon(self, db: sqlite3.Connection) -> None:
        """Roll back what a failed transaction left; a connection that still holds one is closed.

        The next use opens a new connection, which reads only what is on disk.
        """
        if db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                db.execute('ROLLBACK')
        if db.in_transaction:
            self.close()

    # -- a pass -----------------------------------------------------------------

    def commit_pass(
        self,
        pass_id: int,
        spools: Iterable[SpoolEntry],
        nodes: dict[str, dict[str, int]],
        now: float | None = None,
    ) -> None:
        """Record a pass: its spool files, their rows, and the node lengths of the day files it wrote."""
        now = time.time() if now is None else now
        with self.transaction() as db:
            db.execute('INSERT INTO passes (id, committed) VALUES (?, ?)', (pass_id, now))
            for entry in spools:
                db.execute(
                    'INSERT OR REPLACE INTO spools VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
                    (
                        entry.spool,
                        pass_id,
                        entry.station,
                        entry.cluster,
                        entry.events,
                        entry.rows,
                        entry.held,
                        entry.archived,
                        now,
                    ),
                )
                db.execute('DELETE FROM stored WHERE spool = ?', (entry.spool,))
                db.executemany(
                    'INSERT INTO stored VALUES (?, ?, ?, ?, ?)',
                    [(entry.spool, *segment) for segment in entry.segments],
                )
            for day, lengths in nodes.items():
                self._set_nodes(db, day, lengths)
                db.execute(
                    'INSERT INTO days (day, last_write) VALUES (?, ?) ON CONFLICT (day) '
                    'DO UPDATE SET last_write = excluded.last_write',
                    (day, now),
                )

    @staticmethod
    def _set_nodes(db: sqlite3.Connection, day: str, lengths: dict[str, int]) -> None:
        db.executemany(
            'INSERT INTO nodes VALUES (?, ?, ?) ON CONFLICT (day, node) '
            'DO UPDATE SET length = excluded.length',
            [(day, node, length) for node, length in lengths.items()],
        )

    def plan_rebuild(
        self, day: str, inode: int, lengths: dict[str, int], stored: list[tuple[str, str, int, int]] | None
    ) -> None:
        """Note, before a rebuilt day file (file ``inode``) is swapped in, what the ledger will say.

        ``stored``: every (spool, node, first, count) of the day anew, where rows moved.
        """
        with self.transaction() as db:
            db.execute(
                'INSERT OR REPLACE INTO rebuilds VALUES (?, ?, ?, ?)',
                (day, inode, json.dumps(lengths), None if stored is None else json.dumps(stored)),
            )

    def settle_rebuild(self, day: str, path: str) -> bool:
        """Finish a noted rebuild of ``day`` if its file is the day file at ``path`` now, else forget it.

        True if a rebuild was finished: the node map, the rows' positions and
        the damage mark of the day are the rebuilt file's.
        """
        row = self._db().execute('SELECT inode, nodes, stored FROM rebuilds WHERE day = ?', (day,)).fetchone()
        if row is None:
            return False
        try:
            inode: int | None = os.stat(path).st_ino
        except FileNotFoundError:
            inode = None
        with self.transaction() as db:
            db.execute('DELETE FROM rebuilds WHERE day = ?', (day,))
            if row[0] != inode:  # the swap did not happen: the old file is the day file
                return False
            db.execute('DELETE FROM nodes WHERE day = ?', (day,))
            self._set_nodes(db, day, json.loads(row[1]))
            if row[2] is not None:
                db.execute('DELETE FROM stored WHERE day = ?', (day,))
                db.executemany(
                    'INSERT INTO stored VALUES (?, ?, ?, ?, ?)',
                    [(spool, day, node, first, count) for spool, node, first, count in json.loads(row[2])],
                )
            db.execute(
                'INSERT INTO days (day, last_write) VALUES (?, ?) ON CONFLICT (day) '
                'DO UPDATE SET last_write = excluded.last_write, damaged = NULL, hard = 0',
                (day, time.time()),
            )
        return True

    def committed(self, pass_id: int) -> bool:
        return self._db().execute('SELECT 1 FROM passes WHERE id = ?', (pass_id,)).fetchone() is not None

    # -- what it knows ------------------------------------------------------------

    def nodes(self, day: str) -> dict[str, int]:
        """{node path: length} of every node ``day``'s file is known to have (empty: unknown day)."""
        rows = self._db().execute('SELECT node, length FROM nodes WHERE day = ?', (day,))
        return dict(rows.fetchall())

    def days(self) -> list[str]:
        return [day for (day,) in self._db().execute('SELECT DISTINCT day FROM nodes ORDER BY day')]

    def entry(self, spool: str) -> SpoolEntry | None:
        db = self._db()
        row = db.execute(
            'SELECT spool, station, cluster, events, held, archived FROM spools WHERE spool = ?', (spool,)
        ).fetchone()
        if row is None:
            return None
        segments = db.execute(
            'SELECT day, node, first, count FROM stored WHERE spool = ? ORDER BY day, node, first', (spool,)
        ).fetchall()
        spool_, station, cluster, events, held, archived = row
        return SpoolEntry(
            spool_,
            station,
            cluster,
            events,
            held,
            archived,
            segments=[(day, node, first, count) for day, node, first, count in segments],
        )

    def entries_of_day(self, day: str) -> list[SpoolEntry]:
        """Every recorded spool file with rows in ``day``'s file, in the order of their passes."""
        names = [
            name
            for (name,) in self._db().execute(
                'SELECT DISTINCT stored.spool FROM stored JOIN spools ON spools.spool = stored.spool '
                'WHERE stored.day = ? ORDER BY spools.pass, stored.spool',
                (day,),
            )
        ]
        return [entry for entry in map(self.entry, names) if entry is not None]

    def stored_since(self, since: float) -> dict[str, SpoolEntry]:
        names = [
            name for (name,) in self._db().execute('SELECT spool FROM spools WHERE stored >= ?', (since,))
        ]
        return {name: entry for name, entry in zip(names, map(self.entry, names)) if entry}

    # -- damage -------------------------------------------------------------------

    def mark_damaged(self, day: str, reason: str, hard: bool) -> None:
        with self.transaction() as db:
            db.execute(
                'INSERT INTO days (day, damaged, hard) VALUES (?, ?, ?) ON CONFLICT (day) '
                'DO UPDATE SET damaged = excluded.damaged, hard = MAX(COALESCE(hard, 0), '
                'excluded.hard)',
                (day, reason, int(hard)),
            )

    def clear_damage(self, day: str) -> None:
        with self.transaction() as db:
            db.execute('UPDATE days SET damaged = NULL, hard = 0 WHERE day = ?', (day,))

    def damaged(self) -> dict[str, Damage]:
        rows = self._db().execute('SELECT day, damaged, hard FROM days WHERE damaged IS NOT NULL')
        return {day: Damage(day, reason, bool(hard)) for day, reason, hard in rows}

    # -- failed spool files -----------------------------------------------------------

    def record_failure(self, spool: str, reason: str) -> None:
        with self.transaction() as db:
            db.execute('INSERT OR REPLACE INTO failed VALUES (?, ?, ?)', (spool, reason, time.time()))

    def failure(self, spool: str) -> str | None:
        row = self._db().execute('SELECT reason FROM failed WHERE spool = ?', (spool,)).fetchone()
        return None if row is None else row[0]

    def suspects(self) -> list[list[str]]:
        """The groups of spool files a failing pass left to try on their own, in order."""
        rows = self._db().execute('SELECT names FROM suspects ORDER BY position')
        return [json.loads(names) for (names,) in rows]

    def set_suspects(self, groups: list[list[str]]) -> None:
        with self.transaction() as db:
            db.execute('DELETE FROM suspects')
            db.executemany(
                'INSERT INTO suspects VALUES (?, ?)',
                [(i, json.dumps(group)) for i, group in enumerate(groups)],
            )

    # -- the archive ------------------------------------------------------------------

    def expired_archive(self, before: float) -> list[tuple[str, str]]:
        """(spool, archived path) of archived spool files whose time is up.

        That is: every day file they went into was last written before
        ``before`` (and those that became no rows were stored before it).
        """
        return (
            self._db()
            .execute(
                'SELECT spools.spool, spools.archived FROM spools WHERE archived IS NOT NULL '
                'AND stored < ? AND NOT EXISTS (SELECT 1 FROM stored JOIN days ON days.day = stored.day '
                'WHERE stored.spool = spools.spool AND days.last_write >= ?)',
                (before, before),
            )
            .fetchall()
        )

    def unarchive(self, spools: list[str]) -> None:
        with self.transaction() as db:
            db.executemany('UPDATE spools SET archived = NULL WHERE spool = ?', [(s,) for s in spools])

    def prune(self, before: float) -> None:
        """Forget spool files stored before ``before`` that are no longer archived."""
        with self.transaction() as db:
            db.execute(
                'DELETE FROM stored WHERE spool IN '
                '(SELECT spool FROM spools WHERE stored < ? AND archived IS NULL)',
                (before,),
            )
            db.execute('DELETE FROM spools WHERE stored < ? AND archived IS NULL', (before,))
            db.execute('DELETE FROM passes WHERE committed < ?', (before,))
            db.execute('DELETE FROM failed WHERE time < ?', (before,))
            db.execute('DELETE FROM audits WHERE time < ?', (before,))

    # -- audits -----------------------------------------------------------------------

    def record_audit(self, since: float, batches: int, unaccounted: list[dict[str, Any]], deep: bool) -> None:
        with self.transaction() as db:
            db.execute(
                'INSERT INTO audits VALUES (?, ?, ?, ?, ?, ?)',
                (time.time(), since, batches, len(unaccounted), int(deep), json.dumps(unaccounted[:100])),
            )

    def stored_per_hour(self, since: float) -> dict[int, int]:
        """{start of an hour (unix time): rows stored in it} since ``since``."""
        rows = self._db().execute(
            'SELECT CAST(stored / 3600 AS INTEGER) * 3600, SUM(rows) FROM spools WHERE stored >= ? '
            'GROUP BY 1',
            (since,),
        )
        return {int(hour): int(count) for hour, count in rows}

    def last_audit(self) -> dict[str, Any] | None:
        row = (
            self._db()
            .execute('SELECT time, since, batches, unaccounted, deep FROM audits ORDER BY time DESC LIMIT 1')
            .fetchone()
        )
        if row is None:
            return None
        return dict(zip(('time', 'since', 'batches', 'unaccounted', 'deep'), row))


def day_key(year: int, month: int, day: int) -> str:
    return f'{year:04d}-{month:02d}-{day:02d}'


def day_parts(key: str) -> tuple[int, int, int]:
    year, month, day = (int(part) for part in key.split('-'))
    return year, month, day
