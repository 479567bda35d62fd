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
import json
import os

import tables

from datastore import spool
from .datafile import DayFile, Unavailable

NAME = 'writer.journal'


def _path(data_dir):
    return os.path.join(data_dir, NAME)


def write(data_dir, spool_names, files, committed=False):
    """Write the journal durably (tmp, fsync, rename, fsync folder)."""
    entry = json.dumps({'committed': committed, 'spool': spool_names, 'files': files})
    path = _path(data_dir)
    spool.write_durably(path + '.tmp', path, entry.encode('utf-8'))


def read(data_dir):
    try:
        with open(_path(data_dir), encoding='utf-8') as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def remove(data_dir):
    os.unlink(_path(data_dir))
    spool.fsync_dir(data_dir)


def rollback(files):
    """Cut every recorded node back to its length; remove what was new.

    Raises ``datafile.Unavailable`` when a day file is locked: the caller
    retries later, the journal stays until the rollback completes.
    """
    for path, nodes in files.items():
        if nodes is None:
            if os.path.exists(path):
                os.unlink(path)
        elif os.path.exists(path):
            rewrite(path, nodes)


def rewrite(path, lengths):
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
        raise Unavailable(f'{path}: {exc}') from None
    with source, tables.open_file(new, 'w', title=source.title) as copy:
        source.root._v_attrs._f_copy(copy.root)
        for node in source.walk_nodes('/'):
            path_of = node._v_pathname
            if node is source.root or any(
                    lengths.get(p, 0) < 0 for p in _self_and_parents(path_of)):
                continue
            parent = copy.get_node(node._v_parent._v_pathname)
            if isinstance(node, tables.Group):
                node._f_copy(parent, recursive=False)
            else:
                node.copy(parent, stop=lengths.get(path_of))
    DayFile.fsync(new)
    os.replace(new, path)
    spool.fsync_dir(os.path.dirname(path))


def _self_and_parents(node_path):
    parts = node_path.split('/')
    return ['/'.join(parts[:n]) for n in range(2, len(parts) + 1)]


def remove_spool_files(data_dir, names):
    partial = spool.folder(data_dir, spool.PARTIAL)
    for name in names:
        try:
            os.unlink(os.path.join(partial, name))
        except FileNotFoundError:
            pass
    spool.fsync_dir(partial)


def recover(data_dir):
    """Finish or undo the pass a crash interrupted; True when there was one."""
    entry = read(data_dir)
    if entry is None:
        return False
    if entry['committed']:
        remove_spool_files(data_dir, entry['spool'])
    else:
        rollback(entry['files'])
    remove(data_dir)
    return True
