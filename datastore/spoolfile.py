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
    """The spool file of ``dumps`` around an already pickled event list.

    Uploads from the deployed clients are protocol-0 pickles (no PROTO
    opcode, no memo shared with what is added here): the dict is built around
    the station's own bytes instead of unpickling them once more. The pickle
    must end at its STOP (safepickle.loads checks that). Returns None for
    other protocols; use ``dumps`` then.
    """
    if not event_list_pickle.startswith(b'(') or not event_list_pickle.endswith(pickle.STOP):
        return None
    return b''.join(
        (
            pickle.EMPTY_DICT,
            _text('station_id'),
            pickle.INT,
            b'%d\n' % station_id,
            pickle.SETITEM,
            _text('cluster'),
            _text(cluster),
            pickle.SETITEM,
            _text('event_list'),
            event_list_pickle[:-1],
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
