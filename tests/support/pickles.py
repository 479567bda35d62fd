"""Uploads worth sending: realistic batches, and pickles that try to hurt the server."""

import datetime
import os
import pickle
import random
import subprocess

from datastore import factory

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
