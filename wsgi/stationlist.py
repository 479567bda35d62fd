"""The station list as the endpoint sees it: read once, re-read when the file changes.

The public database regenerates the list whenever a station is added or
changed; the running endpoint follows it within ``check_every`` seconds,
without a restart. A change is a new (mtime, size, inode) of the file.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from datastore import stations
from datastore.protocol import Refused

log = logging.getLogger(__name__)


class StationListUnreadable(Refused):
    """The station list cannot be read (reply 404: the server's own storage)."""


class StationList:
    def __init__(self, path: str, check_every: float = 1.0) -> None:
        self.path, self.check_every = path, check_every
        self._stations: dict[int, stations.Station] = {}
        self._signature: tuple[int, int, int] | None = None
        self._error: str | None = None
        self._next_check = 0.0
        self._lock = threading.Lock()  # uWSGI may run threads

    def current(self) -> dict[int, stations.Station]:
        """{number: Station}, re-read first if the file changed; StationListUnreadable if unreadable."""
        with self._lock:
            now = time.monotonic()
            if now >= self._next_check:
                self._refresh()
                self._next_check = now + self.check_every
        if self._error:
            raise StationListUnreadable(self._error)
        return self._stations

    def _refresh(self) -> None:
        try:
            st = os.stat(self.path)
            signature = (st.st_mtime_ns, st.st_size, st.st_ino)
            if signature == self._signature:
                return
            found, problems = stations.read(self.path)
        except OSError as exc:
            error = f'station list {self.path} is unreadable: {exc.strerror or exc}'
            if error != self._error:
                log.error('%s; uploads answer 404 until it is back', error)
            self._error, self._signature = error, None
            return
        for lineno, problem in problems:
            log.warning('station list %s line %d skipped: %s', self.path, lineno, problem)
        log.info('station list %s read: %d stations', self.path, len(found))
        self._stations, self._signature, self._error = found, signature, None
