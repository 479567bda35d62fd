"""Uploads worth sending: realistic batches, and pickles that try to hurt the server."""

import datetime
import os
import pickle
import random
import struct
import subprocess

from datastore import factory, safepickle

WHEN = datetime.datetime(2024, 5, 1, 12, 0, 0)


def batch(seed=1, when=WHEN):
    """A realistic 100-event batch (36 CIC + 64 SIN)."""
    return factory.batch(when, random.Random(seed))


class _Run:
    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def hostile_pickles(marker):
    """(name, pickle) of pickles that would create file ``marker`` if unpickled naively."""
    yield 'os.system-protocol-0-by-hand', f"cos\nsystem\n(S'touch {marker}'\ntR.".encode()
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        for name, payload in [
            ('os.system', _Run(os.system, f'touch {marker}')),
            ('eval', _Run(eval, f'open({str(marker)!r}, "w")')),
            ('subprocess', _Run(subprocess.Popen, ['touch', str(marker)])),
        ]:
            yield f'{name}-protocol-{protocol}', pickle.dumps([payload], protocol=protocol)


def shared_reference_bomb(levels=60, width=10):
    """A few kB that are 10**60 lists if walked as a tree."""
    item = []
    for _ in range(levels):
        item = [item] * width
    return pickle.dumps(item, protocol=2)


def deeply_nested(depth=200_000):
    """Lists nested ``depth`` deep: a RecursionError for whatever walks them."""
    return b'\x80\x02' + b']' * depth + b'a' * (depth - 1) + b'.'


def writes_as_another(events, protocol):
    """A pickle that evaluates to ``events`` alone, but leaves a record of station 502 below it.

    Spliced naively into the spool record (the record's own opcodes around
    the station's), its MARK and SETITEMs would make that record the result.
    """
    prefix = b"((dS'station_id'\nI502\nsS'cluster'\nS'Utrecht'\nsS'event_list'\n"
    body = pickle.dumps(events, protocol=protocol)
    if protocol >= 2:  # keep the PROTO opcode first
        return body[:2] + prefix + body[2:]
    return prefix + body


BOMBS = {
    'memo index 3e8 (PUT)': b'(lp300000000\n.',
    'memo index 2.7e8 (LONG_BINPUT)': b']r\x00\x00\x00\x10.',
    'memo index 2.7e8, protocol 4': b'\x80\x04]r\x00\x00\x00\x10.',
    'a million empty sets': b'\x80\x04' + b'\x8f' * 1_000_000 + b'.',
    'a declared 4 GB string': b'\x80\x04\x8d' + struct.pack('<Q', 4 << 30) + b'x' * 100 + b'.',
}


def event_at(state=None, nanoseconds=None, when=WHEN):
    """A CIC event whose datetime is pickled from ``state`` (bytes) as given."""
    event = factory.event('CIC', when, random.Random(1))
    if state is not None:
        event['header']['datetime'] = safepickle.ImpossibleTime(state)
    if nanoseconds is not None:
        event['header']['nanoseconds'] = nanoseconds
    return event


def state(year, month, day, hour=12, minute=0, second=0):
    return bytes([year >> 8, year & 255, month, day, hour, minute, second, 0, 0, 0])


IMPOSSIBLE = {
    '2024-02-31 25:60:60': (state(2024, 2, 31, 25, 60, 60), 'impossible datetime 2024-02-31 25:60:60'),
    'day 0': (state(2024, 5, 0), 'impossible datetime 2024-05-00 12:00:00'),
    'day 99': (state(2024, 5, 99), 'impossible datetime 2024-05-99 12:00:00'),
    'a leap second': (state(2024, 12, 31, 23, 59, 60), 'impossible datetime 2024-12-31 23:59:60'),
    'month 13': (state(2024, 13, 1), 'impossible datetime 2024-13-01 12:00:00'),
}
