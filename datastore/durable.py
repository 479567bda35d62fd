"""Durable writes and moves: once one of these returns, a crash cannot undo it.

Every hand-over in ``data_dir`` goes through here, always in the same order:
the file's bytes are fsynced before it is renamed into place, and the folders
a rename touches are fsynced after it (a rename is only durable once its
folder is). A half-written file is never visible under its final name
(Maildir's delivery rule).
"""

from __future__ import annotations

import contextlib
import os


def fsync_file(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def makedirs(path: str, mode: int = 0o777) -> None:
    """Create the folder ``path`` and its missing parents, each fsynced into its parent.

    A new folder is only a name in its parent until that parent is fsynced:
    without it a power loss could take the folder, and every file renamed
    into it since, while the removal of those files from where they were is
    durable. Nothing is fsynced when ``path`` exists.
    """
    missing = []
    folder = os.path.abspath(path)
    while not os.path.isdir(folder):
        missing.append(folder)
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    for folder in reversed(missing):
        try:
            os.mkdir(folder, mode)
        except FileExistsError:  # made meanwhile by another process: fsynced here all the same
            if not os.path.isdir(folder):
                raise
        fsync_dir(os.path.dirname(folder))


def write(tmp_path: str, final_path: str, payload: bytes) -> str:
    """Write ``payload`` as ``tmp_path``, fsync it, rename it to ``final_path``, fsync that folder.

    If this raises (OSError), no file is left behind, half-written or whole.
    """
    try:
        fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(payload)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp_path, final_path)
        fsync_dir(os.path.dirname(final_path))
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_path)
        raise
    return final_path


def replace(path: str, payload: bytes) -> str:
    """Replace the small file ``path`` by ``payload`` durably, by way of ``path.tmp``."""
    return write(path + '.tmp', path, payload)


def move(source: str, target: str) -> str:
    """Rename ``source`` to ``target``, then fsync both folders.

    The source's folder too: otherwise a crash could leave the file in both.
    """
    os.rename(source, target)
    fsync_dir(os.path.dirname(target))
    if os.path.dirname(source) != os.path.dirname(target):
        fsync_dir(os.path.dirname(source))
    return target


def move_all(sources: list[str], folder: str) -> list[str]:
    """Rename each of ``sources`` into ``folder`` (same names); fsync each folder once.

    A source that is gone (another process took it) is skipped; the moved
    paths are returned.
    """
    moved, touched = [], set()
    for source in sources:
        target = os.path.join(folder, os.path.basename(source))
        try:
            os.rename(source, target)
        except FileNotFoundError:
            continue
        moved.append(target)
        touched.add(os.path.dirname(source))
    if moved:
        fsync_dir(folder)
        for path in touched - {folder}:
            fsync_dir(path)
    return moved


def remove_all(paths: list[str]) -> None:
    """Unlink ``paths`` (those already gone are fine) and fsync their folders."""
    touched = set()
    for path in paths:
        try:
            os.unlink(path)
        except FileNotFoundError:
            continue
        touched.add(os.path.dirname(path))
    for folder in touched:
        fsync_dir(folder)
