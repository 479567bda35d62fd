"""The station list as the endpoint sees it: read once, re-read when the file changes.

The public database regenerates the list whenever a station is added or
changed; the running endpoint follows it (``datastore.watch``) within
``check_every`` seconds, without a restart.
"""

from __future__ import annotations

import logging

from datastore import stations
from datastore.protocol import Refused
from datastore.watch import Watch

log = logging.getLogger(__name__)


class StationListUnreadable(Refused):
    """The station list cannot be read (reply 404: the server's own storage)."""


class StationList:
    def __init__(self, path: str, check_every: float = 1.0) -> None:
        self.path = path
        self.watch = Watch(path, check_every)
        self._stations: dict[int, stations.Station] = {}
        self._error: str | None = None

    def current(self) -> dict[int, stations.Station]:
        """{number: Station}, re-read first if the file changed; StationListUnreadable if unreadable."""
        with self.watch.lock:
            self._refresh()
        if self._error:
            raise StationListUnreadable(self._error)
        return self._stations

    def _refresh(self) -> None:
        try:
            signature = self.watch.changed()
            if signature is None:
                return
            found, problems = stations.read(self.path)
        except OSError as exc:
            error = f'station list {self.path} is unreadable: {exc.strerror or exc}'
            if error != self._error:
                log.error('%s; uploads answer 404 until it is back', error)
            self._error, self.watch.seen = error, None
            return
        for lineno, problem in problems:
            log.warning('station list %s line %d skipped: %s', self.path, lineno, problem)
        log.info('station list %s read: %d stations', self.path, len(found))
        self._stations, self.watch.seen, self._error = found, signature, None
