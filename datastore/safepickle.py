"""Unpickle uploads and spool files without running anything.

Unpickling can call any global, so this unpickler resolves exactly the
globals that real uploads reference and refuses every other one. Python 2
pickles are read with ``encoding='latin1'``: byte strings become ``str``
losslessly and Python 2 ``datetime`` states rebuild.

NumPy scalars (pysparc sends ``PH1`` etc. as ``numpy.int32``) are rebuilt as
plain ``int``/``float``/``bool`` by our own stand-ins for ``numpy.dtype`` and
``numpy.core.multiarray.scalar``: the value is all the datastore needs, and
the upload worker never imports numpy.

A pickled ``datetime`` is its 10-byte state, which CPython takes as it is:
a station clock can send ``2024-02-31 25:60:60``. Only a real time becomes a
``datetime``; any other state an ``ImpossibleTime``, which the sound-event rule
holds back and which pickles back to the same bytes.

Unpickling may take at most ``MEMORY_FACTOR`` times the pickle's size plus
``MEMORY_MARGIN`` of new address space (a memo index of 10^8 in 15 bytes, or
a million empty sets, would take gigabytes): the process's address-space
limit is lowered for the call, so such a pickle fails with MemoryError and is
refused, in about the time it took to read.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import os
import pickle
import resource
import struct
import threading
from collections.abc import Iterator
from typing import Any

from .protocol import UNPICKLING_ERROR, Refused


class PickleRefused(Refused):
    """The data is not a pickle the datastore accepts (an upload's ``208``)."""

    code = UNPICKLING_ERROR


class _Dtype:
    """Stand-in for ``numpy.dtype``: remembers kind, size and byte order."""

    def __init__(
        self, descr: Any, _align: Any = 0, _copy: Any = 0
    ) -> None:  # numpy.dtype(descr, align, copy)
        if not isinstance(descr, str) or len(descr) < 2:
            raise PickleRefused(f'unsupported numpy dtype {descr!r}')
        self.kind, self.size = descr[0], descr[1:]
        self.byteorder = '<'

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) > 1 and state[1] in ('<', '>', '|', '='):
            self.byteorder = '<' if state[1] in ('|', '=') else state[1]


_SCALAR_FORMATS = {
    ('i', '1'): 'b',
    ('i', '2'): 'h',
    ('i', '4'): 'i',
    ('i', '8'): 'q',
    ('u', '1'): 'B',
    ('u', '2'): 'H',
    ('u', '4'): 'I',
    ('u', '8'): 'Q',
    ('f', '4'): 'f',
    ('f', '8'): 'd',
    ('b', '1'): '?',
}


def _scalar(dtype: Any, data: Any) -> int | float | bool:
    """Stand-in for ``numpy.core.multiarray.scalar``: the plain Python value."""
    if not isinstance(dtype, _Dtype):
        raise PickleRefused('numpy scalar without a dtype')
    fmt = _SCALAR_FORMATS.get((dtype.kind, dtype.size))
    if fmt is None:
        raise PickleRefused(f'unsupported numpy scalar {dtype.kind}{dtype.size}')
    if isinstance(data, str):  # Python 2 byte string, read as latin-1
        data = data.encode('latin1')
    return struct.unpack(dtype.byteorder + fmt, data)[0]


def _codecs_encode(text: Any, encoding: Any = 'utf-8') -> bytes:
    """Stand-in for ``_codecs.encode``: how Python 3 protocols 0-2 write bytes."""
    if not isinstance(text, str) or encoding not in ('latin1', 'latin-1', 'iso-8859-1'):
        raise PickleRefused('_codecs.encode with unexpected arguments')
    return text.encode('latin1')


class ImpossibleTime:
    """A pickled datetime whose state is no real time; pickles back to the same state."""

    def __init__(self, state: bytes) -> None:
        self.state = state

    def __reduce__(self) -> tuple[Any, ...]:
        return datetime.datetime, (self.state,)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ImpossibleTime) and other.state == self.state

    def __hash__(self) -> int:
        return hash(self.state)

    def __str__(self) -> str:
        s = self.state
        return f'{s[0] * 256 + s[1]:04d}-{s[2]:02d}-{s[3]:02d} {s[4]:02d}:{s[5]:02d}:{s[6]:02d}'

    __repr__ = __str__


