"""Which failures are the storage's (wait them out) and which are a spool file's (find it, set it aside).

A fault of the storage (disk full, an I/O error, a locked or damaged day
file) never counts against a spool file: the writer waits and retries. Any
other failure of a pass is a data fault: the pass is retried with fewer
files until the one that fails alone is known, and that one goes to
``failed/``.
"""

from __future__ import annotations

import errno
import os
import sqlite3

import tables

from datastore.datadir import DataDir

RESERVE = 16 * 1024 * 1024  # bytes a pass leaves free, for HDF5 metadata and the journal
_STORAGE_WORDS = (
    'No space left',
    'Disk quota',
    'Input/output error',
    'Read-only file system',
    'Too many open files',
)


class StorageFault(Exception):
    """The storage cannot take the pass now; the message says why."""


class DiskFull(StorageFault):
    pass


class DayFileUnavailable(StorageFault):
    """A day file cannot be opened now: another process holds it, or it is damaged."""


def storage_reason(exc: BaseException, data_dir: DataDir) -> str | None:
    """Why ``exc`` is the storage's fault, or None if it is the data's."""
    if isinstance(exc, StorageFault):
        return str(exc)
    if isinstance(exc, MemoryError):
        return 'out of memory'
    if isinstance(exc, OSError):
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return f'disk full: {exc}'
        return f'storage error: {exc}'
    try:
        free = data_dir.free_bytes()
    except OSError as os_exc:
        return f'storage error: {os_exc}'
    if isinstance(exc, sqlite3.Error):  # the ledger: disk full, I/O error, locked
        return ('disk full: ' if free < RESERVE else '') + f'the ledger cannot be written: {exc}'
    if free < RESERVE:
        return f'disk full ({free // 2**20} MiB free): {type(exc).__name__}: {exc}'
    if isinstance(exc, tables.HDF5ExtError) and any(word in str(exc) for word in _STORAGE_WORDS):
        return f'storage error: {exc}'
    return None


def disk_full(path: str) -> bool:
    """True if the filesystem of ``path`` has less than the reserve free."""
    try:
        st = os.statvfs(os.path.dirname(path) or '.')
    except OSError:
        return True
    return st.f_bavail * st.f_frsize < RESERVE


def need_space(data_dir: DataDir, needed: int, what: str, path: str | None = None) -> None:
    """Raise DiskFull unless ``needed`` bytes (plus the reserve) are free for ``what``."""
    free = data_dir.free_bytes(path)
    if free < needed + RESERVE:
        raise DiskFull(
            f'disk full: {free // 2**20} MiB free, {what} needs about {(needed + RESERVE) // 2**20} MiB'
        )
