"""A file a running process follows: the station list, config.ini.

A change is a new (mtime, size, inode) of the file, looked for no more often
than once every ``check_every`` seconds, so that following costs a request
one clock read nearly every time.
"""

from __future__ import annotations

import os
import threading
import time

Signature = tuple[int, int, int]


class Watch:
    def __init__(self, path: str, check_every: float = 1.0) -> None:
        self.path, self.check_every = path, check_every
        self.seen: Signature | None = None  # the version the follower has taken in; None: none
        self._looked = float('-inf')  # time.monotonic() of the last look
        # uWSGI may run threads: the follower holds this while it looks and reads
        self.lock = threading.Lock()

    def changed(self) -> Signature | None:
        """The file's new signature if it is time to look and it differs from ``seen``, else None.

        OSError if the file cannot be looked at; ``seen`` is then cleared, so
        that the file is read again once it is back. The follower sets
        ``seen`` once it has dealt with a version.
        """
        now = time.monotonic()
        if now - self._looked < self.check_every:
            return None
        self._looked = now
        try:
            st = os.stat(self.path)
        except OSError:
            self.seen = None
            raise
        signature = (st.st_mtime_ns, st.st_size, st.st_ino)
        return None if signature == self.seen else signature
