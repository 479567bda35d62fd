"""The writer: drains the spool into the day files that publicdb and SAPPHIRE read.

A pass claims up to ``[Writer] batch_files`` spool files (oldest first) by
renaming them into ``partial/``, converts their events, groups them per
(day file, station, table) and appends each group with one ``Table.append``;
then it closes every day file so readers can open them. See ``journal`` for
how a pass survives SIGKILL. Between passes the writer sleeps, pauses while
``data_dir/writer.pause`` exists, and stops cleanly on SIGTERM/SIGINT.
"""
import collections
import fcntl
import gc
import json
import logging
import os
import signal
import sys
import threading
import time

from datastore import config as config_mod
from datastore import spool
from . import journal, layout, rows
from .datafile import DayFile, Unavailable, append_blobs

log = logging.getLogger('writer')

LOCK = 'writer.lock'        # held while a writer runs: one writer per data_dir
PAUSE_POLL = 1.0            # seconds between looks at the pause file
STATUS_INTERVAL = 5.0       # seconds between status updates while idle
MIN_RETRY = 1.0             # seconds before a file waiting for a locked day is tried again
PROGRESS_MIN_FILES = 20     # --once shows a progress bar from this backlog on


class AlreadyRunning(Exception):
    """Another writer holds ``data_dir/writer.lock``."""


class SpoolFile:
    """A claimed spool file and its events, converted."""

    def __init__(self, path, record, minimum_year, unknown_codes):
        self.path = path
        self.name = os.path.basename(path)
        self.station_id = record['station_id']
        self.cluster = record['cluster']
        self.rows = []          # (code, day, times, row, blobs)
        self.unfit = []         # (event, reason)
        for event in record['event_list']:
            try:
                self.rows.append(rows.convert(event, minimum_year, unknown_codes))
            except rows.Unfit as exc:
                self.unfit.append((event, str(exc)))
        self.days = {converted[1] for converted in self.rows}


class StationRows:
    """One station's rows (per event type) and blobs for one day file in one pass."""

    def __init__(self):
        self.blobs = []
        self.times = collections.defaultdict(list)
        self.rows = collections.defaultdict(list)
        self.blob_bases = collections.defaultdict(list)

    def add(self, code, times, row, blobs):
        self.times[code].append(times)
        self.rows[code].append(row)
        self.blob_bases[code].append(len(self.blobs))
        self.blobs.extend(blobs)

    def append_to(self, day_file, cluster, station_id):
        group = day_file.station(cluster, station_id)
        blobs = day_file.blobs(group)
        blob_base = blobs.nrows
        append_blobs(blobs, self.blobs)
        for code, table_rows in self.rows.items():
            table = day_file.table(group, code)
            bases = [blob_base + base for base in self.blob_bases[code]]
            table.append(rows.PLANS[code].array(self.times[code], table_rows, table.nrows + 1, bases))

    def node_lengths(self, day_file, cluster, station_id):
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


