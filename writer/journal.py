"""The writer's journal: what a pass is about to change, so that a crash is undone or finished.

Before a pass appends anything it writes ``data_dir/writer.journal``
(durably): the pass's id, the spool files it stores, and for every day file
it will touch the whole node map before the pass (``nodes``, -1 for a group;
``new`` for a file the pass creates). The pass counts as done once the
ledger holds it (one fsynced SQLite transaction); then its spool files are
archived (or removed) and the journal is removed.

``recover``, on start and after a failed pass:

- the ledger holds the pass: the rows are in; the spool files it names are
  archived or removed, as the pass would have done.
- it does not: every day file the pass touched is rewritten with every node
  cut back to its journaled length (``rewrite``: beside it, verified, then
  renamed over it; a file the pass created, unknown to the ledger, is
  removed: it holds nothing but the pass's rows). The spool files wait in
  ``partial/`` and are stored again. A day file whose copy does not verify is
  left as it is and marked damaged in the ledger (only ``rebuild`` clears
  that); its events wait.

Either way each event ends up in its day file once.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from datastore import durable, ledger
from datastore.datadir import WRITER_JOURNAL, DataDir

from . import rewrite
from .dayfile import DayFileDamaged, DayFileLocked

log = logging.getLogger('writer')


def write(data_dir: DataDir, entry: dict[str, Any]) -> None:
    """Write the journal durably (tmp, fsync, rename, fsync folder)."""
    durable.replace(data_dir.path(WRITER_JOURNAL), json.dumps(entry).encode('utf-8'))


def read(data_dir: DataDir) -> dict[str, Any] | None:
    try:
        with open(data_dir.path(WRITER_JOURNAL), encoding='utf-8') as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def remove(data_dir: DataDir) -> None:
    durable.remove_all([data_dir.path(WRITER_JOURNAL)])


def finish(data_dir: DataDir, entry: dict[str, Any], archive_days: float) -> None:
    """What a pass does once the ledger holds it: its spool files leave ``partial/``."""
    if archive_days > 0:
        data_dir.archive(entry['spool'], entry['stored'])
    else:
        data_dir.finish(entry['spool'])


def rollback(data_dir: DataDir, book: ledger.Ledger, entry: dict[str, Any]) -> list[str]:
    """Undo an uncommitted pass in every day file it touched; return the days left damaged.

    DayFileLocked (another process holds a day file) and faults.DiskFull (no
    room for a copy) propagate: the caller waits and tries again.
    """
    damaged = []
    for day, touched in entry['days'].items():
        path = data_dir.day_file(*ledger.day_parts(day))
        with data_dir.day_lock(day, wait=True):
            if not os.path.exists(path):
                continue
            if touched['new'] and not book.nodes(day):
                durable.remove_all([path])  # it holds nothing but this pass's rows
                continue
            try:
                rewrite.rewrite(data_dir, path, touched['nodes'])
            except DayFileLocked:
                raise
            except (rewrite.Unverified, DayFileDamaged) as exc:
                reason = f'undoing an unfinished pass failed, the file is kept as it is: {exc}'
                book.mark_damaged(day, reason, hard=True)
                log.error(
                    'day file %s is damaged: %s; its events wait until `hisparc-datastore rebuild %s`',
                    path,
                    reason,
                    day,
                )
                damaged.append(day)
    return damaged


def recover(data_dir: DataDir, book: ledger.Ledger, archive_days: float) -> bool:
    """Finish or undo the pass a crash (or a failure) interrupted; True when there was one."""
    entry = read(data_dir)
    if entry is None:
        return False
    if book.committed(entry['pass']):
        finish(data_dir, entry, archive_days)
        log.warning('finished pass %s, which an earlier run had committed', entry['pass'])
    else:
        damaged = rollback(data_dir, book, entry)
        log.warning(
            'undid pass %s in %d day file(s)%s; its %d spool file(s) will be stored again',
            entry['pass'],
            len(entry['days']) - len(damaged),
            f' ({len(damaged)} left damaged: {", ".join(damaged)})' if damaged else '',
            len(entry['spool']),
        )
    remove(data_dir)
    return True
