"""One pass of the writer: claim spool files, convert their events, append, commit.

A pass claims up to ``[Writer] batch_files`` spool files (oldest first) by
moving them into ``partial/``, converts their events, groups the rows per
(day file, station, table) and appends each group with one ``Table.append``.
Before it writes a day file it holds the day's lock (``rebuild`` takes the
same) and checks the file against the ledger: every node the ledger knows,
at least at its known length. A file that is locked waits; one that is
damaged is marked so, and the spool files with events for it wait in
``incoming/``. The pass is journaled first (``journal``), and counts as done
once the ledger holds it; then its spool files go to the archive.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import datetime
import logging
import os
import time
from typing import Any

from datastore import events, ledger, spoolfile, stations
from datastore.config import Config
from datastore.datadir import INCOMING, PARTIAL, SUSPICIOUS, DataDir

from . import faults, journal, rows
from .dayfile import DayFile, DayFileDamaged, DayFileLocked, append_blobs

log = logging.getLogger('writer')

MIN_RETRY = 1.0  # seconds before a file waiting for a locked day is tried again
DAMAGED_RETRY = 60.0  # seconds between looks at files waiting for a damaged day
SOFT_RECHECK = 300.0  # seconds between tries to open a day file that would not open
# A day file left as this writer's last pass closed it (same inode, size,
# mtime and ctime) holds the node map that pass recorded: it is checked
# against the ledger with that map instead of loading every node of it again,
# which costs more than the pass itself once the day has many stations. A
# full walk still comes at least this often (seconds).
MAP_TRUST = 300.0

Day = tuple[int, int, int]
BLOBS = 'blobs'  # the segment key of a station's blobs


class SpoolFile:
    """A claimed spool file: its rows, and the events it holds that cannot be stored."""

    def __init__(
        self, path: str, record: dict[str, Any], rule: events.Rule, unknown_codes: set[tuple[str, str]]
    ) -> None:
        self.path = path
        self.name = os.path.basename(path)
        self.station_id: int = record['station_id']
        self.cluster: str = record['cluster']
        self.events = len(record['event_list'])
        self.rows: list[rows.Row] = []
        sound, self.unfit = rule.split(record['event_list'])
        for event in sound:
            try:
                self.rows.append(rows.convert(event, unknown_codes))
            except rows.Unfit as exc:
                self.unfit.append((event, str(exc)))
        self.days = {ledger.day_key(*day) for day in {row.day for row in self.rows}}


def record_problem(record: dict[str, Any]) -> str | None:
    """Why a spool record cannot be stored as it is (a station or cluster that is no name)."""
    number = record['station_id']
    if not 0 <= number < 10**stations.MAX_NUMBER_DIGITS:
        return f'station number {number} out of range'
    return stations.cluster_problem(record['cluster'])


class StationRows:
    """One station's rows (per event type) and blobs for one day file in one pass."""

    def __init__(self) -> None:
        self.blobs: list[bytes] = []
        self.times: dict[str, list[tuple[int, ...]]] = collections.defaultdict(list)
        self.rows: dict[str, list[list[Any]]] = collections.defaultdict(list)
        self.blob_bases: dict[str, list[int]] = collections.defaultdict(list)
        # code (or BLOBS) -> [spool name, first offset, count], consecutive per spool file
        self.segments: dict[str, list[list[Any]]] = collections.defaultdict(list)

    def _count(self, key: str, spool: str, offset: int, count: int) -> None:
        if not count:
            return
        segments = self.segments[key]
        if segments and segments[-1][0] == spool:
            segments[-1][2] += count
        else:
            segments.append([spool, offset, count])

    def add(self, row: rows.Row, spool: str) -> None:
        code, table_rows = row.code, self.rows[row.code]
        self._count(code, spool, len(table_rows), 1)
        if row.blobs:
            self._count(BLOBS, spool, len(self.blobs), len(row.blobs))
        self.times[code].append(row.times)
        table_rows.append(row.values)
        self.blob_bases[code].append(len(self.blobs))
        self.blobs.extend(row.blobs)

    def table_rows(self, code: str, first: int, blob_base: int) -> Any:
        """The rows of type ``code`` as stored from row ``first`` on (a numpy structured array).

        Their blob cells point at the station's blobs from ``blob_base`` on.
        """
        bases = [blob_base + base for base in self.blob_bases[code]]
        return rows.PLANS[code].array(self.times[code], self.rows[code], first + 1, bases)

    def append_to(self, day_file: DayFile, cluster: str, station_id: int) -> list[tuple[str, str, int, int]]:
        """Append; return (spool, node path, first row, count) of every spool file's rows."""
        with day_file.writing():
            group = day_file.station(cluster, station_id)
            blobs = day_file.blobs(group)
            blob_base = int(blobs.nrows)
            append_blobs(blobs, self.blobs)
        written = [
            (spool, blobs._v_pathname, blob_base + offset, count)
            for spool, offset, count in self.segments[BLOBS]
        ]
        for code in self.rows:
            with day_file.writing():
                table = day_file.table(group, code)
                first = int(table.nrows)
            rows_array = self.table_rows(code, first, blob_base)  # the rows' own faults are theirs
            with day_file.writing():
                table.append(rows_array)
            written += [
                (spool, table._v_pathname, first + offset, count)
                for spool, offset, count in self.segments[code]
            ]
        return written