class Writer:
    """The writer's loop and passes; ``run`` until stopped (or, ``once``, drained)."""

    def __init__(self, config):
        self.config = config
        self.data_dir = config.data_dir
        self.stop = threading.Event()
        self.queue = collections.deque()
        self.waiting = {}           # spool file name -> monotonic time to retry
        self.state = None
        self.status_written = 0.0
        self.events_stored = 0
        self.last_stored = {}       # station id (str) -> last stored event timestamp
        self.progress = None
        self.failed = False         # a pass failed (``--once`` then stops and says so)

    # -- the loop -----------------------------------------------------------

    def run(self, once=False):
        spool.ensure_folders(self.data_dir)
        with open(os.path.join(self.data_dir, LOCK), 'a') as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise AlreadyRunning(f'another writer is running on {self.data_dir}') from None
            self.last_stored = previous_last_stored(self.data_dir)
            if self.recover():
                self.drain(once)

    def drain(self, once):
        if once:
            self.progress = Progress.for_backlog(self.data_dir)
        while not self.stop.is_set():
            if os.path.exists(os.path.join(self.data_dir, spool.WRITER_PAUSE)):
                if once:
                    log.info('paused (%s exists); --once stops here', spool.WRITER_PAUSE)
                    break
                self.idle('paused', PAUSE_POLL)
                continue
            if self.safe_pass():
                self.set_state('storing')
            elif once:                  # drained, or a pass failed
                break
            else:
                self.idle('idle', self.config.sleep)
        if self.progress:
            self.progress.finish()

    def request_stop(self, signum=None, frame=None):
        self.stop.set()

    def idle(self, state, seconds):
        self.set_state(state)
        self.stop.wait(seconds)

    def recover(self):
        """Undo or finish a pass a crash interrupted; False if stopped meanwhile."""
        while not self.stop.is_set():
            try:
                if journal.recover(self.data_dir):
                    log.warning('finished the pass an earlier run left unfinished')
                return True
            except Unavailable as exc:
                log.warning('cannot undo the unfinished pass yet, day file locked: %s', exc)
                self.idle('idle', max(self.config.sleep, MIN_RETRY))
        return False

    def safe_pass(self):
        """One pass; an unexpected error is logged, undone and retried later.

        The cyclic garbage collector is paused during the pass: the pass
        builds some 10^5 containers (unpickled events, rows) that hold no
        cycles, and collecting would scan them again and again.
        """
        gc.disable()
        try:
            return self.store_pass()
        except Exception:
            log.exception('pass failed; undoing it and retrying later')
            self.failed = True
            self.stop.wait(max(self.config.sleep, MIN_RETRY))
            self.recover()
            return False
        finally:
            gc.enable()

    # -- one pass -----------------------------------------------------------

    def store_pass(self):
        """Store one batch of spool files; True if any were finished (or failed)."""
        started = time.monotonic()
        unknown_codes = set()
        claimed = self.claim()
        files = [f for f in (self.load(path, unknown_codes) for path in claimed) if f]
        if not files:
            return bool(claimed)
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
            for day in used - set(day_files):       # new files: only once the journal names them
                day_files[day] = DayFile(layout.day_file(self.data_dir, *day))
            for (day, cluster, station_id), station_rows in stations.items():
                station_rows.append_to(day_files[day], cluster, station_id)
        finally:
            for day_file in day_files.values():
                day_file.close()
        for f in ready:
            self.hold_back(f)
        journal.write(self.data_dir, names, lengths, committed=True)
        journal.remove_spool_files(self.data_dir, names)
        journal.remove(self.data_dir)
        self.account(ready, unknown_codes, time.monotonic() - started)
        return bool(ready) or len(files) < len(claimed)

    def node_lengths(self, day_files, stations):
        """Day file path -> {node path: length} before the pass; None for a new file."""
        lengths = {}
        for (day, cluster, station_id), station_rows in stations.items():
            path = layout.day_file(self.data_dir, *day)
            if day not in day_files:
                lengths[path] = None
            else:
                lengths.setdefault(path, {}).update(
                    station_rows.node_lengths(day_files[day], cluster, station_id))
        return lengths

    def claim(self):
        """Spool files for this pass: those left in partial/, else the oldest queued."""
        batch = self.config.batch_files
        left = spool.queued(self.data_dir, spool.PARTIAL)
        if left:
            return left[:batch]
        partial = spool.folder(self.data_dir, spool.PARTIAL)
        if not self.queue:
            self.queue.extend(spool.queued(self.data_dir, spool.INCOMING))
        claimed = []
        now = time.monotonic()
        while self.queue and len(claimed) < batch:
            path = self.queue.popleft()
            name = os.path.basename(path)
            if self.waiting.get(name, 0) > now:
                continue
            self.waiting.pop(name, None)
            try:
                os.rename(path, os.path.join(partial, name))
            except FileNotFoundError:
                continue
            claimed.append(os.path.join(partial, name))
        if claimed:
            spool.fsync_dir(partial)
        return claimed

    def load(self, path, unknown_codes):
        try:
            record = spool.load(path)
        except (spool.SpoolError, OSError) as exc:
            name = os.path.basename(path)
            os.rename(path, os.path.join(spool.folder(self.data_dir, spool.FAILED), name))
            log.error('%s: unreadable spool file, moved to failed/: %s', name, exc)
            return None
        return SpoolFile(path, record, self.config.minimum_year, unknown_codes)

    def open_existing(self, days):
        """Open the existing day files of ``days``; return them and the days that are locked."""
        day_files, locked = {}, set()
        for day in sorted(days):
            path = layout.day_file(self.data_dir, *day)
            if not os.path.exists(path):
                continue
            try:
                day_files[day] = DayFile(path)
            except Unavailable as exc:
                log.warning('day file locked by another process (or unreadable); '
                            'its events wait: %s', exc)
                locked.add(day)
        return day_files, locked

    def release(self, files):
        """Put spool files that wait for a locked day file back in incoming/."""
        incoming = spool.folder(self.data_dir, spool.INCOMING)
        retry = time.monotonic() + max(self.config.sleep, MIN_RETRY)
        for f in files:
            os.rename(f.path, os.path.join(incoming, f.name))
            self.waiting[f.name] = retry
        if files:
            spool.fsync_dir(incoming)

    @staticmethod
    def group(files):
        """(day, cluster, station) -> StationRows, rows in the order of the files."""
        stations = collections.defaultdict(StationRows)
        for f in files:
            for code, day, times, row, blobs in f.rows:
                stations[day, f.cluster, f.station_id].add(code, times, row, blobs)
        return stations

    def hold_back(self, f):
        """Deliver the events of ``f`` that cannot be stored to suspicious/."""
        if not f.unfit:
            return
        name = f'{f.name}-unfit'
        if not os.path.exists(os.path.join(spool.folder(self.data_dir, spool.SUSPICIOUS), name)):
            leftover = os.path.join(spool.folder(self.data_dir, spool.TMP), name)
            if os.path.exists(leftover):        # from a pass killed while delivering
                os.unlink(leftover)
            payload = spool.dumps(f.station_id, f.cluster, [event for event, _ in f.unfit])
            spool.deliver(self.data_dir, spool.SUSPICIOUS, name, payload)
        reasons = collections.Counter(reason for _, reason in f.unfit)
        log.error('%s: %d event(s) moved to suspicious/%s: %s', f.name, len(f.unfit), name,
                  '; '.join(f'{reason} (x{n})' if n > 1 else reason
                            for reason, n in reasons.items()))

    def account(self, files, unknown_codes, seconds):
        events = 0
        for f in files:
            events += len(f.rows)
            if f.rows:
                last = max(converted[2][0] for converted in f.rows)
                key = str(f.station_id)
                self.last_stored[key] = max(last, self.last_stored.get(key, 0))
        self.events_stored += events
        for code, upload in sorted(unknown_codes, key=repr):
            log.warning('ignored upload code %r of event type %s: not in the layout', upload, code)
        log.info('stored %d events from %d spool files in %.2f s', events, len(files), seconds)
        if self.progress:
            self.progress.update(len(files), events)

    # -- status ---------------------------------------------------------------

    def set_state(self, state):
        now = time.time()
        if state == self.state and state != 'storing' \
                and now - self.status_written < STATUS_INTERVAL:
            return
        self.state = state
        self.status_written = now
        status = {'pid': os.getpid(), 'state': state, 'updated': now,
                  'stations': self.last_stored, 'events_stored': self.events_stored}
        path = os.path.join(self.data_dir, spool.WRITER_STATUS)
        try:
            with open(path + '.tmp', 'w', encoding='utf-8') as f:
                json.dump(status, f)
            os.replace(path + '.tmp', path)
        except OSError as exc:
            log.warning('cannot write %s: %s', path, exc)