def _datetime(state: Any, *more: Any) -> datetime.datetime | ImpossibleTime:
    """Stand-in for ``datetime.datetime``, which pickles rebuild from a 10-byte state."""
    if more or type(state) not in (bytes, str) or len(state) != 10:
        raise PickleRefused('datetime with unexpected arguments (only a naive state)')
    if type(state) is str:  # a Python 2 state, read as latin-1
        state = state.encode('latin1')
    month, day, hour, minute, second = state[2:7]
    if 1 <= month <= 12 and 1 <= day <= 28 and hour < 24 and minute < 60 and second < 60:
        return datetime.datetime(state)  # type: ignore[call-arg]  # real: the fast constructor
    if not 1 <= month <= 12:  # CPython would not even take it as a state
        return ImpossibleTime(state)
    when = datetime.datetime(state)  # type: ignore[call-arg]
    try:
        when.replace()  # the state is not checked; a new datetime is
    except ValueError:
        return ImpossibleTime(state)
    return when


ALLOWED_GLOBALS = {
    ('datetime', 'datetime'): _datetime,
    ('numpy', 'dtype'): _Dtype,
    ('numpy.core.multiarray', 'scalar'): _scalar,
    ('numpy._core.multiarray', 'scalar'): _scalar,
    ('_codecs', 'encode'): _codecs_encode,
}


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED_GLOBALS[module, name]
        except KeyError:
            raise PickleRefused(f'global {module}.{name} is not allowed') from None

    def persistent_load(self, _pid: Any) -> Any:
        raise PickleRefused('persistent ids are not allowed')


MEMORY_FACTOR = 32  # real pickles take 8 to 16 times their size
MEMORY_MARGIN = 50 * 1024 * 1024
_PAGE = os.sysconf('SC_PAGE_SIZE')


def _address_space() -> int | None:
    try:
        with open('/proc/self/statm', 'rb') as f:
            return int(f.read().split()[0]) * _PAGE
    except (OSError, ValueError, IndexError):
        return None


@contextlib.contextmanager
def memory_limit(extra: int) -> Iterator[None]:
    """At most ``extra`` bytes of new address space in this block (MemoryError beyond).

    The limit is the process's (RLIMIT_AS), so it is set only where this is
    the process's one thread (uWSGI workers with ``threads = 1``, the writer);
    elsewhere the block runs unlimited.
    """
    used = _address_space() if threading.active_count() == 1 else None
    if used is None:
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = used + extra if hard == resource.RLIM_INFINITY else min(used + extra, hard)
    if soft != resource.RLIM_INFINITY and soft <= limit:
        yield
        return
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def loads(data: bytes) -> Any:
    """Unpickle ``data`` (bytes); raise PickleRefused for anything else."""
    # A BufferedReader lets the C unpickler peek ahead instead of calling
    # readline() per protocol-0 opcode: twice as fast on a 130 kB upload.
    reader = io.BufferedReader(io.BytesIO(data))
    try:
        with memory_limit(MEMORY_FACTOR * len(data) + MEMORY_MARGIN):
            obj = _Unpickler(reader, encoding='latin1').load()
    except PickleRefused:
        raise
    except MemoryError:
        raise PickleRefused(
            f'unpickling needs more memory than {MEMORY_FACTOR} times the pickle '
            f'plus {MEMORY_MARGIN >> 20} MB'
        ) from None
    except (Exception, RecursionError) as exc:
        raise PickleRefused(f'{type(exc).__name__}: {exc}') from None
    # No client sends bytes after the STOP opcode; refusing them also means an
    # accepted pickle is exactly ``data`` (spool.splice relies on that).
    if reader.tell() != len(data):
        raise PickleRefused(f'{len(data) - reader.tell()} bytes after the end of the pickle')
    return obj
