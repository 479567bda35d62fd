"""Uploads worth sending: realistic batches, and pickles that try to hurt the server."""

import base64
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


P61 = 2**61 - 1  # an int's hash is the int modulo this


def colliding_ints(n=20_000):
    """``n`` distinct ints of one hash (multiples of 2**61-1)."""
    return [k * P61 for k in range(1, n + 1)]


# CPython's tuple hash (xxHash's round per item, Objects/tupleobject.c): each
# round can be undone, so for any first item a second can be found that
# gives a chosen hash.
_MASK = 2**64 - 1
_XX1, _XX2, _XX5 = 11400714785074694791, 14029467366897019727, 2870177450012600261


def colliding_pairs(n=20_000):
    """``n`` distinct pairs of ints below 2**61 whose tuple hash is one and the same."""
    after = (hash((0, 0)) & _MASK) - (2 ^ _XX5 ^ 3527539)  # the target, before the length is added
    before_last = pow(_XX1, -1, 1 << 64) * after & _MASK
    before_last = (before_last >> 31 | before_last << 33) & _MASK  # undo the rotation
    undo_second = pow(_XX2, -1, 1 << 64)
    pairs = []
    first = 0
    while len(pairs) < n:
        first += 1
        acc = (_XX5 + first * _XX2) & _MASK
        acc = ((acc << 31 | acc >> 33) & _MASK) * _XX1 & _MASK
        lane = (before_last - acc) * undo_second & _MASK
        second = lane - (1 << 64) if lane >= 1 << 63 else lane  # the hash the second item needs
        if -P61 < second < P61 and second != -1:  # an int's hash is itself there
            pairs.append((first, second))
    assert len({hash(pair) for pair in pairs}) == 1
    return pairs


def _binary_int(value):
    return pickle.dumps(value, protocol=2)[2:-1]


def dict_with_keys(keys, protocol):
    """A list of one dict with ``keys`` (ints or pairs of ints), pickled by hand: a dict of
    colliding keys would take as long to build here as to unpickle.
    """
    if protocol == 0:
        items = b''.join(
            (b'(I%d\nI%d\nt' % key if isinstance(key, tuple) else b'L%dL\n' % key) + b'Ns' for key in keys
        )
        return b'(lp0\n(dp1\n' + items + b'a.'
    items = b''.join(
        (b''.join(map(_binary_int, key)) + b'\x86' if isinstance(key, tuple) else _binary_int(key)) + b'N'
        for key in keys
    )
    return b'\x80\x02]}(' + items + b'ua.'


_PAIRS = colliding_pairs()
BOMBS = {
    'memo index 3e8 (PUT)': b'(lp300000000\n.',
    'memo index 2.7e8 (LONG_BINPUT)': b']r\x00\x00\x00\x10.',
    'memo index 2.7e8, protocol 4': b'\x80\x04]r\x00\x00\x00\x10.',
    'memo index 3e6 (LONG_BINPUT), 7 bytes': b']r\xc0\xc6\x2d\x00.',
    'a million empty sets': b'\x80\x04' + b'\x8f' * 1_000_000 + b'.',
    'a declared 4 GB string': b'\x80\x04\x8d' + struct.pack('<Q', 4 << 30) + b'x' * 100 + b'.',
    'a declared 1 TB bytearray, protocol 5': b'\x80\x05\x96' + struct.pack('<Q', 1 << 40) + b'.',
    # 20,000 keys of one hash: 5 s to unpickle as it is, and 4 times that for twice as many
    'int keys of one hash, protocol 2': dict_with_keys(colliding_ints(), 2),
    'int keys of one hash, protocol 0': dict_with_keys(colliding_ints(), 0),
    'pair keys of one hash, protocol 2': dict_with_keys(_PAIRS, 2),
    'pair keys of one hash, protocol 0': dict_with_keys(_PAIRS, 0),
}


def shared_trace(events=5000, trace_chars=1 << 20):
    """Distinct sound events whose one trace is the same string: a 1.5 MB pickle that stands for 5 GB."""
    trace = base64.b64encode(random.Random(1).randbytes(trace_chars * 3 // 4)).decode('ascii')
    return [
        {
            'header': {
                'eventtype_uploadcode': 'CIC',
                'datetime': WHEN + datetime.timedelta(seconds=i),
                'nanoseconds': i,
            },
            'datalist': [{'data_uploadcode': 'TR1', 'data': trace}],
        }
        for i in range(events)
    ]


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
    'microsecond bytes ff ff ff': (
        state(2024, 12, 31, 23, 59, 59)[:7] + b'\xff\xff\xff',
        'impossible datetime 2024-12-31 23:59:59.16777215',
    ),
}
