"""Realistic station events of every type, for tests, benchmarks and the simulator.

Values are drawn per column type from the event-type table, so every type is
covered by the same code. Traces are what the DAQ sends: base64 of
zlib-compressed ``"v1,v2,…"`` ADC samples.
"""

from __future__ import annotations

import base64
import datetime
import random
import zlib
from typing import Any

from .eventtypes import EVENT_TYPES, Column

_RNG = random.Random()

# column type -> draw(rng): values that fit the column
_DRAW = {
    'bool': lambda rng: rng.random() < 0.5,
    'uint8': lambda rng: rng.randrange(256),
    'uint16': lambda rng: rng.randrange(1000),
    'uint32': lambda rng: rng.randrange(100000),
    'int16': lambda rng: rng.randrange(-999, 2000),
    'int32': lambda rng: rng.randrange(-1, 100000),
    'float32': lambda rng: round(rng.uniform(-100.0, 1000.0), 3),
    'float64': lambda rng: rng.uniform(-100.0, 1000.0),
}
_TEXTS = (
    'Hardware: 0 FPGA: 0',
    'GPS fix lost',
    'Température hors limites',
    'http://www.hisparc.nl/',
    'hisparc',
    '',
)


def trace(rng: random.Random, samples: int = 400, baseline: int = 200) -> str:
    """One trace as uploaded: base64(zlib("v1,v2,…"))."""
    peak = rng.randrange(50, 400)
    start = rng.randrange(samples // 4, samples // 2)
    values = [
        baseline + rng.randrange(-3, 4) + (peak >> max(0, i - start) if i >= start else 0)
        for i in range(samples)
    ]
    csv = ','.join(map(str, values)).encode('ascii')
    return base64.b64encode(zlib.compress(csv)).decode('ascii')


def _value(column: Column, rng: random.Random) -> Any:
    if column.blob == 'base64':
        return trace(rng)
    if column.blob:
        return rng.choice(_TEXTS)
    return _DRAW[column.type](rng)


def event(
    code: str,
    when: datetime.datetime,
    rng: random.Random | None = None,
    nanoseconds: int | None = None,
    channels: int = 4,
) -> dict[str, Any]:
    """One event of type ``code`` (``'CIC'``) at naive UTC datetime ``when``."""
    rng = rng or _RNG
    datalist: list[dict[str, Any]] = []
    for column in EVENT_TYPES[code].columns:
        if column.shape == 1:
            datalist.append({'data_uploadcode': column.upload, 'data': _value(column, rng)})
        else:
            datalist.extend(
                {'data_uploadcode': f'{column.upload}{i + 1}', 'data': _value(column, rng)}
                for i in range(min(column.shape, channels))
            )
    if nanoseconds is None:
        nanoseconds = rng.randrange(1_000_000_000) if EVENT_TYPES[code].extended_time else 0
    header = {
        'eventtype_uploadcode': code,
        'datetime': when,
        'nanoseconds': nanoseconds,
        'date': when.strftime('%Y-%m-%d'),
        'time': when.strftime('%H:%M:%S'),
    }
    return {'header': header, 'datalist': datalist}


def batch(
    start: datetime.datetime,
    rng: random.Random | None = None,
    mix: tuple[tuple[str, int], ...] = (('CIC', 36), ('SIN', 64)),
    step: float = 1.0,
) -> list[Any]:
    """A station batch: the types of ``mix`` interleaved in time from ``start``.

    The default is the 36 ``CIC`` + 64 ``SIN`` mix of a real 100-event batch.
    """
    rng = rng or _RNG
    codes = [code for code, count in mix for _ in range(count)]
    rng.shuffle(codes)
    return [event(code, start + datetime.timedelta(seconds=i * step), rng) for i, code in enumerate(codes)]


def every_type(start: datetime.datetime, rng: random.Random | None = None) -> list[Any]:
    """One event of each of the 14 types."""
    return [event(code, start + datetime.timedelta(seconds=i), rng) for i, code in enumerate(EVENT_TYPES)]
