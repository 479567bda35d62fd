"""``hisparc-datastore audit``: where every event the endpoint acknowledged is now.

Every batch answered ``100`` is in the endpoint's batch record with the
spool files it became. Each spool file is accounted for when it is

- queued: in ``incoming/`` or ``partial/``;
- held: in ``suspicious/`` (the endpoint's rule), or in ``failed/``;
- stored: in the writer's ledger, with its event count, its events that went
  to suspicious/ there, and its rows in day files that really hold them
  (each node at least as long as the ledger says; ``--deep``: the rows
  identical to what its archived copy gives again).

A file held in suspicious/ (the endpoint's, or the ``-unfit`` file of
events the writer held back) may be requeued: it keeps its name, so it is
accounted for wherever it went from there, queued, failed or stored.

A batch with any spool file not accounted for is printed; the exit status
is 1 if there is any. The writer runs a light audit (not deep, the last day)
every few minutes, between passes even when the queue never empties;
``status`` shows how many batches its last one could not account for.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import datetime
import json
import logging
import os
import time
from typing import Any

import numpy as np

from datastore import ledger, received
from datastore.cli.common import Command, Failure, date, load_config
from datastore.config import Config
from datastore.datadir import FAILED, INCOMING, PARTIAL, SUSPICIOUS, DataDir

from . import replay
from .dayfile import DayFileUnavailable, node_map, open_h5

log = logging.getLogger('writer')

LIGHT_WINDOW = 86400.0  # seconds of batches the writer's light audit covers


@dataclasses.dataclass
class Result:
    since: float
    batches: int = 0
    where: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    unaccounted: list[dict[str, Any]] = dataclasses.field(default_factory=list)


class Auditor:
    """Looks up where spool files are, reading each folder, ledger entry and day file once."""

    def __init__(
        self, config: Config, data_dir: DataDir, book: ledger.Ledger, deep: bool, lock_days: bool
    ) -> None:
        self.config, self.data_dir, self.ledger, self.deep = config, data_dir, book, deep
        self.lock_days = lock_days
        self.folders = {
            name: {os.path.basename(p) for p in data_dir.queued(name)}
            for name in (INCOMING, PARTIAL, SUSPICIOUS, FAILED)
        }
        self.maps: dict[str, dict[str, int] | str] = {}

    def day_map(self, day: str) -> dict[str, int] | str:
        """The node map of ``day``'s file, or why it cannot be read."""
        if day not in self.maps:
            path = self.data_dir.day_file(*ledger.day_parts(day))
            self.ledger.settle_rebuild(day, path)
            if not os.path.exists(path):
                self.maps[day] = 'is missing'
            else:
                with self.data_dir.day_lock(day, wait=True) if self.lock_days else contextlib.nullcontext():
                    try:
                        with open_h5(path, 'r') as h5:
                            self.maps[day] = node_map(h5)
                    except DayFileUnavailable as exc:
                        self.maps[day] = f'cannot be read: {exc}'
        return self.maps[day]

    def locate(self, folder: str, name: str, events: int) -> tuple[str, str | None]:
        """(where the spool file is, problem or None).

        Wherever the endpoint put it: a file it held in suspicious/ may have
        been requeued since (the same name back in incoming/), and stored.
        """
        if folder == SUSPICIOUS and name in self.folders[SUSPICIOUS]:
            return 'held', None
        for where, names in (
            ('queued', self.folders[INCOMING] | self.folders[PARTIAL]),
            ('failed', self.folders[FAILED]),
        ):
            if name in names:
                return where, None
        entry = self.ledger.entry(name)
        if entry is None:
            held = 'not in suspicious/, not queued' if folder == SUSPICIOUS else 'not queued, not held'
            return 'missing', f'{name} is {held}, and not in the ledger'
        return 'stored', self.stored_problem(entry, events)

    def stored_problem(self, entry: ledger.SpoolEntry, events: int) -> str | None:
        """Why the stored spool file ``entry`` (``events`` events sent) is not all where it must be."""
        name = entry.spool
        if entry.events != events or entry.rows + entry.held != events:
            return (
                f'{name}: {events} events sent, the ledger has {entry.events} '
                f'({entry.rows} rows, {entry.held} held)'
            )
        if entry.held:
            problem = self.held_problem(entry)
            if problem:
                return problem
        for day, node, first, count in entry.segments:
            known = self.day_map(day)
            if isinstance(known, str):
                return f'{name}: day file {day} {known}'
            if known.get(node, -1) < first + count:
                return (
                    f'{name}: day file {day} holds {max(known.get(node, 0), 0)} rows of '
                    f'{node}, not the {first + count} its rows need'
                )
        return self.compare(entry) if self.deep else None

    def held_problem(self, entry: ledger.SpoolEntry) -> str | None:
        """Why the events the writer held back from ``entry`` (its ``-unfit`` file) are not accounted for.

        That file is in suspicious/, or requeued from there (queued, failed,
        or stored in turn, its own held events in its own ``-unfit`` file).
        """
        unfit = f'{entry.spool}-unfit'
        if any(unfit in self.folders[folder] for folder in (SUSPICIOUS, INCOMING, PARTIAL, FAILED)):
            return None
        stored = self.ledger.entry(unfit)
        if stored is None:
            return (
                f'{entry.spool}: its {entry.held} events held by the writer are not in suspicious/ '
                '(nor queued, failed or stored)'
            )
        return self.stored_problem(stored, entry.held)

    def compare(self, entry: ledger.SpoolEntry) -> str | None:
        """Why ``entry``'s rows in the day files differ from its archived copy, or None."""
        for day in sorted({day for day, _, _, _ in entry.segments}):
            try:
                segments = replay.replay(entry, day, self.config.rule)
            except replay.NotReplayable as exc:
                return None if not entry.archived else str(exc)
            path = self.data_dir.day_file(*ledger.day_parts(day))
            lock = self.data_dir.day_lock(day, wait=True) if self.lock_days else contextlib.nullcontext()
            with lock, open_h5(path, 'r') as h5:
                for segment in segments:
                    stored = h5.get_node(segment.node).read(segment.first, segment.first + len(segment.data))
                    if isinstance(segment.data, np.ndarray):
                        same = stored.tobytes() == segment.data.tobytes()
                    else:
                        same = [bytes(b) for b in stored] == list(segment.data)
                    if not same:
                        return (
                            f'{entry.spool}: rows {segment.first}-{segment.first + len(segment.data)} '
                            f'of {segment.node} in day file {day} differ from its archived copy'
                        )
        return None


