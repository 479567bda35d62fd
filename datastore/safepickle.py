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

An upload's pickle is read by ``loads_upload``, whose time is bounded by its
size too. CPython's C unpickler builds dicts and sets without a hook, and an
int key's hash is the key modulo 2**61-1: 20,000 multiples of it as the keys
of one dict take seconds to insert (a tuple of crafted numbers collides as
easily). So the C unpickler gets only a pickle whose opcodes, read as it reads
them (a regex, and a loop over long strings), can give no key whose hash a
sender chooses and no memo index beyond what it can hold: what real clients
write, at any protocol. Any other is read by Python's unpickler, which refuses
such keys and indices before they cost anything, and gives up after
``PYTHON_SECONDS``. Spool files, which the endpoint writes from pickles read
that way, are read by ``loads``.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import os
import pickle
import re
import resource
import struct
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

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
        # numpy's state is (version, byte order, ...). Any other is refused: BUILD
        # leaves its state tuple in the memo, where it could come back as a key.
        if not (type(state) is tuple and len(state) > 1 and type(state[1]) is str):
            raise PickleRefused('numpy dtype with an unexpected state')
        if state[1] in ('<', '>'):
            self.byteorder = state[1]


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
        microsecond = int.from_bytes(s[7:], 'big')
        return f'{s[0] * 256 + s[1]:04d}-{s[2]:02d}-{s[3]:02d} {s[4]:02d}:{s[5]:02d}:{s[6]:02d}' + (
            f'.{microsecond:06d}' if microsecond else ''
        )

    __repr__ = __str__


def _datetime(state: Any, *more: Any) -> datetime.datetime | ImpossibleTime:
    """Stand-in for ``datetime.datetime``, which pickles rebuild from a 10-byte state."""
    if more or type(state) not in (bytes, str) or len(state) != 10:
        raise PickleRefused('datetime with unexpected arguments (only a naive state)')
    if type(state) is str:  # a Python 2 state, read as latin-1
        state = state.encode('latin1')
    month, day, hour, minute, second = state[2:7]
    if (
        1 <= month <= 12
        and 1 <= day <= 28
        and hour < 24
        and minute < 60
        and second < 60
        and int.from_bytes(state[7:], 'big') < 1_000_000  # ff ff ff would be 16.8 s more
    ):
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


class _AllowList:
    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED_GLOBALS[module, name]
        except KeyError:
            raise PickleRefused(f'global {module}.{name} is not allowed') from None

    def persistent_load(self, _pid: Any) -> Any:
        raise PickleRefused('persistent ids are not allowed')


class _Unpickler(_AllowList, pickle.Unpickler):
    """CPython's C unpickler, with the allow-list."""


# Pickles whose dict keys no sender can make collide, and whose memo indices
# cannot take far more than the pickle: read by the C unpickler as they are.
# Each pattern takes a pickle opcode by opcode, exactly as the C unpickler
# reads it, and holds only opcodes whose keys can be a str, bytes or datetime
# (hashed with a secret), a number below 2**64 (a few hundred at most share a
# hash), None, an object of ours or a tuple holding a str: TUPLE comes only as
# the arguments of REDUCE or the state of BUILD, whose callables (the allowed
# globals) refuse any but their own. No set, no LONG4, no LONG1 beyond 8 bytes.
#
# What the stations' picklers write at protocol 0 (Python 2's cPickle, Python
# 3's pickle), as few regex steps as can be, for speed: between the opcodes
# that take a line (S, V, F, I, L, c), the others run (MARK, DICT, LIST,
# SETITEM, APPEND, NONE, PUT and GET with their digits). A byte of a line cannot
# start an opcode: the C unpickler reads lines whole.
_BETWEEN = rb'[(dlsaN\n0-9pg]*'
_STATION_OPCODES = re.compile(
    _BETWEEN
    + rb'(?:(?:S[^\n]*\n|I-?[0-9]{1,19}\n|t(?:p[0-9]+\n)?[Rb]|[FV][^\n]*\n|c[^\n]*\n[^\n]*\n'
    + rb'|L-?[0-9]{1,19}L?\n)'
    + _BETWEEN
    + rb')*\.'
)
# Their PUT indices are only bounded by the address-space limit; in a small
# pickle (where that limit is mostly its margin) one of as many digits as
# its size sends it to Python's unpickler, which checks it.
_SMALL = 1 << 16
_LONG_PUTS = [re.compile(rb'p[0-9]{%d,}\n' % digits) for digits in range(len(str(_SMALL)) + 1)]


