"""Events -> table rows and blobs.

An event becomes a row (a list in on-disk column order) plus the blobs its
blob columns point at; rows of one (day file, station, table) are turned into
one numpy structured array and appended in one call.

Every value is checked against its column before it is stored: an event with
a value that does not fit is refused as a whole (``Unfit``), never clipped or
wrapped. The rules, by numpy dtype kind:

- integers: ``int`` and ``bool`` within the type's range (``numpy.iinfo``);
  a finite ``float`` is truncated toward zero first, as the deployed writer
  did (weather stations send ``-999.0`` for int16 columns);
- floats: ``int``/``float``/``bool``; finite values beyond the float32/64
  range are refused, NaN and infinities are kept (they are valid floats);
- bool: ``bool`` or ``int`` (non-zero is True);
- strings, bytes and anything else never go into a numeric column.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import functools
import math
import sys
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from datastore.eventtypes import EVENT_TYPES, upload_codes

from . import layout

NS_PER_S = 1_000_000_000


Fit = Callable[[Any], Any]  # checks a value for a column type and converts it


class Unfit(ValueError):
    """An event that cannot be stored as a row; the message says why."""


def _int_fitter(info: np.iinfo) -> Fit:
    low, high = int(info.min), int(info.max)

    def fit(value: Any) -> int:
        if type(value) is float:
            if not math.isfinite(value):
                raise Unfit(f'{value!r} is not a finite number')
            value = int(value)
        elif not isinstance(value, int):
            raise Unfit(f'{value!r} is not a number')
        if low <= value <= high:
            return value
        raise Unfit(f'{value!r} is out of range {low}..{high}')

    return fit


def _float_fitter(info: np.finfo) -> Fit:
    largest = float(info.max)

    def fit(value: Any) -> float:
        if not isinstance(value, (int, float)):
            raise Unfit(f'{value!r} is not a number')
        try:
            value = float(value)
        except OverflowError:
            raise Unfit(f'{value!r} is out of range') from None
        if math.isfinite(value) and abs(value) > largest:
            raise Unfit(f'{value!r} is out of range')
        return value

    return fit


def _fit_bool(value: Any) -> bool:
    if isinstance(value, int):
        return bool(value)
    raise Unfit(f'{value!r} is not a boolean')


# numpy dtype kind -> makes the fit function of a dtype
_FITTERS = {
    'i': lambda dt: _int_fitter(np.iinfo(dt)),
    'u': lambda dt: _int_fitter(np.iinfo(dt)),
    'f': lambda dt: _float_fitter(np.finfo(dt)),
    'b': lambda _dt: _fit_bool,
}


@functools.cache
def fitter(type_name: str) -> Fit:
    """The function that checks and converts a value for a column type."""
    dt = layout.numpy_dtype(type_name)
    return _FITTERS[dt.kind](dt)


UNDECODABLE = 'undecodable trace (not base64)'

if sys.version_info >= (3, 11):
    # the C check b64decode(validate=True) wraps, called directly: through a
    # partial (its keyword merged at every call) it took a sixth longer a trace

    def _trace_blob(value: Any) -> bytes:
        try:
            return binascii.a2b_base64(value, strict_mode=True)
        except (binascii.Error, TypeError, ValueError):
            raise Unfit(UNDECODABLE) from None

else:

    def _trace_blob(value: Any) -> bytes:
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, TypeError, ValueError):
            raise Unfit(UNDECODABLE) from None


def _text_blob(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    try:
        return str(value).encode('latin-1')
    except UnicodeEncodeError:
        raise Unfit(f'{value!r} cannot be stored as ISO-8859-1 text') from None


# Column.blob -> value to the bytes stored in ``blobs``
BLOB_CONVERTERS = {'base64': _trace_blob, 'text': _text_blob}


class Plan:
    """How the events of one type become rows: precomputed once per type.

    A row is a flat list of the data columns' values (array columns spread
    over ``shape`` cells), without the time columns, which ``convert``
    returns apart as exact integers. ``array`` builds the rows of a table in
    one go through a float64 matrix: every value that fits a data column
    (at most 32-bit integers, float32/64, bool) is exact in float64.
    """

    def __init__(self, code: str) -> None:
        event_type = EVENT_TYPES[code]
        self.code = code
        self.table = event_type.table
        self.dtype = layout.dtype(code)
        self.extended_time = event_type.extended_time
        self.template: list[Any] = []
        self.slices: list[tuple[str, int, int, bool]] = []  # (column, first cell, last + 1, is array)
        self.blob_columns = [c.name for c in event_type.columns if c.blob]
        cell: dict[str, int] = {}
        for column in event_type.columns:
            cell[column.name] = len(self.template)
            self.slices.append(
                (column.name, len(self.template), len(self.template) + column.shape, column.shape > 1)
            )
            self.template += [column.default] * column.shape
        # upload code -> (cell, fast type, low, high, convert, is blob): a value of the
        # fast type within low..high is stored as it is; any other goes through convert
        self.setters: dict[str, tuple[int, Any, Any, Any, Fit, bool]] = {}
        for upload, (column, index) in upload_codes(event_type).items():
            position = cell[column.name] + (index or 0)
            setter: tuple[int, Any, Any, Any, Fit, bool]
            if column.blob:
                setter = (position, None, 0, 0, BLOB_CONVERTERS[str(column.blob)], True)
            else:
                setter = (position, *FAST_PATHS[column.type], fitter(column.type), False)
            self.setters[upload] = setter
        self.fit_timestamp = fitter('time32')
        self.fit_nanoseconds = fitter('uint32')
        self.fit_ext_timestamp = fitter('uint64')

    def array(
        self, times: list[tuple[int, ...]], rows: list[list[Any]], first_event_id: int, blob_bases: list[int]
    ) -> np.ndarray:
        """Rows -> structured array with event ids; blob cells made absolute.

        A row's blob cells hold indexes into its own event's blobs; adding
        the row's ``blob_bases`` entry (where its blobs start in ``blobs``)
        gives the index in the file. Cells left at the default (-1) stay.
        """
        count = len(rows)
        arr = np.empty(count, dtype=self.dtype)
        arr['event_id'] = np.arange(first_event_id, first_event_id + count)
        time_values = np.array(times, dtype=np.int64).reshape(count, -1)
        for i, name in enumerate(TIME_NAMES[: time_values.shape[1]]):
            arr[name] = time_values[:, i]
        values = np.array(rows, dtype=np.float64).reshape(count, len(self.template))
        for name, first, last, is_array in self.slices:
            arr[name] = values[:, first:last] if is_array else values[:, first]
        if self.blob_columns:
            bases = np.asarray(blob_bases, dtype=np.int64)
            for name in self.blob_columns:
                cells = arr[name]
                offsets = np.broadcast_to(bases.reshape((-1,) + (1,) * (cells.ndim - 1)), cells.shape)
                np.add(cells, offsets, out=cells, where=cells >= 0, casting='unsafe')
        return arr


def _fast_path(type_name: str) -> tuple[type, Any, Any]:
    """(type, low, high) of the values a column takes without conversion."""
    dt = layout.numpy_dtype(type_name)
    if dt.kind in 'iu':
        return int, int(np.iinfo(dt).min), int(np.iinfo(dt).max)
    if dt.kind == 'f':
        return float, -float(np.finfo(dt).max), float(np.finfo(dt).max)
    return bool, False, True


FAST_PATHS = {name: _fast_path(name) for name in layout.PYTABLES_COLUMNS}
TIME_NAMES = ('timestamp', 'nanoseconds', 'ext_timestamp')
PLANS = {code: Plan(code) for code in EVENT_TYPES}


EPOCH = datetime.datetime(1970, 1, 1)
SECOND = datetime.timedelta(seconds=1)


class Row(NamedTuple):
    """One event as it is stored."""

    code: str  # event type
    day: tuple[int, int, int]  # (year, month, day) of its day file, UTC
    times: tuple[int, ...]  # timestamp[, nanoseconds, ext_timestamp]
    values: list[Any]  # the data columns, in on-disk order (Plan.template)
    blobs: list[bytes]  # what its blob cells point at, in order

    @property
    def timestamp(self) -> int:
        return self.times[0]


_TIME32, _UINT32, _UINT64 = (FAST_PATHS[name][1:] for name in ('time32', 'uint32', 'uint64'))


def _times(plan: Plan, header: dict[str, Any]) -> tuple[datetime.datetime, tuple[int, ...]]:
    """(UTC datetime, time column values); a naive datetime is read as UTC.

    As for the data columns, an exact int within its column's range is taken
    as it is, without a call; anything else goes through the column's fit
    function, which converts or refuses it.
    """
    when = header['datetime']
    if when.tzinfo is not None:
        when = when.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    # whole seconds since 1970, as calendar.timegm, by C-level datetime arithmetic
    timestamp = (when - EPOCH) // SECOND
    if not _TIME32[0] <= timestamp <= _TIME32[1]:
        timestamp = plan.fit_timestamp(timestamp)
    if not plan.extended_time:
        return when, (timestamp,)
    nanoseconds = header.get('nanoseconds', 0)
    if type(nanoseconds) is not int or not _UINT32[0] <= nanoseconds <= _UINT32[1]:
        nanoseconds = plan.fit_nanoseconds(nanoseconds)
    ext_timestamp = timestamp * NS_PER_S + nanoseconds
    if not _UINT64[0] <= ext_timestamp <= _UINT64[1]:
        ext_timestamp = plan.fit_ext_timestamp(ext_timestamp)
    return when, (timestamp, nanoseconds, ext_timestamp)


def convert(event: dict[str, Any], unknown_codes: set[tuple[str, str]]) -> Row:
    """One sound event (``datastore.events``) -> its Row; raise Unfit.

    A blob cell holds the index of the blob in the row's own list; the caller
    makes it absolute. Upload codes the layout does not know are added to
    ``unknown_codes`` as (event type, code) and ignored.
    """
    header, datalist = event['header'], event['datalist']
    code = header['eventtype_uploadcode']
    plan = PLANS.get(code)
    if plan is None:
        raise Unfit(f'unknown event type {code!r}')
    utc, times = _times(plan, header)
    row = plan.template[:]
    blobs: list[bytes] = []
    setters = plan.setters
    upload = None
    try:
        for item in datalist:
            upload = item['data_uploadcode']
            setter = setters.get(upload)
            if setter is None:
                unknown_codes.add((code, upload))
                continue
            position, fast, low, high, convert_value, is_blob = setter
            value = item['data']
            if type(value) is not fast or not low <= value <= high:
                value = convert_value(value)
                if is_blob:
                    blobs.append(value)
                    value = len(blobs) - 1
            row[position] = value
    except Unfit as exc:
        raise Unfit(f'{code} {upload}: {exc}') from None
    return Row(code, (utc.year, utc.month, utc.day), times, row, blobs)