@dataclasses.dataclass
class Stored:
    """What a pass did."""

    files: int = 0  # spool files finished: stored, or set aside in failed/
    events: int = 0
    failed: int = 0
    last_event: dict[int, int] = dataclasses.field(default_factory=dict)  # station -> timestamp
    unknown_codes: set[tuple[str, str]] = dataclasses.field(default_factory=set)
    seconds: float = 0.0


@dataclasses.dataclass
class DayState:
    day: str
    path: str
    new: bool
    nodes: dict[str, int]  # before the pass
    file: DayFile | None = None


class Passes:
    """The writer's passes over the queue: what is queued, what waits, what is suspect."""

    def __init__(self, config: Config, data_dir: DataDir, book: ledger.Ledger) -> None:
        self.config = config
        self.data_dir = data_dir
        self.ledger = book
        self.queue: collections.deque[str] = collections.deque()
        self.waiting: dict[str, tuple[float, str]] = {}  # spool name -> (monotonic retry, why)
        self.suspects: list[list[str]] = []  # spool names to try alone (bisection); the ledger keeps them
        self.soft_checked: dict[str, float] = {}  # day -> monotonic time of the last try
        self.current: list[str] = []  # what the pass under way claimed
        # day -> (the file's signature, when, its node map) as this writer's last pass left it
        self.maps: dict[str, tuple[tuple[int, ...], float, dict[str, int]]] = {}

    # -- claiming -------------------------------------------------------------------

    def claim(self) -> list[str]:
        """Spool files for this pass: a suspect group, else those left in partial/, else the oldest queued."""
        left = self.data_dir.queued(PARTIAL)
        while self.suspects:
            group = [path for path in left if os.path.basename(path) in set(self.suspects[0])]
            if group:
                return group
            self.suspects.pop(0)
            self.ledger.set_suspects(self.suspects)
        batch, room = self.config.batch_files, self.config.batch_bytes
        if left:
            return first_within(left, batch, room)
        if not self.queue:
            self.queue.extend(self.data_dir.queued(INCOMING))
        ready: list[str] = []
        now = time.monotonic()
        while self.queue and len(ready) < batch:
            path = self.queue.popleft()
            name = os.path.basename(path)
            if name in self.waiting:
                if self.waiting[name][0] > now:
                    continue
                del self.waiting[name]
            ready.append(path)
        chosen = first_within(ready, batch, room)
        self.queue.extendleft(reversed(ready[len(chosen) :]))  # the next pass's first
        return self.data_dir.claim(chosen)

    def waits(self) -> dict[str, str]:
        """Spool files waiting for a day file, and why."""
        return {name: why for name, (_, why) in self.waiting.items()}

    def suspect(self, claimed: list[str], reason: str) -> Stored:
        """The pass of ``claimed`` failed on its data: try it again in halves.

        A spool file that fails alone is the one: it goes to failed/.
        """
        stored = Stored()
        suspects = self.suspects[1:] if self.suspects else []
        if len(claimed) == 1:
            self.fail(claimed[0], f'its pass fails: {reason}', stored)
        else:
            names = [os.path.basename(path) for path in claimed]
            half = (len(names) + 1) // 2
            suspects[:0] = [names[:half], names[half:]]
        self.ledger.set_suspects(suspects)
        self.suspects = suspects
        return stored

    # -- one pass ----------------------------------------------------------------------

    def store_pass(self) -> Stored | None:
        """Store one batch of spool files; None if there was nothing to do."""
        started = time.monotonic()
        stored = Stored()
        claimed = self.current = self.claim()
        if not claimed:
            return None
        faults.need_space(self.data_dir, sum(_size(path) for path in claimed), 'the pass')
        files = [f for f in (self.load(path, stored) for path in claimed) if f]
        with contextlib.ExitStack() as held:
            ready_days, unavailable = self.open_days({day for f in files for day in f.days}, held)
            ready = [f for f in files if not f.days & unavailable.keys()]
            self.release([f for f in files if f.days & unavailable.keys()], unavailable)
            if ready:
                self.write(ready, ready_days, stored)
        if not stored.files:
            return None
        stored.seconds = time.monotonic() - started
        return stored

    def write(self, ready: list[SpoolFile], days: dict[str, DayState], stored: Stored) -> None:
        pass_id = time.time_ns()
        today = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
        names = [f.name for f in ready]
        touched = {day for f in ready for day in f.days}
        for day in set(days) - touched:  # opened, but nothing of this pass goes there
            unused = days.pop(day)
            if unused.file is not None:
                unused.file.close()
        journal.write(
            self.data_dir,
            {
                'pass': pass_id,
                'pid': os.getpid(),
                'stored': today,
                'spool': names,
                'days': {day: {'new': state.new, 'nodes': state.nodes} for day, state in days.items()},
            },
        )
        segments: dict[str, list[tuple[str, str, int, int]]] = collections.defaultdict(list)
        after: dict[str, dict[str, int]] = {}
        try:
            opened = {
                day: state.file or DayFile(state.path, day)  # new files: once the journal names them
                for day, state in days.items()
            }
            for day, state in days.items():
                state.file = opened[day]
            for (day, cluster, station_id), station_rows in self.group(ready).items():
                for spool, node, first, count in station_rows.append_to(opened[day], cluster, station_id):
                    segments[spool].append((day, node, first, count))
            for day, state in days.items():
                after[day] = state.file.node_map_after(state.nodes)  # type: ignore[union-attr]
        finally:
            for state in days.values():
                if state.file is not None:
                    state.file.close()
        for f in ready:
            self.hold_back(f)
        archiving = self.config.archive_days > 0
        self.ledger.commit_pass(
            pass_id,
            [
                ledger.SpoolEntry(
                    f.name,
                    f.station_id,
                    f.cluster,
                    f.events,
                    len(f.unfit),
                    self.data_dir.archive_path(today, f.name) if archiving else None,
                    segments[f.name],
                )
                for f in ready
            ],
            after,
        )
        for day, state in days.items():
            self.maps[day] = (_signature(state.path), time.monotonic(), after[day])
        journal.finish(self.data_dir, {'spool': names, 'stored': today}, self.config.archive_days)
        journal.remove(self.data_dir)
        for f in ready:
            stored.events += len(f.rows)
            if f.rows:
                last = max(row.timestamp for row in f.rows)
                stored.last_event[f.station_id] = max(last, stored.last_event.get(f.station_id, 0))
        stored.files += len(ready)

    # -- spool files ---------------------------------------------------------------------

    def load(self, path: str, stored: Stored) -> SpoolFile | None:
        """The spool file at ``path``, converted; None if it went to failed/ instead."""
        try:
            record = spoolfile.load(path)  # an OSError is the storage's: waited out
        except spoolfile.SpoolError as exc:
            self.fail(path, f'unreadable spool file: {exc}', stored)
            return None
        problem = record_problem(record)
        if problem:
            self.fail(path, problem, stored)
            return None
        return SpoolFile(path, record, self.config.rule, stored.unknown_codes)

    def fail(self, path: str, reason: str, stored: Stored) -> None:
        """Set a spool file aside in failed/, byte for byte, with its reason."""
        name = os.path.basename(path)
        self.ledger.record_failure(name, reason)
        self.data_dir.fail(path)
        log.error('%s: moved to failed/: %s', name, reason)
        stored.files += 1
        stored.failed += 1

    def release(self, files: list[SpoolFile], unavailable: dict[str, tuple[float, str]]) -> None:
        """Put spool files that wait for a day file back in incoming/, with the day's retry time."""
        now = time.monotonic()
        for f in files:
            retry, why = max(unavailable[day] for day in f.days & unavailable.keys())
            self.waiting[f.name] = (now + retry, why)
        self.data_dir.release([f.path for f in files])

    @staticmethod
    def group(files: list[SpoolFile]) -> dict[tuple[str, str, int], StationRows]:
        """(day, cluster, station) -> StationRows, rows in the order of the files."""
        groups: dict[tuple[str, str, int], StationRows] = collections.defaultdict(StationRows)
        days: dict[tuple[int, int, int], str] = {}  # a pass has a day or two: each formatted once
        for f in files:
            for row in f.rows:
                day = days.get(row.day) or days.setdefault(row.day, ledger.day_key(*row.day))
                groups[day, f.cluster, f.station_id].add(row, f.name)
        return groups

    def hold_back(self, f: SpoolFile) -> None:
        """Deliver the events of ``f`` that cannot be stored to suspicious/."""
        if not f.unfit:
            return
        name = f'{f.name}-unfit'
        if not self.data_dir.holds(SUSPICIOUS, name):  # a pass redone after a crash: once
            payload = spoolfile.dumps(f.station_id, f.cluster, [event for event, _ in f.unfit])
            self.data_dir.deliver(SUSPICIOUS, name, payload)
        reasons = collections.Counter(reason for _, reason in f.unfit)
        log.error(
            '%s: %d event(s) moved to suspicious/%s: %s',
            f.name,
            len(f.unfit),
            name,
            '; '.join(f'{reason} (x{n})' if n > 1 else reason for reason, n in reasons.items()),
        )

    # -- day files -----------------------------------------------------------------------

    def open_days(
        self, days: set[str], held: contextlib.ExitStack
    ) -> tuple[dict[str, DayState], dict[str, tuple[float, str]]]:
        """Lock, open and check the day files of ``days``.

        Returns the ready ones, and for the others (seconds before a retry, why).
        """
        ready: dict[str, DayState] = {}
        unavailable: dict[str, tuple[float, str]] = {}
        damaged = self.ledger.damaged() if days else {}
        retry = max(self.config.sleep, MIN_RETRY)
        for day in sorted(days):
            damage = damaged.get(day)
            if damage and (damage.hard or time.monotonic() - self.soft_checked.get(day, 0) < SOFT_RECHECK):
                unavailable[day] = (DAMAGED_RETRY, f'day file {day} damaged: {damage.reason}')
                continue
            if not held.enter_context(self.data_dir.day_lock(day)):
                unavailable[day] = (retry, f'day file {day} is being rebuilt')
                continue
            try:
                state = self.open_day(day)
            except DayFileLocked as exc:
                log.warning('day file locked by another process; its events wait: %s', exc)
                unavailable[day] = (retry, f'day file {day} locked by another process')
                continue
            except DayFileDamaged as exc:
                self.soft_checked[day] = time.monotonic()
                self.ledger.mark_damaged(day, str(exc), hard=exc.hard)
                log.error(
                    'day file %s is damaged: %s; its events wait (hisparc-datastore rebuild %s)',
                    day,
                    exc,
                    day,
                )
                unavailable[day] = (DAMAGED_RETRY, f'day file {day} damaged: {exc}')
                continue
            if damage:
                self.ledger.clear_damage(day)
                log.warning('day file %s opens and holds what the ledger says again', day)
            if state.file is not None:
                held.callback(state.file.close)
            ready[day] = state
        return ready, unavailable

    def open_day(self, day: str) -> DayState:
        """The day file of ``day``, opened and checked against the ledger (DayFileDamaged if it fails)."""
        path = self.data_dir.day_file(*ledger.day_parts(day))
        if self.ledger.settle_rebuild(day, path):
            log.warning('finished the rebuild of %s that was interrupted after its swap', day)
        known = self.ledger.nodes(day)
        if not os.path.exists(path):
            if known:
                raise DayFileDamaged(f'the day file is gone: the ledger knows {len(known)} nodes of it')
            return DayState(day, path, new=True, nodes={})
        left = self.maps.pop(day, None)  # taken: a pass that fails leaves none behind
        # before opening: HDF5 marks a file open for writing in its superblock
        unchanged = left and left[0] == _signature(path) and time.monotonic() - left[1] < MAP_TRUST
        day_file = DayFile(path, day)
        try:
            actual = left[2] if left and unchanged else day_file.node_map()
        except BaseException:
            day_file.h5.close()
            raise
        problems = [
            f'{node} missing'
            if node not in actual
            else f'{node} has {actual[node]} rows, the ledger {length}'
            for node, length in known.items()
            if node not in actual or actual[node] < length
        ]
        if problems:
            day_file.h5.close()
            raise DayFileDamaged(f'does not hold what the ledger says: {"; ".join(problems[:5])}')
        grown = [node for node, length in actual.items() if node not in known or length > known[node]]
        if known and grown:
            log.warning(
                'day file %s grew outside this writer (%s); adopting it as it is', day, ', '.join(grown[:5])
            )
        return DayState(day, path, new=False, nodes=actual, file=day_file)


def _signature(path: str) -> tuple[int, ...]:
    """What changes whenever anything writes, replaces or truncates the file."""
    found = os.stat(path)
    return (found.st_dev, found.st_ino, found.st_size, found.st_mtime_ns, found.st_ctime_ns)


def first_within(paths: list[str], files: int, room: int) -> list[str]:
    """The first of ``paths``: at most ``files`` of them and ``room`` bytes, but at least one."""
    chosen = paths[:1]
    room -= sum(map(_size, chosen))
    for path in paths[1:files]:
        size = _size(path)
        if size > room:
            break
        room -= size
        chosen.append(path)
    return chosen


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
