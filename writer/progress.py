"""A one-line progress bar on stderr for ``hisparc-writer --once`` on a terminal."""

from __future__ import annotations

import sys
import time

from datastore.datadir import INCOMING, PARTIAL, DataDir

MIN_FILES = 20  # shown from this backlog on


class Progress:
    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self.events = 0
        self.started = time.monotonic()

    @classmethod
    def for_backlog(cls, data_dir: DataDir) -> Progress | None:
        if not sys.stderr.isatty():
            return None
        total = sum(len(data_dir.queued(name)) for name in (INCOMING, PARTIAL))
        return cls(total) if total >= MIN_FILES else None

    def update(self, files: int, events: int) -> None:
        self.done += files
        self.events += events
        rate = self.events / max(time.monotonic() - self.started, 1e-9)
        width = 30
        filled = width * min(self.done, self.total) // max(self.total, 1)
        sys.stderr.write(
            f'\r[{"#" * filled}{"." * (width - filled)}] '
            f'{self.done}/{self.total} files, {rate:,.0f} events/s '
        )
        sys.stderr.flush()

    def finish(self) -> None:
        sys.stderr.write('\n')
