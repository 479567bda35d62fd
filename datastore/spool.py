"""The spool: the only contract between the upload endpoint and the writer.

Folders under ``data_dir`` (Maildir's delivery rule, plus fsync because the
endpoint's ``100`` is a promise):

- ``tmp/``        a spool file being written; never read by the writer
- ``incoming/``   complete, durable batches waiting for the writer
- ``suspicious/`` events held back for review
- ``partial/``    batches the writer has claimed and is storing
- ``failed/``     spool files the writer could not read, kept byte for byte

A spool file is a pickle of ``{'station_id': int, 'cluster': str,
'event_list': [...]}``, the format the deployed queue holds.
"""
import os
import pickle
import secrets
import struct
import time

from . import safepickle

TMP = 'tmp'
INCOMING = 'incoming'
SUSPICIOUS = 'suspicious'
PARTIAL = 'partial'
FAILED = 'failed'
FOLDERS = (TMP, INCOMING, SUSPICIOUS, PARTIAL, FAILED)

# Files in data_dir that one process writes and others read
RECEIVED = 'received.sqlite'    # endpoint: the batches each station delivered
WRITER_STATUS = 'writer.status'  # writer: its state, as JSON
WRITER_PAUSE = 'writer.pause'    # operator: while it exists the writer stores nothing

PROTOCOL = 4        # read by every Python 3 the deployed system runs


class SpoolError(Exception):
    """A spool file that cannot be read as a spool record."""


def folder(data_dir, name):
    return os.path.join(data_dir, name)


def ensure_folders(data_dir, names=FOLDERS):
    for name in names:
        os.makedirs(folder(data_dir, name), exist_ok=True)


def dumps(station_id, cluster, event_list):
    return pickle.dumps({'station_id': station_id, 'cluster': cluster,
                         'event_list': event_list}, protocol=PROTOCOL)


def _text(value):
    data = value.encode('utf-8', 'surrogatepass')
    return pickle.BINUNICODE + struct.pack('<I', len(data)) + data


def splice(station_id, cluster, event_list_pickle):
    """The spool file of ``dumps`` around an already pickled event list.

    Uploads from the deployed clients are protocol-0 pickles (no PROTO
    opcode, no memo shared with what is added here): the dict is built around
    the station's own bytes instead of unpickling them once more. The pickle
    must end at its STOP (safepickle.loads checks that). Returns None for
    other protocols; use ``dumps`` then.
    """
    if not event_list_pickle.startswith(b'(') or not event_list_pickle.endswith(pickle.STOP):
        return None
    return b''.join((
        pickle.EMPTY_DICT,
        _text('station_id'), pickle.INT, b'%d\n' % station_id, pickle.SETITEM,
        _text('cluster'), _text(cluster), pickle.SETITEM,
        _text('event_list'), event_list_pickle[:-1], pickle.SETITEM,
        pickle.STOP))


def unique_name(station_id):
    """Sorts by time of writing; unique across processes and hosts."""
    return f'{time.time_ns():020d}_{station_id}_{os.getpid()}_{secrets.token_hex(4)}'


def fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durably(tmp_path, final_path, payload):
    """Write ``payload`` as ``tmp_path``, fsync, rename it to ``final_path``, fsync that folder.

    Once this returns, the file survives a crash; if it raises (OSError), no
    file is left behind, half-written or whole (Maildir's delivery rule).
    """
    try:
        fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(payload)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp_path, final_path)
        fsync_dir(os.path.dirname(final_path))
    except BaseException:
        try:
            os.unlink(tmp_path)
        except OSError:
            pass
        raise
    return final_path


def deliver(data_dir, target, name, payload):
    """Write ``payload`` durably as ``data_dir/target/name``, by way of ``tmp/``.

    Missing folders are created (the first delivery, or one removed since).
    """
    paths = (os.path.join(folder(data_dir, TMP), name),
             os.path.join(folder(data_dir, target), name), payload)
    try:
        return write_durably(*paths)
    except FileNotFoundError:       # checked only on failure: no mkdir per upload
        ensure_folders(data_dir, (TMP, target))
        return write_durably(*paths)


def loads(data):
    """Parse a spool file's bytes (pickled by Python 2 or 3) into its dict."""
    try:
        record = safepickle.loads(data)
    except safepickle.PickleRefused as exc:
        raise SpoolError(str(exc)) from None
    if not (isinstance(record, dict)
            and isinstance(record.get('station_id'), int)
            and isinstance(record.get('cluster'), str)
            and isinstance(record.get('event_list'), list)):
        raise SpoolError('not a spool record (station_id, cluster, event_list)')
    return record


def load(path):
    with open(path, 'rb') as f:
        return loads(f.read())


def queued(data_dir, name=INCOMING):
    """Paths of the files waiting in folder ``name``, oldest first."""
    try:
        entries = [e for e in os.scandir(folder(data_dir, name)) if e.is_file()]
    except FileNotFoundError:
        return []
    entries.sort(key=lambda e: (e.stat().st_mtime_ns, e.name))
    return [e.path for e in entries]
