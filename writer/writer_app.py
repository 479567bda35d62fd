"""The writer: drains the spool into the day files that publicdb and SAPPHIRE read.

``writer(configfile)`` runs the loop: one writer per ``data_dir``
(``writer.lock``), a pass interrupted by a crash finished or undone first
(``journal``), then passes (``storepass``) until stopped, sleeping while the
queue is empty, pausing while ``data_dir/writer.pause`` exists, stopping
cleanly on SIGTERM/SIGINT. It reports its state in ``writer.status``
(``paused`` only once every day file is closed) and follows config.ini
(``config.Current``): a good new version is taken up between passes, a
broken one is logged and ignored.

It never exits over a fault it can wait out. A fault of the storage (disk
full, an I/O error, a locked day file) is waited out (state ``waiting``, with
the reason) and the pass retried; a damaged day file holds only the events
for that day. A pass that fails on its data is retried in halves until the
spool file that fails alone is found; that one goes to ``failed/``.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType

from datastore import collector, ledger, writerstate
from datastore import config as config_mod
from datastore.datadir import INCOMING, PARTIAL, WRITER_LOCK, WRITER_PAUSE, WRITER_STATUS, DataDir

from . import audit, faults, journal
from .dayfile import DayFileDamaged, DayFileLocked
from .progress import Progress
from .storepass import MIN_RETRY, Passes, Stored

log = logging.getLogger('writer')

PAUSE_POLL = 1.0  # seconds between looks at the pause file
STATUS_INTERVAL = 5.0  # seconds between status updates while idle
STORAGE_RETRY = 10.0  # seconds between tries while the storage is at fault
HOUSEKEEPING_INTERVAL = 600.0  # seconds between archive sweeps and light audits
DAY = 86400.0


# Exit statuses besides 0 (stopped) and 1 (--once left something undone)
EXIT_CONFIG = 2  # no usable configuration at start
EXIT_ALREADY_RUNNING = 3  # another writer holds writer.lock: restarting would not help


class AlreadyRunning(Exception):
    """Another writer holds ``data_dir/writer.lock``."""


class Writer:
    """The writer's loop; ``run`` until stopped (or, ``once``, drained)."""

    def __init__(self, config: config_mod.Config, current: config_mod.Current | None = None) -> None:
        self.config = config
        self.current = current  # the config file followed; None: this configuration only
        self.moved: config_mod.Config | None = None  # a new configuration with another data_dir
        self.data_dir = DataDir(config.data_dir, config.archive_dir or None)
        self.ledger = ledger.Ledger(self.data_dir)
        self.passes = Passes(config, self.data_dir, self.ledger)
        self.stop = threading.Event()
        self.state: str | None = None
        self.reason: str | None = None  # what the writer waits for
        self.status_written = 0.0
        self.housekept = 0.0
        self.events_stored = 0
        self.files_failed = 0
        self.last_stored: dict[str, int] = {}  # station id (str) -> last stored event timestamp
        self.progress: Progress | None = None
        self.once = False

    # -- the loop -----------------------------------------------------------

    def run(self, once: bool = False) -> None:
        self.once = once
        if not self.wait_out(self.data_dir.ensure):
            return
        with open(self.data_dir.path(WRITER_LOCK), 'a') as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise AlreadyRunning(f'another writer is running on {self.data_dir.root}') from None
            previous = writerstate.read(self.data_dir)
            self.last_stored = dict(previous.stations) if previous else {}
            if self.wait_out(self.recover) and self.wait_out(self.load_suspects):
                self.drain(once)

    def drain(self, once: bool) -> None:
        if once:
            self.progress = Progress.for_backlog(self.data_dir)
        while not self.stop.is_set():
            if not self.follow_config():
                break
            if self.data_dir.paused():
                if once:
                    log.info('paused (%s exists); --once stops here', WRITER_PAUSE)
                    break
                self.hold_while_paused()
                continue
            outcome = self.safe_pass()
            if outcome == 'stored':
                self.set_state('storing')
                if not once:  # when due: a queue that never empties must not hold them off
                    self.housekeeping()
            elif once:  # drained, or something waits
                break
            elif outcome == 'idle':
                self.housekeeping()
                self.idle('idle', self.config.sleep)
        if self.progress:
            self.progress.finish()

    def follow_config(self) -> bool:
        """Take up a changed configuration; False if it moves data_dir (the loop starts again there)."""
        config = self.current.get() if self.current else self.config
        if config is self.config:
            return True
        config_mod.setup_logging(config, config_mod.WRITER_LOG)
        if (config.data_dir, config.archive_dir) != (self.config.data_dir, self.config.archive_dir):
            log.info('data_dir or archive_dir changed: this writer starts again on %s', config.data_dir)
            self.moved = config
            return False
        self.config = self.passes.config = config
        return True

    def hold_while_paused(self) -> None:
        """Store nothing while writer.pause exists; say ``paused`` (every day file is closed here)."""
        if not self.data_dir.paused():
            return
        log.info('paused: %s exists; storing nothing until it is removed', self.data_dir.path(WRITER_PAUSE))
        while not self.stop.is_set() and self.data_dir.paused():
            self.idle('paused', PAUSE_POLL)
        if not self.stop.is_set():
            log.info('resumed: %s is gone', self.data_dir.path(WRITER_PAUSE))

    def request_stop(self, _signum: int | None = None, _frame: FrameType | None = None) -> None:
        self.stop.set()

    def idle(self, state: str, seconds: float, reason: str | None = None) -> None:
        self.set_state(state, reason)
        self.stop.wait(seconds)

    def wait_out(self, step: Callable[[], object]) -> bool:
        """Run ``step()`` until the storage lets it; False if stopped (or, ``--once``, it had to wait)."""
        while not self.stop.is_set():
            try:
                step()
            except DayFileLocked as exc:
                reason = f'a day file is locked by another process: {exc}'
            except Exception as exc:
                storage = faults.storage_reason(exc, self.data_dir)
                if storage is None:
                    raise
                reason = storage
            else:
                return True
            log.warning('waiting: %s', reason)
            self.reason = reason
            if self.once:
                return False
            self.idle('waiting', STORAGE_RETRY, reason)
            self.hold_while_paused()
        return False

    def load_suspects(self) -> None:
        self.passes.suspects = self.ledger.suspects()

    def recover(self) -> None:
        """Undo or finish a pass a crash (or a failure) interrupted."""
        journal.recover(self.data_dir, self.ledger, self.config.archive_days)

    def safe_pass(self) -> str:
        """One pass: 'stored' (it finished files), 'idle' (nothing to do) or 'waiting' (storage).

        The cyclic garbage collector is paused during the pass
        (``collector``): it builds some 10^5 containers (unpickled events,
        rows).
        """
        try:
            with collector.paused():
                stored = self.passes.store_pass()
        except Exception as exc:
            return self.failed_pass(exc)
        self.reason = None
        if stored is None:
            return 'idle'
        self.account(stored)
        return 'stored'

    def failed_pass(self, exc: Exception) -> str:
        """Undo a failed pass; wait if the storage is at fault, else find the spool file that fails."""
        claimed = self.passes.current
        reason = faults.storage_reason(exc, self.data_dir)
        damaged = exc if isinstance(exc, DayFileDamaged) and exc.day else None
        if damaged:  # found while writing it: keep off it
            day = str(damaged.day)
            log.error(
                'day file %s is damaged: %s; its events wait (hisparc-datastore rebuild %s)', day, exc, day
            )
            if not self.wait_out(lambda: self.ledger.mark_damaged(day, str(damaged), hard=damaged.hard)):
                return 'waiting'
        if reason is None:
            log.error('pass of %d spool file(s) failed on their data; undoing it', len(claimed), exc_info=exc)
        else:
            log.warning('pass failed, the storage is at fault: %s; undoing it', reason)
        if not self.wait_out(self.recover):
            return 'waiting'
        if damaged:
            return 'stored'  # the next pass lets that day's files wait and stores the others
        if reason is not None:
            self.reason = reason
            if not self.once:
                self.idle('waiting', STORAGE_RETRY, reason)
            return 'waiting'
        suspected: list[Stored] = []
        if not self.wait_out(
            lambda: suspected.append(self.passes.suspect(claimed, f'{type(exc).__name__}: {exc}'))
        ):
            return 'waiting'
        self.files_failed += suspected[0].failed
        return 'stored'

    def account(self, stored: Stored) -> None:
        self.events_stored += stored.events
        self.files_failed += stored.failed
        for station, last in stored.last_event.items():
            key = str(station)
            self.last_stored[key] = max(last, self.last_stored.get(key, 0))
        for code, upload in sorted(stored.unknown_codes, key=repr):
            log.warning('ignored upload code %r of event type %s: not in the layout', upload, code)
        log.info(
            'stored %d events from %d spool files in %.2f s', stored.events, stored.files, stored.seconds
        )
        if self.progress:
            self.progress.update(stored.files, stored.events)

    # -- housekeeping -------------------------------------------------------------

    def housekeeping(self, now: float | None = None) -> None:
        """Between passes, now and then: age the archive out, prune the ledger, audit lightly."""
        now = time.time() if now is None else now
        if now - self.housekept < HOUSEKEEPING_INTERVAL:
            return
        self.housekept = now
        try:
            if self.config.archive_days > 0:
                expired = self.ledger.expired_archive(now - self.config.archive_days * DAY)
                if expired:  # the ledger first: it never names an archived copy that is gone
                    self.ledger.unarchive([spool for spool, _ in expired])
                    self.data_dir.remove_archived([path for _, path in expired])
                    log.info(
                        'removed %d archived spool file(s) whose day files are older than %g days',
                        len(expired),
                        self.config.archive_days,
                    )
            self.ledger.prune(now - self.config.audit_days * DAY)
            audit.light(self.config, self.data_dir, self.ledger, now)
        except Exception:
            log.exception('housekeeping failed; trying again later')

    # -- status ---------------------------------------------------------------

    def set_state(self, state: str, reason: str | None = None) -> None:
        now = time.time()
        if (
            (state, reason) == (self.state, self.reason)
            and state != 'storing'
            and now - self.status_written < STATUS_INTERVAL
        ):
            return
        self.state, self.reason = state, reason
        self.status_written = now
        try:
            writerstate.write(
                self.data_dir,
                writerstate.WriterState(
                    pid=os.getpid(),
                    state=state,
                    updated=now,
                    events_stored=self.events_stored,
                    stations=self.last_stored,
                    reason=reason,
                ),
            )
        except OSError as exc:
            log.warning('cannot write %s: %s', self.data_dir.path(WRITER_STATUS), exc)

    def leftovers(self) -> list[str]:
        """What ``--once`` leaves undone, one line each (empty: all stored or held by the rules)."""
        lines = []
        queued = len(self.data_dir.queued(INCOMING))
        if queued and self.data_dir.paused():
            lines.append(
                f'paused ({self.data_dir.path(WRITER_PAUSE)} exists): '
                f'{queued} spool file(s) wait in {INCOMING}/'
            )
        if self.reason:
            lines.append(f'waiting: {self.reason}')
        for name, why in sorted(self.passes.waits().items()):
            lines.append(f'{name} waits in incoming/: {why}')
        left = len(self.data_dir.queued(PARTIAL))
        if left:
            lines.append(f'{left} spool file(s) wait in {PARTIAL}/ for the next run')
        if self.files_failed:
            lines.append(f'{self.files_failed} spool file(s) went to failed/ (see the log)')
        return lines