def previous_last_stored(data_dir):
    """The last stored event per station that an earlier writer reported.

    Carried over so ``status`` keeps every station across restarts; an
    absent or unreadable status file just starts afresh.
    """
    try:
        with open(os.path.join(data_dir, spool.WRITER_STATUS), encoding='utf-8') as f:
            stations = json.load(f)['stations']
        return {str(station): int(when) for station, when in stations.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


class Progress:
    """A one-line progress bar on stderr for ``--once`` on a terminal."""

    def __init__(self, total):
        self.total = total
        self.done = 0
        self.events = 0
        self.started = time.monotonic()

    @classmethod
    def for_backlog(cls, data_dir):
        if not sys.stderr.isatty():
            return None
        total = sum(len(spool.queued(data_dir, name)) for name in (spool.INCOMING, spool.PARTIAL))
        return cls(total) if total >= PROGRESS_MIN_FILES else None

    def update(self, files, events):
        self.done += files
        self.events += events
        rate = self.events / max(time.monotonic() - self.started, 1e-9)
        width = 30
        filled = width * min(self.done, self.total) // max(self.total, 1)
        sys.stderr.write(f'\r[{"#" * filled}{"." * (width - filled)}] '
                         f'{self.done}/{self.total} files, {rate:,.0f} events/s ')
        sys.stderr.flush()

    def finish(self):
        sys.stderr.write('\n')


def writer(configfile, once=False):
    """Run the writer with ``configfile`` until SIGTERM/SIGINT (or, ``once``, until drained)."""
    try:
        config = config_mod.load(configfile)
    except config_mod.ConfigError as exc:
        print(f'hisparc-writer: {exc}', file=sys.stderr)
        raise SystemExit(2) from None
    config_mod.setup_logging(config, '-writer')
    app = Writer(config)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, app.request_stop)
        signal.signal(signal.SIGINT, app.request_stop)
    log.info('writer started (pid %d, data_dir %s)', os.getpid(), config.data_dir)
    try:
        app.run(once=once)
    except AlreadyRunning as exc:
        log.error('%s; this one exits', exc)
        print(f'hisparc-writer: {exc}', file=sys.stderr)
        raise SystemExit(1) from None
    log.info('writer stopped')
    if once and app.failed:
        print('hisparc-writer: a pass failed (see the log); its spool files wait in '
              f'{spool.PARTIAL}/ for the next run', file=sys.stderr)
        raise SystemExit(1)