def audit(
    config: Config,
    data_dir: DataDir,
    book: ledger.Ledger,
    since: float,
    deep: bool = False,
    lock_days: bool = True,
) -> Result:
    """Account for every batch acknowledged since ``since``."""
    result = Result(since)
    auditor = Auditor(config, data_dir, book, deep, lock_days)
    for batch in received.connect(config).batches_since(since):
        result.batches += 1
        problems = []
        for folder, name, events in batch.files:
            where, problem = auditor.locate(folder, name, events)
            result.where[where] += 1
            if problem:
                problems.append(problem)
        if problems:
            result.unaccounted.append(
                {
                    'station': batch.station,
                    'checksum': batch.checksum,
                    'received': batch.received,
                    'events': batch.events,
                    'problems': problems,
                }
            )
    book.record_audit(since, result.batches, result.unaccounted, deep)
    return result


def light(config: Config, data_dir: DataDir, book: ledger.Ledger, now: float) -> Result:
    """The writer's own audit between passes: the last day's batches, not deep."""
    started = time.monotonic()
    result = audit(config, data_dir, book, now - LIGHT_WINDOW, lock_days=False)
    (log.warning if result.unaccounted else log.info)(
        'audit of %d batches since %s: %d unaccounted for (%.1f s)',
        result.batches,
        _utc(result.since),
        len(result.unaccounted),
        time.monotonic() - started,
    )
    return result


def _utc(timestamp: float) -> str:
    return f'{datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc):%Y-%m-%d %H:%M:%S} UTC'


# -- the command ---------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    data_dir = DataDir(config.data_dir, config.archive_dir or None)
    since = (
        datetime.datetime.combine(args.since, datetime.time(), datetime.timezone.utc).timestamp()
        if args.since
        else time.time() - config.audit_days * 86400
    )
    try:
        result = audit(config, data_dir, ledger.Ledger(data_dir), since, deep=args.deep)
    except Exception as exc:  # sqlite3.Error, an unreadable record
        raise Failure(f'cannot audit: {type(exc).__name__}: {exc}') from None
    if args.json:
        print(json.dumps(dataclasses.asdict(result), indent=1))
    else:
        for batch in result.unaccounted:
            print(
                f'unaccounted: station {batch["station"]} batch {batch["checksum"]} of '
                f'{_utc(batch["received"])}, {batch["events"]} events'
            )
            for problem in batch['problems']:
                print(f'    {problem}')
        where = ', '.join(f'{n} {where}' for where, n in sorted(result.where.items())) or 'none'
        print(
            f'{result.batches} batch(es) acknowledged since {_utc(since)}; spool files: {where}; '
            f'{len(result.unaccounted)} batch(es) unaccounted for' + (' (deep)' if args.deep else '')
        )
    return 1 if result.unaccounted else 0


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        '--since',
        type=date,
        help='batches acknowledged on or after this UTC date (default: [General] audit_days)',
    )
    parser.add_argument(
        '--deep',
        action='store_true',
        help="also compare the stored rows with each spool file's archived copy",
    )
    parser.add_argument('--json', action='store_true', help='print the result as JSON')


COMMANDS = (
    Command(
        'audit',
        'account for every batch the endpoint acknowledged: queued, held or '
        'stored (and really in the day files); exit 1 if any is not',
        run,
        arguments,
    ),
)
