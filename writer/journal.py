"""The writer's journal: what a pass is about to change, so a crash can be undone.

Before a pass appends anything it writes ``data_dir/writer.journal``
(fsynced): the spool files it stores and, for every node it will touch, the
node's length before the pass (-1: the node did not exist; a file recorded as
None did not exist). Once the day files are closed and fsynced the journal is
marked committed; then the spool files are removed, then the journal.

On start, ``recover``: an uncommitted journal means the pass may have left
rows whose spool files are still in ``partial/``: every node is cut back to
its recorded length (new nodes and new files are removed) and the spool files
are stored again. A committed journal means the rows are in: the spool files
it names are removed. Either way each event ends up in its day file once.
"""
import json
import os

from datastore import spool
from .datafile import DayFile

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
            continue
        if not os.path.exists(path):
            continue
        day_file = DayFile(path)
        try:
            for node_path, length in sorted(nodes.items()):
                node = day_file.node(node_path)
                if node is None:
                    continue
                if length < 0:
                    node._f_remove(recursive=True)
                elif node.nrows > length:
                    node.truncate(length)
        finally:
            day_file.close()


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
