"""One pass of the writer: claim spool files, convert their events, append, commit.

A pass claims up to ``[Writer] batch_files`` spool files (oldest first) by
moving them into ``partial/``, converts their events, groups the rows per
(day file, station, table) and appends each group with one ``Table.append``;
then it closes (and fsyncs) every day file so readers can open them. See
``journal`` for how a pass survives SIGKILL.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import os
import time
from typing import Any

from datastore import events, spoolfile
from datastore.config import Config
from datastore.datadir import INCOMING, PARTIAL, SUSPICIOUS, DataDir

from . import journal, layout, rows
from .dayfile import DayFile, DayFileUnavailable, append_blobs

log = logging.getLogger('writer')

MIN_RETRY = 1.0  # seconds before a file waiting for a locked day is tried again

Day = tuple[int, int, int]


class SpoolFile:
    """A claimed spool file: its rows, and the events it holds that cannot be stored."""

    def __init__(
        self, path: str, record: dict[str, Any], minimum_year: int, unknown_codes: set[tuple[str, str]]
    ) -> None:
        self.path = path
        self.name = os.path.basename(path)
        self.station_id: int = record['station_id']
        self.cluster: str = record['cluster']
        self.rows: list[rows.Row] = []
        sound, self.unfit = events.split(record['event_list'], minimum_year)
        for event in sound:
            try:
                self.rows.append(rows.convert(event, unknown_codes))
            except rows.Unfit as exc:
                self.unfit.append((event, str(exc)))
        self.days = {row.day for row in self.rows}


class StationRows:
    """One station's rows (per event type) and blobs for one day file in one pass."""

    def __init__(self) -> None:
        self.blobs: list[bytes] = []
        self.times: dict[str, list[tuple[int, ...]]] = collections.defaultdict(list)
        self.rows: dict[str, list[list[Any]]] = collections.defaultdict(list)
        self.blob_bases: dict[str, list[int]] = collections.defaultdict(list)

    def add(self, row: rows.Row) -> None:
        self.times[row.code].append(row.times)
        self.rows[row.code].append(row.values)
        self.blob_bases[row.code].append(len(self.blobs))
        self.blobs.extend(row.blobs)

    def append_to(self, day_file: DayFile, cluster: str, station_id: int) -> None:
        group = day_file.station(cluster, station_id)
        blobs = day_file.blobs(group)
        blob_base = blobs.nrows
        append_blobs(blobs, self.blobs)
        for code, table_rows in self.rows.items():
            table = day_file.table(group, code)
            bases = [blob_base + base for base in self.blob_bases[code]]
            table.append(rows.PLANS[code].array(self.times[code], table_rows, table.nrows + 1, bases))

    def node_lengths(self, day_file: DayFile, cluster: str, station_id: int) -> dict[str, int]:
        """Node path -> length (-1: absent) of every node ``append_to`` touches."""
        station = layout.station_path(cluster, station_id)
        groups = (layout.ROOT, station.rsplit('/', 1)[0], station)
        leaves = [f'{station}/{layout.BLOBS}']
        leaves += [f'{station}/{rows.PLANS[code].table}' for code in self.rows]
        lengths = {path: -1 for path in groups if day_file.node(path) is None}
        for path in leaves:
            node = day_file.node(path)
            lengths[path] = -1 if node is None else int(node.nrows)
        return lengths


@dataclasses.dataclass
class Stored:
    """What a pass stored."""

    files: int = 0
    events: int = 0
    last_event: dict[int, int] = dataclasses.field(default_factory=dict)  # station -> timestamp
    unknown_codes: set[tuple[str, str]] = dataclasses.field(default_factory=set)
    seconds: float = 0.0


