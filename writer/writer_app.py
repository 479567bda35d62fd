"""The writer: drains the spool into the day files that publicdb and SAPPHIRE read.

``writer(configfile)`` runs the loop: one writer per ``data_dir``
(``writer.lock``), a pass interrupted by a crash finished or undone first
(``journal``), then passes (``storepass``) until stopped, sleeping while the
queue is empty, pausing while ``data_dir/writer.pause`` exists, stopping
cleanly on SIGTERM/SIGINT. It reports its state in ``writer.status``.
"""

from __future__ import annotations

import fcntl
import gc
import logging
import os
import signal
import sys
import threading
import time
from types import FrameType

from datastore import config as config_mod
from datastore import writerstate
from datastore.datadir import PARTIAL, WRITER_LOCK, WRITER_PAUSE, WRITER_STATUS, DataDir

from . import journal
from .dayfile import DayFileUnavailable
from .progress import Progress
from .storepass import MIN_RETRY, Passes, Stored

log = logging.getLogger('writer')

PAUSE_POLL = 1.0  # seconds between looks at the pause file
STATUS_INTERVAL = 5.0  # seconds between status updates while idle


class AlreadyRunning(Exception):
    """Another writer holds ``data_dir/writer.lock``."""


class Writer:
    """The writer's loop; ``run`` until stopped (or, ``once``, drained)."""

    def __init__(self, config: config_mod.Config) -> None:
        self.config = config
        self.data_dir = DataDir(config.data_dir)
        self.passes = Passes(config, self.data_dir)
        self.stop = threading.Event()
        self.state: str | None = None
        self.status_written = 0.0
        self.events_stored = 0
        self.last_stored: dict[str, int] = {}  # station id (str) -> last stored event timestamp
        self.progress: Progress | None = None
        self.failed = False  # a pass failed (``--once`` then stops and says so)

    # -- the loop -----------------------------------------------------------

    def run(self, once: bool = False) -> None:
        self.data_dir.ensure()
        with open(self.data_dir.path(WRITER_LOCK), 'a') as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise AlreadyRunning(f'another writer is running on {self.data_dir.root}') from None
            previous = writerstate.read(self.data_dir)
            self.last_stored = dict(previous.stations) if previous else {}
            if self.recover():
                self.drain(once)

    def drain(self, once: bool) -> None:
        if once:
            self.progress = Progress.for_backlog(self.data_dir)
        while not self.stop.is_set():
            if self.data_dir.paused():
                if once:
                    log.info('paused (%s exists); --once stops here', WRITER_PAUSE)
                    break
                self.idle('paused', PAUSE_POLL)
                continue
            if self.safe_pass():
                self.set_state('storing')
            elif once:  # drained, or a pass failed
                break
            else:
                self.idle('idle', self.config.sleep)
        if self.progress:
            self.progress.finish()

    def request_stop(self, _signum: int | None = None, _frame: FrameType | None = None) -> None:
        self.stop.set()

    def idle(self, state: str, seconds: float) -> None:
        self.set_state(state)
        self.stop.wait(seconds)

    def recover(self) -> bool:
        """Undo or finish a pass a crash interrupted; False if stopped meanwhile."""
        while not self.stop.is_set():
            try:
                recovered = journal.recover(self.data_dir)
            except DayFileUnavailable as exc:
                log.warning('cannot undo the unfinished pass yet, day file locked: %s', exc)
                self.idle('idle', max(self.config.sleep, MIN_RETRY))
                continue
            if recovered:
                log.warning('finished the pass an earlier run left unfinished')
            return True
        return False

    def safe_pass(self) -> bool:
        """One pass; True if it finished any file.

        An unexpected error is logged, undone and retried later.

        The cyclic garbage collector is paused during the pass: the pass
        builds some 10^5 containers (unpickled events, rows) that hold no
        cycles, and collecting would scan them again and again.
        """
        gc.disable()
        try:
            stored = self.passes.store_pass()
        except Exception:
            log.exception('pass failed; undoing it and retrying later')
            self.failed = True
            self.stop.wait(max(self.config.sleep, MIN_RETRY))
            self.recover()
            return False
        finally:
            gc.enable()
        if stored is None:
            return False
        self.account(stored)
        return True

    def account(self, stored: Stored) -> None:
        self.events_stored += stored.events
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

    # -- status ---------------------------------------------------------------

    def set_state(self, state: str) -> None:
        now = time.time()
        if state == self.state and state != 'storing' and now - self.status_written < STATUS_INTERVAL:
            return
        self.state = state
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
                ),
            )
        except OSError as exc:
            log.warning('cannot write %s: %s', self.data_dir.path(WRITER_STATUS), exc)


def writer(configfile: str, once: bool = False) -> None:
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
        print(
            'hisparc-writer: a pass failed (see the log); its spool files wait in '
            f'{PARTIAL}/ for the next run',
            file=sys.stderr,
        )
        raise SystemExit(1)
