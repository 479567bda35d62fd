"""``data_dir``: every path in it and every move between its folders.

The endpoint, the writer and the tools name no path of their own: they ask
here, and hand files over with the verbs below (as ``mailbox.Maildir`` owns
its folders). Every move is durable (``durable``): done and fsynced, or not
done.

Folders (the spool, ``spec/spool.md``):

- ``tmp/``        a spool file being written; never read by the writer
- ``incoming/``   complete, durable batches waiting for the writer
- ``suspicious/`` events held back for review
- ``partial/``    batches the writer has claimed and is storing
- ``failed/``     spool files the writer could not store, kept byte for byte
"""

from __future__ import annotations

import os
import secrets
import time

from . import durable

TMP = 'tmp'
INCOMING = 'incoming'
SUSPICIOUS = 'suspicious'
PARTIAL = 'partial'
FAILED = 'failed'
FOLDERS = (TMP, INCOMING, SUSPICIOUS, PARTIAL, FAILED)

# Files that one process writes and others read
RECEIVED = 'received.sqlite'  # endpoint: the batches each station delivered
LOCKS = 'locks'  # endpoint: per-station lock files
WRITER_STATUS = 'writer.status'  # writer: its state, as JSON
WRITER_PAUSE = 'writer.pause'  # operator: while it exists the writer stores nothing
WRITER_LOCK = 'writer.lock'  # writer: held while a writer runs
WRITER_JOURNAL = 'writer.journal'  # writer: what the current pass is changing


def unique_name(station_id: int) -> str:
    """A spool file name: sorts by time of writing; unique across processes and hosts."""
    return f'{time.time_ns():020d}_{station_id}_{os.getpid()}_{secrets.token_hex(4)}'


class DataDir:
    """The folder tree under ``root`` (``[General] data_dir``)."""

    def __init__(self, root: str) -> None:
        self.root = root

    def __repr__(self) -> str:
        return f'DataDir({self.root!r})'

    # -- names ----------------------------------------------------------------

    def path(self, name: str) -> str:
        """A file or folder directly under ``data_dir`` (the names above)."""
        return os.path.join(self.root, name)

    folder = path

    def day_file(self, year: int, month: int, day: int) -> str:
        """``data_dir/{year}/{month}/{year}_{month}_{day}.h5``, no zero padding."""
        return f'{self.root}/{year}/{month}/{year}_{month}_{day}.h5'

    def ensure(self, *names: str) -> None:
        """Create the folders ``names`` (default: every spool folder) where missing."""
        for name in names or FOLDERS:
            os.makedirs(self.folder(name), exist_ok=True)

    def holds(self, folder: str, name: str) -> bool:
        return os.path.exists(os.path.join(self.folder(folder), name))

    def queued(self, name: str = INCOMING) -> list[str]:
        """Paths of the files waiting in folder ``name``, oldest first."""
        try:
            entries = [e for e in os.scandir(self.folder(name)) if e.is_file()]
        except FileNotFoundError:
            return []
        entries.sort(key=lambda e: (e.stat().st_mtime_ns, e.name))
        return [e.path for e in entries]

    # -- hand-overs -------------------------------------------------------------

    def deliver(self, target: str, name: str, payload: bytes) -> str:
        """Write ``payload`` durably as ``target/name``, by way of ``tmp/``.

        Missing folders are created (the first delivery, or one removed since).
        """
        paths = (os.path.join(self.folder(TMP), name), os.path.join(self.folder(target), name))
        try:
            return durable.write(*paths, payload)
        except FileNotFoundError:  # checked only on failure: no mkdir per upload
            self.ensure(TMP, target)
            return durable.write(*paths, payload)

    def claim(self, paths: list[str]) -> list[str]:
        """Move queued files into ``partial/`` (the writer's); those gone meanwhile are skipped."""
        return durable.move_all(paths, self.folder(PARTIAL))

    def release(self, paths: list[str]) -> list[str]:
        """Give claimed files back to ``incoming/``."""
        return durable.move_all(paths, self.folder(INCOMING))

    def requeue(self, path: str) -> str:
        """Move a reviewed file from ``suspicious/`` back to ``incoming/``."""
        self.ensure(INCOMING)
        return durable.move(path, os.path.join(self.folder(INCOMING), os.path.basename(path)))

    def fail(self, path: str) -> str:
        """Move a spool file that cannot be stored to ``failed/``, byte for byte."""
        self.ensure(FAILED)
        return durable.move(path, os.path.join(self.folder(FAILED), os.path.basename(path)))

    def finish(self, names: list[str]) -> None:
        """Remove stored spool files from ``partial/``."""
        durable.remove_all([os.path.join(self.folder(PARTIAL), name) for name in names])

    # -- the operator's pause ---------------------------------------------------

    def paused(self) -> bool:
        return os.path.exists(self.path(WRITER_PAUSE))

    def pause(self) -> bool:
        """Ask the writer to pause; False if it already was."""
        if self.paused():
            return False
        os.makedirs(self.root, exist_ok=True)
        with open(self.path(WRITER_PAUSE), 'a', encoding='utf-8'):
            pass
        return True

    def resume(self) -> bool:
        """Let the writer go on; False if it was not paused."""
        try:
            os.unlink(self.path(WRITER_PAUSE))
        except FileNotFoundError:
            return False
        return True
