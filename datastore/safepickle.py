"""Unpickle uploads and spool files without running anything.

Unpickling can call any global, so this unpickler resolves exactly the
globals that real uploads reference and refuses every other one. Python 2
pickles are read with ``encoding='latin1'``: byte strings become ``str``
losslessly and Python 2 ``datetime`` states rebuild.

NumPy scalars (pysparc sends ``PH1`` etc. as ``numpy.int32``) are rebuilt as
plain ``int``/``float``/``bool`` by our own stand-ins for ``numpy.dtype`` and
``numpy.core.multiarray.scalar``: the value is all the datastore needs, and
the upload worker never imports numpy.
"""

from __future__ import annotations

import datetime
import io
import pickle
import struct
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


ALLOWED_GLOBALS = {
    ('datetime', 'datetime'): datetime.datetime,
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


def loads(data: bytes) -> Any:
    """Unpickle ``data`` (bytes); raise PickleRefused for anything else."""
    # A BufferedReader lets the C unpickler peek ahead instead of calling
    # readline() per protocol-0 opcode: twice as fast on a 130 kB upload.
    reader = io.BufferedReader(io.BytesIO(data))
    try:
        obj = _Unpickler(reader, encoding='latin1').load()
    except PickleRefused:
        raise
    except (Exception, RecursionError) as exc:
        raise PickleRefused(f'{type(exc).__name__}: {exc}') from None
    # No client sends bytes after the STOP opcode; refusing them also means an
    # accepted pickle is exactly ``data`` (spool.splice relies on that).
    if reader.tell() != len(data):
        raise PickleRefused(f'{len(data) - reader.tell()} bytes after the end of the pickle')
    return obj
