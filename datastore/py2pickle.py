r"""Emit pickles as the deployed Python 2 clients do (protocol 0, cPickle).

The stations run Python 2; tests, benchmarks and the station simulator need
their bytes without a Python 2 at hand. This writes the same opcodes: ``(l``
lists and ``(d`` dicts with ``p``/``g`` memo marks, ``S'…'`` byte strings,
``I``/``F`` numbers (``I01``/``I00`` for bools), ``cdatetime\ndatetime`` with
its 10-byte state, and numpy scalars as ``cnumpy.core.multiarray\nscalar``.

Strings are memoized by value (Python 2 does it by identity; both are valid
pickles, and for interned strings the bytes agree).
"""

from __future__ import annotations

import datetime
import struct
from typing import Any

from .safepickle import ImpossibleTime


class NumpyScalar:
    """Marks a value that pysparc sends as a numpy scalar (``int32`` etc.)."""

    def __init__(self, value: float, dtype: str = 'i4') -> None:
        self.value, self.dtype = value, dtype


class _Dtype:
    def __init__(self, descr: str) -> None:
        self.descr = descr


_NUMPY_FORMATS = {'i4': '<i', 'i8': '<q', 'u4': '<I', 'f8': '<d', 'f4': '<f'}


def _py2_repr(data: str) -> str:
    """Python 2 ``repr()`` of a byte string (``str`` holding latin-1 chars)."""
    quote = '"' if "'" in data and '"' not in data else "'"
    out = [quote]
    for ch in data:
        o = ord(ch)
        if ch in (quote, '\\'):
            out.append('\\' + ch)
        elif ch == '\t':
            out.append('\\t')
        elif ch == '\n':
            out.append('\\n')
        elif ch == '\r':
            out.append('\\r')
        elif o < 32 or o >= 127:
            out.append(f'\\x{o:02x}')
        else:
            out.append(ch)
    out.append(quote)
    return ''.join(out)


def _float_repr(value: float) -> str:
    text = repr(value)
    return text.removesuffix('.0')


class _Emitter:
    def __init__(self) -> None:
        self.out: list[str] = []
        self.memo: dict[tuple[Any, ...], int] = {}

    def remember(self, key: tuple[Any, ...]) -> None:
        """Give the object just emitted the next memo slot (``p``)."""
        self.memo[key] = n = len(self.memo)
        self.out.append(f'p{n}\n')

    def recall(self, key: tuple[Any, ...]) -> bool:
        """Emit ``g`` for an object already memoized; True if it was."""
        if key in self.memo:
            self.out.append(f'g{self.memo[key]}\n')
            return True
        return False

    def string(self, value: str | bytes) -> None:
        if isinstance(value, bytes):
            value = value.decode('latin1')
        if not value:  # cPickle never memoizes ''
            self.out.append("S''\n")
        elif not self.recall(('S', value)):
            self.out.append(f'S{_py2_repr(value)}\n')
            self.remember(('S', value))

    def mark(self, opcode: str) -> None:
        """A new container: ``(l`` or ``(d``, memoized."""
        self.out.append(f'({opcode}')
        self.remember(('obj', len(self.memo)))

    def global_(self, module: str, name: str) -> None:
        if not self.recall(('c', module, name)):
            self.out.append(f'c{module}\n{name}\n')
            self.remember(('c', module, name))

    def call(self, *args: Any) -> None:
        """Call the global just emitted: ``(args t`` then ``R``."""
        self.out.append('(')
        for arg in args:
            self.emit(arg)
        self.out.append('t')
        self.remember(('obj', len(self.memo)))
        self.out.append('R')
        self.remember(('obj', len(self.memo)))

    def emit(self, obj: Any) -> None:
        if obj is None:
            self.out.append('N')
        elif obj is True or obj is False:
            self.out.append('I01\n' if obj else 'I00\n')
        elif isinstance(obj, int):
            self.out.append(f'I{obj}\n')
        elif isinstance(obj, float):
            self.out.append(f'F{_float_repr(obj)}\n')
        elif isinstance(obj, (str, bytes)):
            self.string(obj)
        elif isinstance(obj, list):
            self.mark('l')
            for item in obj:
                self.emit(item)
                self.out.append('a')
        elif isinstance(obj, dict):
            self.mark('d')
            for key, value in obj.items():
                self.emit(key)
                self.emit(value)
                self.out.append('s')
        elif isinstance(obj, datetime.datetime):
            us = obj.microsecond
            state = bytes(
                [
                    obj.year >> 8,
                    obj.year & 0xFF,
                    obj.month,
                    obj.day,
                    obj.hour,
                    obj.minute,
                    obj.second,
                    us >> 16,
                    (us >> 8) & 0xFF,
                    us & 0xFF,
                ]
            )
            self.global_('datetime', 'datetime')
            self.call(state)
        elif isinstance(obj, ImpossibleTime):  # a broken station clock's state, as it sends it
            self.global_('datetime', 'datetime')
            self.call(obj.state)
        elif isinstance(obj, NumpyScalar):
            self.global_('numpy.core.multiarray', 'scalar')
            self.call(_Dtype(obj.dtype), struct.pack(_NUMPY_FORMATS[obj.dtype], obj.value))
        elif isinstance(obj, _Dtype):
            self.global_('numpy', 'dtype')
            self.call(obj.descr, 0, 1)
            self.out.append("(I3\nS'<'\nNNNI-1\nI-1\nI0\nt")
            self.remember(('obj', len(self.memo)))
            self.out.append('b')
        else:
            raise TypeError(f'cannot emit {type(obj).__name__} as a Python 2 pickle')


def dumps(obj: Any) -> bytes:
    """Python 2 protocol-0 pickle bytes of ``obj`` (ASCII only)."""
    emitter = _Emitter()
    emitter.emit(obj)
    emitter.out.append('.')
    return ''.join(emitter.out).encode('ascii')
