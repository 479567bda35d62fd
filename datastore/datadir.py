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
- ``archive/``    stored spool files, kept ``[Writer] archive_days`` to rebuild day files
                  from (``[Writer] archive_dir`` may put it on another disk)
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import secrets
import shutil
import time
from collections.abc import Iterator

from . import durable

TMP = 'tmp'
INCOMING = 'incoming'
SUSPICIOUS = 'suspicious'
PARTIAL = 'partial'
FAILED = 'failed'
FOLDERS = (TMP, INCOMING, SUSPICIOUS, PARTIAL, FAILED)
ARCHIVE = 'archive'

# Files that one process writes and others read
RECEIVED = 'received.sqlite'  # endpoint: the batches each station delivered
LOCKS = 'locks'  # endpoint and writer: per-station and per-day lock files
WRITER_STATUS = 'writer.status'  # writer: its state, as JSON
WRITER_PAUSE = 'writer.pause'  # operator: while it exists the writer stores nothing
WRITER_LOCK = 'writer.lock'  # writer: held while a writer runs
WRITER_JOURNAL = 'writer.journal'  # writer: what the current pass is changing
LEDGER = 'writer.sqlite'  # writer: what it stored where (datastore.ledger)


def unique_name(station_id: int) -> str:
    """A spool file name: sorts by time of writing; unique across processes and hosts."""
    return f'{time.time_ns():020d}_{station_id}_{os.getpid()}_{secrets.token_hex(4)}'


class DataDir:
    """The folder tree under ``root`` (``[General] data_dir``)."""

    def __init__(self, root: str, archive: str | None = None) -> None:
        self.root = root
        self.archive_root = archive or os.path.join(root, ARCHIVE)

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

    @staticmethod
    def beside(day_file: str, purpose: str) -> str:
        """A file next to a day file that publicdb's scan for ``*.h5`` does not pick up."""
        return f'{day_file}.{purpose}'

    def day_lock(self, day: str, wait: bool = False) -> contextlib.AbstractContextManager[bool]:
        """Hold ``locks/day-DAY.lock``: the writer and ``rebuild`` take turns on a day file."""
        return self.lock(f'day-{day}.lock', wait)

    @contextlib.contextmanager
    def lock(self, name: str, wait: bool = True) -> Iterator[bool]:
        """Hold the flock of ``locks/NAME``, made where missing (OSError if it cannot be).

        Yields False when ``wait`` is off and another process holds it.
        """
        path = os.path.join(self.folder(LOCKS), name)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:  # checked only on failure: no mkdir per lock
            self.ensure(LOCKS)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)

    def ensure(self, *names: str) -> None:
        """Create the folders ``names`` (default: every spool folder) where missing, durably."""
        for name in names or FOLDERS:
            durable.makedirs(self.folder(name))

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

    def withdraw(self, delivered: list[tuple[str, str]]) -> None:
        """Take back spool files just delivered ((folder, name)) whose batch was not acknowledged.

        Best effort: one the writer has claimed meanwhile is stored (and a
        resend of the batch stored again).
        """
        with contextlib.suppress(OSError):
            durable.remove_all([os.path.join(self.folder(folder), name) for folder, name in delivered])

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
        """Remove stored spool files from ``partial/`` (kept nowhere: ``archive_days = 0``)."""
        durable.remove_all([os.path.join(self.folder(PARTIAL), name) for name in names])

    def archive_path(self, stored: str, name: str) -> str:
        """Where a spool file stored on ISO date ``stored`` is archived."""
        return os.path.join(self.archive_root, stored, name)

    def archive(self, names: list[str], stored: str) -> None:
        """Move stored spool files from ``partial/`` into the archive folder of date ``stored``.

        The archive may be on another disk: there a file is copied (fsynced,
        renamed into place, folder fsynced) before it leaves ``partial/``.
        Names already archived are skipped (a pass finished after a crash).
        """
        folder = os.path.join(self.archive_root, stored)
        durable.makedirs(folder)  # in its parent before anything leaves partial/ for it
        sources = [os.path.join(self.folder(PARTIAL), name) for name in names]
        try:
            durable.move_all(sources, folder)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            for source in sources:
                if os.path.exists(source):
                    with open(source, 'rb') as f:
                        durable.write(
                            os.path.join(folder, '.' + os.path.basename(source) + '.tmp'),
                            os.path.join(folder, os.path.basename(source)),
                            f.read(),
                        )
            durable.remove_all(sources)

    def remove_archived(self, paths: list[str]) -> None:
        """Delete archived spool files whose time is up, and emptied date folders."""
        durable.remove_all(paths)
        for folder in {os.path.dirname(path) for path in paths}:
            with contextlib.suppress(OSError):
                os.rmdir(folder)

    def free_bytes(self, path: str | None = None) -> int:
        """Bytes free for this user on the filesystem of ``path`` (default data_dir)."""
        st = os.statvfs(path or self.root)
        return st.f_bavail * st.f_frsize

    def keep_aside(self, day_file: str, purpose: str) -> str:
        """The day file also under a new name beside it (a hard link, or a fsynced copy).

        Never over an existing file: ``.1``, ``.2``, ... are added until a name is free.
        """
        base = self.beside(day_file, purpose)
        for n in range(1000):
            target = base if n == 0 else f'{base}.{n}'
            try:
                os.link(day_file, target)
            except FileExistsError:
                continue
            except OSError:  # no hard links here: a copy, made under a name of its own
                try:
                    with open(day_file, 'rb') as source, open(target, 'xb') as copy:
                        shutil.copyfileobj(source, copy)
                except FileExistsError:
                    continue
                durable.fsync_file(target)
            durable.fsync_dir(os.path.dirname(target))
            return target
        raise FileExistsError(f'no free name beside {day_file} for {purpose}')

    # -- the operator's pause ---------------------------------------------------

    def paused(self) -> bool:
        return os.path.exists(self.path(WRITER_PAUSE))

    def pause_requested(self) -> float | None:
        """When ``writer.pause`` was made (its mtime), or None if the writer is not asked to pause."""
        try:
            return os.stat(self.path(WRITER_PAUSE)).st_mtime
        except FileNotFoundError:
            return None

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