class Passes:
    """The writer's passes over the queue: what is queued and what waits for a locked day."""

    def __init__(self, config: Config, data_dir: DataDir) -> None:
        self.config = config
        self.data_dir = data_dir
        self.queue: collections.deque[str] = collections.deque()
        self.waiting: dict[str, float] = {}  # spool file name -> monotonic time to retry

    def store_pass(self) -> Stored | None:
        """Store one batch of spool files; None if there was nothing to do."""
        started = time.monotonic()
        stored = Stored()
        claimed = self.claim()
        files = [f for f in (self.load(path, stored.unknown_codes) for path in claimed) if f]
        if not files:
            return stored if claimed else None
        day_files, locked = self.open_existing({day for f in files for day in f.days})
        ready = [f for f in files if not f.days & locked]
        self.release([f for f in files if f.days & locked])
        stations = self.group(ready)
        used = {day for day, _, _ in stations}
        for day in set(day_files) - used:
            day_files.pop(day).close()
        names = [f.name for f in ready]
        lengths = self.node_lengths(day_files, stations)
        journal.write(self.data_dir, names, lengths)
        try:
            for day in used - set(day_files):  # new files: only once the journal names them
                day_files[day] = DayFile(self.data_dir.day_file(*day))
            for (day, cluster, station_id), station_rows in stations.items():
                station_rows.append_to(day_files[day], cluster, station_id)
        finally:
            for day_file in day_files.values():
                day_file.close()
        for f in ready:
            self.hold_back(f)
        journal.write(self.data_dir, names, lengths, committed=True)
        self.data_dir.finish(names)
        journal.remove(self.data_dir)
        for f in ready:
            stored.events += len(f.rows)
            if f.rows:
                last = max(row.timestamp for row in f.rows)
                stored.last_event[f.station_id] = max(last, stored.last_event.get(f.station_id, 0))
        stored.files = len(ready) + len(claimed) - len(files)
        stored.seconds = time.monotonic() - started
        return stored if stored.files else None

    def node_lengths(
        self, day_files: dict[Day, DayFile], stations: dict[tuple[Day, str, int], StationRows]
    ) -> journal.Lengths:
        """Day file path -> {node path: length} before the pass; None for a new file."""
        lengths: journal.Lengths = {}
        for (day, cluster, station_id), station_rows in stations.items():
            path = self.data_dir.day_file(*day)
            if day not in day_files:
                lengths[path] = None
                continue
            known = lengths.get(path) or {}
            known.update(station_rows.node_lengths(day_files[day], cluster, station_id))
            lengths[path] = known
        return lengths

    def claim(self) -> list[str]:
        """Spool files for this pass: those left in partial/, else the oldest queued."""
        batch = self.config.batch_files
        left = self.data_dir.queued(PARTIAL)
        if left:
            return left[:batch]
        if not self.queue:
            self.queue.extend(self.data_dir.queued(INCOMING))
        chosen: list[str] = []
        now = time.monotonic()
        while self.queue and len(chosen) < batch:
            path = self.queue.popleft()
            name = os.path.basename(path)
            if self.waiting.get(name, 0) > now:
                continue
            self.waiting.pop(name, None)
            chosen.append(path)
        return self.data_dir.claim(chosen)

    def load(self, path: str, unknown_codes: set[tuple[str, str]]) -> SpoolFile | None:
        try:
            record = spoolfile.load(path)
        except (spoolfile.SpoolError, OSError) as exc:
            self.data_dir.fail(path)
            log.error('%s: unreadable spool file, moved to failed/: %s', os.path.basename(path), exc)
            return None
        return SpoolFile(path, record, self.config.minimum_year, unknown_codes)

    def open_existing(self, days: set[Day]) -> tuple[dict[Day, DayFile], set[Day]]:
        """Open the existing day files of ``days``; return them and the days that are locked."""
        day_files, locked = {}, set()
        for day in sorted(days):
            path = self.data_dir.day_file(*day)
            if not os.path.exists(path):
                continue
            try:
                day_files[day] = DayFile(path)
            except DayFileUnavailable as exc:
                log.warning('day file locked by another process (or unreadable); its events wait: %s', exc)
                locked.add(day)
        return day_files, locked

    def release(self, files: list[SpoolFile]) -> None:
        """Put spool files that wait for a locked day file back in incoming/."""
        retry = time.monotonic() + max(self.config.sleep, MIN_RETRY)
        for path in self.data_dir.release([f.path for f in files]):
            self.waiting[os.path.basename(path)] = retry

    @staticmethod
    def group(files: list[SpoolFile]) -> dict[tuple[Day, str, int], StationRows]:
        """(day, cluster, station) -> StationRows, rows in the order of the files."""
        stations: dict[tuple[Day, str, int], StationRows] = collections.defaultdict(StationRows)
        for f in files:
            for row in f.rows:
                stations[row.day, f.cluster, f.station_id].add(row)
        return stations

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