def _binary_run(small: bool) -> re.Pattern[bytes]:
    """Those opcodes at any protocol, but strings of 32 bytes or more (``_binary_ok`` skips those)."""
    byte = rb'[\x00-\xff]'

    def sized(prefix: bytes, length: int, count: int) -> bytes:  # prefix, its length, the bytes
        return rb'(?:%s)' % b'|'.join(
            re.escape(prefix + n.to_bytes(length, 'little')) + (byte + b'{%d}' % n if n else b'')
            for n in range(count)
        )

    memo = (
        rb'q' + byte + (rb'|r' + byte + rb'{2}\x00\x00' if small else rb'|r' + byte + rb'{2}[\x00-\x0f]\x00')
    )
    memo += rb'|\x94|p[0-9]{1,%d}\n' % (4 if small else 6)
    return re.compile(
        rb'(?:%s)*'
        % b'|'.join(
            [
                memo,  # memo indices below 2**16 in a small pickle, 2**20 in any other
                rb'h' + byte + rb'|j' + byte + rb'{4}|g[0-9]+\n',
                rb'[(012Ndealsu}\]\x88\x89\x93]+',  # MARK ... STACK_GLOBAL: no argument
                rb'K' + byte + rb'|M' + byte + rb'{2}|J' + byte + rb'{4}|G' + byte + rb'{8}',
                b'|'.join(sized(bytes([op]), 1, 32) for op in b'\x8cCU'),  # short strings, up to 31 bytes
                b'|'.join(sized(bytes([op]), 4, 32) for op in b'XBT'),
                sized(b'\x8a', 1, 9),  # LONG1 of at most 8 bytes
                rb'\x80[\x00-\x05]|\x95' + byte + rb'{3}\x00{5}',  # PROTO, FRAME (below 16 MiB)
                rb'[)t\x85-\x87](?:' + memo + rb')?[Rb]',
                rb'c[^\n]*\n[^\n]*\n|[SVF][^\n]*\n|I-?[0-9]{1,19}\n|L-?[0-9]{1,19}L?\n',
            ]
        )
    )


_BINARY_RUNS = {small: _binary_run(small) for small in (True, False)}
# The length field of the opcodes left to Python: strings (and bytes) of 32 bytes or more
_STRING_LENGTHS = {0x8C: 1, ord('C'): 1, ord('U'): 1, ord('X'): 4, ord('B'): 4, ord('T'): 4, 0x8D: 8, 0x8E: 8}


def _binary_ok(data: bytes) -> bool:
    """Whether ``data`` holds only those opcodes: long strings are skipped here, the rest at C speed."""
    run = _BINARY_RUNS[len(data) < _SMALL].match
    position, end = 0, len(data)
    while True:
        position = run(data, position).end()  # type: ignore[union-attr]  # a run may be empty
        if position >= end:
            return False
        size = _STRING_LENGTHS.get(data[position])
        if size is None:
            return data[position] == pickle.STOP[0] and position == end - 1
        start = position + 1 + size
        position = start + int.from_bytes(data[position + 1 : start], 'little')


def c_readable(data: bytes) -> bool:
    """Whether the C unpickler may be given ``data``: the opcode check of ``loads_upload``."""
    if _STATION_OPCODES.fullmatch(data):
        return len(data) >= _SMALL or not _LONG_PUTS[len(str(len(data)))].search(data)
    return _binary_ok(data)


# Dict keys whose hash no sender can choose: the hash of a str, bytes or
# datetime is keyed with a secret; at most a few hundred floats, and a handful
# of ints within 64 bits, share one. (A tuple's hash follows from its items';
# an int's beyond 2**61-1 is the int modulo 2**61-1.)
_KEY_TYPES = frozenset({str, bytes, int, float, bool, type(None), datetime.datetime, ImpossibleTime})
_INT_KEYS = 1 << 64


def _check_keys(keys: list[Any]) -> None:
    for key in keys:
        kind = type(key)
        if kind not in _KEY_TYPES or (kind is int and not -_INT_KEYS < key < _INT_KEYS):
            raise PickleRefused(f'a dict key of type {kind.__name__}, whose hash could be chosen')


PYTHON_SECONDS = 0.5  # Python's unpickler reads a real 100-event batch in 20 to 35 ms


class _Exact(io.BytesIO):
    """The pickle's bytes for Python's unpickler, read within PYTHON_SECONDS.

    Python's unpickler takes a short read as the data it asked for, and takes
    about a microsecond per opcode: 16 MiB of one-byte opcodes would hold a
    worker for 16 s. It reads here once per opcode (frames too are read
    through), so the clock is looked at every 1,024 reads.
    """

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.reads = 0
        self.deadline = time.monotonic() + PYTHON_SECONDS

    def read(self, size: int | None = -1) -> bytes:
        self.reads += 1
        if not self.reads & 1023 and time.monotonic() > self.deadline:
            raise PickleRefused(f'unpickling takes over {PYTHON_SECONDS:g} s (at byte {self.tell():,})')
        data = super().read(size)
        if size is not None and 0 <= size != len(data):
            raise PickleRefused(
                f'the pickle ends inside an opcode ({size:,} bytes declared, {len(data):,} left)'
            )
        return data