def writer(configfile: str, once: bool = False) -> None:
    """Run the writer with ``configfile`` until SIGTERM/SIGINT (or, ``once``, until drained)."""
    try:
        current = config_mod.following(configfile)
    except config_mod.ConfigError as exc:
        print(f'hisparc-writer: {exc}', file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None
    config: config_mod.Config | None = current.config
    config_mod.setup_logging(current.config, config_mod.WRITER_LOG)
    stop = threading.Event()  # shared by the writers of successive data_dirs
    while config is not None:
        app = Writer(config, current)
        app.stop = stop
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, app.request_stop)
            signal.signal(signal.SIGINT, app.request_stop)
        log.info('writer started (pid %d, data_dir %s)', os.getpid(), config.data_dir)
        try:
            app.run(once=once)
        except AlreadyRunning as exc:
            log.error('%s; this one exits', exc)
            print(f'hisparc-writer: {exc}', file=sys.stderr)
            raise SystemExit(EXIT_ALREADY_RUNNING) from None
        config = app.moved
        if config is not None:
            app.ledger.close()
    log.info('writer stopped')
    if once:
        left = app.leftovers()
        if left:
            print('hisparc-writer: not everything was stored:\n  ' + '\n  '.join(left), file=sys.stderr)
            raise SystemExit(1)


__all__ = ['EXIT_ALREADY_RUNNING', 'EXIT_CONFIG', 'MIN_RETRY', 'AlreadyRunning', 'Writer', 'writer']
