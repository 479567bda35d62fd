"""The spool file format: read and written here only.

A spool file is a pickle of one dict, the format the deployed queue holds
(``spec/spool.md``), pickled by Python 2 or 3::

    {'station_id': 501, 'cluster': 'Amsterdam', 'event_list': [...]}
"""

from __future__ import annotations

import pickle
import struct
from typing import Any

from . import safepickle

PROTOCOL = 4  # read by every Python 3 the deployed system runs


class SpoolError(Exception):
    """A spool file that cannot be read as a spool record."""


def dumps(station_id: int, cluster: str, event_list: list[Any]) -> bytes:
    return pickle.dumps(
        {'station_id': station_id, 'cluster': cluster, 'event_list': event_list}, protocol=PROTOCOL
    )


def _text(value: str) -> bytes:
    data = value.encode('utf-8', 'surrogatepass')
    return pickle.BINUNICODE + struct.pack('<I', len(data)) + data


def splice(station_id: int, cluster: str, event_list_pickle: bytes) -> bytes | None:
    """The spool file of ``dumps`` for an already pickled event list, without pickling it again.

    The station's pickle runs first, exactly as it ran when the endpoint read
    it (``safepickle.loads`` checked that it ends at its STOP), and whatever
    else its opcodes leave on the stack or the marks stays below: only its
    result, memoized, goes into a record built after it, whose
    ``station_id`` and ``cluster`` are the ones given. Pickles with a PROTO
    opcode (protocol 2 and up, which frames) are not spliced: None, use
    ``dumps``. Uploads from the deployed clients are protocol 0.
    """
    if event_list_pickle.startswith(pickle.PROTO) or not event_list_pickle.endswith(pickle.STOP):
        return None
    return b''.join(
        (
            memoryview(event_list_pickle)[:-1],  # copied once, by the join
            pickle.PUT + b'0\n',  # the station's event list, now memo 0
            pickle.EMPTY_DICT,
            _text('station_id'),
            pickle.INT,
            b'%d\n' % station_id,
            pickle.SETITEM,
            _text('cluster'),
            _text(cluster),
            pickle.SETITEM,
            _text('event_list'),
            pickle.GET + b'0\n',
            pickle.SETITEM,
            pickle.STOP,
        )
    )


def loads(data: bytes) -> dict[str, Any]:
    """Parse a spool file's bytes (pickled by Python 2 or 3) into its dict."""
    try:
        record = safepickle.loads(data)
    except safepickle.PickleRefused as exc:
        raise SpoolError(str(exc)) from None
    if not (
        isinstance(record, dict)
        and isinstance(record.get('station_id'), int)
        and isinstance(record.get('cluster'), str)
        and isinstance(record.get('event_list'), list)
    ):
        raise SpoolError('not a spool record (station_id, cluster, event_list)')
    return record


def load(path: str) -> dict[str, Any]:
    with open(path, 'rb') as f:
        return loads(f.read())
