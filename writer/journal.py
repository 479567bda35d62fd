"""The writer's journal: what a pass is about to change, so a crash can be undone.

Before a pass appends anything it writes ``data_dir/writer.journal``
(fsynced): the spool files it stores and, for every node it will touch, the
node's length before the pass (-1: the node did not exist; a file recorded as
None did not exist). Once the day files are closed and fsynced the journal is
marked committed; then the spool files are removed, then the journal.

On start, ``recover``: an uncommitted journal means the pass may have left
rows whose spool files are still in ``partial/``: the day file is rewritten
with every node cut back to its recorded length (new nodes and new files
removed) and the spool files are stored again. A committed journal means the
rows are in: the spool files it names are removed. Either way each event ends
up in its day file once.
"""

from __future__ import annotations

import json
import os
from typing import Any, Optional

import tables

from datastore import durable
from datastore.datadir import WRITER_JOURNAL, DataDir

from .dayfile import DayFileUnavailable

# day file path -> {node path: length before the pass}, or None for a file the pass created
Lengths = dict[str, Optional[dict[str, int]]]


def write(data_dir: DataDir, spool_names: list[str], files: Lengths, committed: bool = False) -> None:
    """Write the journal durably (tmp, fsync, rename, fsync folder)."""
    entry = json.dumps({'committed': committed, 'spool': spool_names, 'files': files})
    durable.replace(data_dir.path(WRITER_JOURNAL), entry.encode('utf-8'))


def read(data_dir: DataDir) -> dict[str, Any] | None:
    try:
        with open(data_dir.path(WRITER_JOURNAL), encoding='utf-8') as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def remove(data_dir: DataDir) -> None:
    durable.remove_all([data_dir.path(WRITER_JOURNAL)])


def rollback(files: Lengths) -> None:
    """Cut every recorded node back to its length; remove what was new.

    Raises ``DayFileUnavailable`` when a day file is locked: the caller
    retries later, the journal stays until the rollback completes.
    """
    for path, nodes in files.items():
        if nodes is None:
            if os.path.exists(path):
                os.unlink(path)
        elif os.path.exists(path):
            rewrite(path, nodes)


def rewrite(path: str, lengths: dict[str, int]) -> None:
    """Replace the day file by a copy with each node cut to its ``lengths`` entry.

    Cutting in place is not safe after a kill: a pass may have left rows past
    a blobs array's recorded length in its chunks (even where that length
    never grew) that refer to variable-length data it never wrote, and HDF5
    frees that data before it writes over such a row, which then fails for
    good. A copy takes only the rows before each cut. It is written beside
    the day file and renamed over it, so a rollback killed midway leaves the
    day file as it was.
    """
    new = path + '.rollback'
    try:
        source = tables.open_file(path, 'r')
    except (OSError, tables.HDF5ExtError) as exc:
        raise DayFileUnavailable(f'{path}: {exc}') from None
    with source, tables.open_file(new, 'w', title=source.title) as copy:
        source.root._v_attrs._f_copy(copy.root)
        for node in source.walk_nodes('/'):
            path_of = node._v_pathname
            if node is source.root or any(lengths.get(p, 0) < 0 for p in _self_and_parents(path_of)):
                continue
            parent = copy.get_node(node._v_parent._v_pathname)
            if isinstance(node, tables.Group):
                node._f_copy(parent, recursive=False)
            else:
                node.copy(parent, stop=lengths.get(path_of))
    durable.fsync_file(new)
    durable.move(new, path)


def _self_and_parents(node_path: str) -> list[str]:
    parts = node_path.split('/')
    return ['/'.join(parts[:n]) for n in range(2, len(parts) + 1)]


def recover(data_dir: DataDir) -> bool:
    """Finish or undo the pass a crash interrupted; True when there was one."""
    entry = read(data_dir)
    if entry is None:
        return False
    if entry['committed']:
        data_dir.finish(entry['spool'])
    else:
        rollback(entry['files'])
    remove(data_dir)
    return True