def _no_sets(_unpickler: Any) -> None:
    raise PickleRefused('a set (no event holds one)')


def _no_bytearrays(_unpickler: Any) -> None:
    # Python's unpickler would allocate the length BYTEARRAY8 declares before reading it
    raise PickleRefused('a bytearray (no event holds one)')


# Python's own unpickler, in Python (typeshed knows it only as the C one's alias)
_PythonUnpickler: Any = pickle._Unpickler


class _CheckedUnpickler(_AllowList, _PythonUnpickler):
    """Python's unpickler with the allow-list, which checks every dict key before it is hashed.

    20 to 30 times slower than the C unpickler: only for the pickles that the
    C unpickler cannot be given (no real client writes one).
    """

    dispatch: ClassVar[dict[int, Callable[[Any], None]]] = dict(_PythonUnpickler.dispatch)

    def __init__(self, data: bytes) -> None:
        self.reader = _Exact(data)
        super().__init__(self.reader, encoding='latin1')
        self.size = len(data)

    def _memo_index(self, index: int) -> int:
        # each memo entry takes at least a byte of the pickle
        if not 0 <= index < self.size:
            raise PickleRefused(f'memo index {index:,} beyond what a pickle of {self.size:,} bytes can hold')
        return index

    def load_put(self) -> None:
        self.memo[self._memo_index(int(self.readline()[:-1]))] = self.stack[-1]

    def load_binput(self) -> None:
        self.memo[self._memo_index(self.read(1)[0])] = self.stack[-1]

    def load_long_binput(self) -> None:
        (index,) = struct.unpack('<I', self.read(4))
        self.memo[self._memo_index(index)] = self.stack[-1]

    def load_frame(self) -> None:
        # A frame only groups reads: read through it, so that every opcode comes through _Exact (its clock)
        self.read(8)

    # After a MARK, self.stack holds what SETITEMS and DICT take
    def load_setitem(self) -> None:
        _check_keys(self.stack[-2:-1])
        _PythonUnpickler.load_setitem(self)

    def load_setitems(self) -> None:
        _check_keys(self.stack[::2])
        _PythonUnpickler.load_setitems(self)

    def load_dict(self) -> None:
        _check_keys(self.stack[::2])
        _PythonUnpickler.load_dict(self)


_CheckedUnpickler.dispatch.update(
    {
        pickle.PUT[0]: _CheckedUnpickler.load_put,
        pickle.BINPUT[0]: _CheckedUnpickler.load_binput,
        pickle.LONG_BINPUT[0]: _CheckedUnpickler.load_long_binput,
        pickle.SETITEM[0]: _CheckedUnpickler.load_setitem,
        pickle.SETITEMS[0]: _CheckedUnpickler.load_setitems,
        pickle.DICT[0]: _CheckedUnpickler.load_dict,
        pickle.FRAME[0]: _CheckedUnpickler.load_frame,
        pickle.EMPTY_SET[0]: _no_sets,
        pickle.ADDITEMS[0]: _no_sets,
        pickle.FROZENSET[0]: _no_sets,
        pickle.BYTEARRAY8[0]: _no_bytearrays,
    }
)


MEMORY_FACTOR = 32  # real pickles take 8 to 16 times their size
MEMORY_MARGIN = 50 * 1024 * 1024
_PAGE = os.sysconf('SC_PAGE_SIZE')


_statm: dict[int, int] = {}  # pid -> its open /proc/self/statm (each read is current)


def _address_space() -> int | None:
    # Kept open per process (a forked worker's /proc/self is its own): one
    # pread per upload instead of an open, a read and a close.
    pid = os.getpid()
    try:
        fd = _statm.get(pid)
        if fd is None:
            fd = _statm[pid] = os.open('/proc/self/statm', os.O_RDONLY | os.O_CLOEXEC)
        return int(os.pread(fd, 128, 0).split()[0]) * _PAGE
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
    """Unpickle ``data`` (bytes); raise PickleRefused for anything else.

    Its time is not bounded (see the module's docstring): for spool files.
    """
    # A BufferedReader lets the C unpickler peek ahead instead of calling
    # readline() per protocol-0 opcode: twice as fast on a 130 kB upload. One
    # as large as the pickle hands it all in one peek.
    reader = io.BufferedReader(io.BytesIO(data), buffer_size=max(len(data), io.DEFAULT_BUFFER_SIZE))
    return _load(_Unpickler(reader, encoding='latin1'), reader, data)


def loads_upload(data: bytes) -> Any:
    """``loads`` for an upload: also in time bounded by its size (PickleRefused beyond)."""
    if c_readable(data):
        return loads(data)
    unpickler = _CheckedUnpickler(data)
    return _load(unpickler, unpickler.reader, data)


def _load(unpickler: Any, reader: Any, data: bytes) -> Any:
    try:
        with memory_limit(MEMORY_FACTOR * len(data) + MEMORY_MARGIN):
            obj = unpickler.load()
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
