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
import base64
import binascii
import calendar
import datetime
import functools
import math

import numpy as np

from datastore.eventtypes import EVENT_TYPES, all_columns, upload_codes
from . import layout

EVENT_ID, TIMESTAMP, NANOSECONDS, EXT_TIMESTAMP = range(4)
NS_PER_S = 1_000_000_000


class Unfit(ValueError):
    """An event that cannot be stored as a row; the message says why."""


def _int_fitter(info):
    low, high = int(info.min), int(info.max)

    def fit(value):
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


def _float_fitter(info):
    largest = float(info.max)

    def fit(value):
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


def _fit_bool(value):
    if isinstance(value, int):
        return bool(value)
    raise Unfit(f'{value!r} is not a boolean')


# numpy dtype kind -> makes the fit function of a dtype
_FITTERS = {
    'i': lambda dt: _int_fitter(np.iinfo(dt)),
    'u': lambda dt: _int_fitter(np.iinfo(dt)),
    'f': lambda dt: _float_fitter(np.finfo(dt)),
    'b': lambda dt: _fit_bool,
}


@functools.lru_cache(maxsize=None)
def fitter(type_name):
    """The function that checks and converts a value for a column type."""
    dt = layout.numpy_dtype(type_name)
    return _FITTERS[dt.kind](dt)


def _trace_blob(value):
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise Unfit('undecodable trace (not base64)') from None


def _text_blob(value):
    if isinstance(value, bytes):
        return value
    try:
        return str(value).encode('latin-1')
    except UnicodeEncodeError:
        raise Unfit(f'{value!r} cannot be stored as ISO-8859-1 text') from None


# Column.blob -> value to the bytes stored in ``blobs``
BLOB_CONVERTERS = {'base64': _trace_blob, 'text': _text_blob}


class Plan:
    """How the events of one type become rows: precomputed once per type."""

    def __init__(self, code):
        event_type = EVENT_TYPES[code]
        columns = all_columns(event_type)
        self.code = code
        self.table = event_type.table
        self.dtype = layout.dtype(code)
        self.extended_time = event_type.extended_time
        self.template = [[c.default] * c.shape if c.shape > 1 else c.default for c in columns]
        self.array_positions = [pos for pos, c in enumerate(columns) if c.shape > 1]
        self.blob_columns = [c.name for c in columns if c.blob]
        position = {c.name: pos for pos, c in enumerate(columns)}
        # upload code -> (position, array index or None, convert, is blob)
        self.setters = {
            upload: (position[column.name], index,
                     BLOB_CONVERTERS[column.blob] if column.blob else fitter(column.type),
                     bool(column.blob))
            for upload, (column, index) in upload_codes(event_type).items()}
        self.fit_timestamp = fitter('time32')
        self.fit_nanoseconds = fitter('uint32')
        self.fit_ext_timestamp = fitter('uint64')

    def new_row(self):
        row = self.template[:]
        for pos in self.array_positions:
            row[pos] = row[pos][:]
        return row

    def array(self, rows, first_event_id, blob_bases):
        """Rows -> structured array with event ids; blob cells made absolute.

        A row's blob cells hold indexes into its own event's blobs; adding
        the row's ``blob_bases`` entry (where its blobs start in ``blobs``)
        gives the index in the file. Cells left at the default (-1) stay.
        """
        arr = np.array([tuple(row) for row in rows], dtype=self.dtype)
        arr['event_id'] = np.arange(first_event_id, first_event_id + len(rows))
        if self.blob_columns:
            bases = np.asarray(blob_bases, dtype=np.int64)
            for name in self.blob_columns:
                cells = arr[name]
                offsets = np.broadcast_to(bases.reshape((-1,) + (1,) * (cells.ndim - 1)), cells.shape)
                np.add(cells, offsets, out=cells, where=cells >= 0, casting='unsafe')
        return arr


PLANS = {code: Plan(code) for code in EVENT_TYPES}


def _time_columns(plan, header, row):
    when = header.get('datetime')
    if not isinstance(when, datetime.datetime):
        raise Unfit(f'no datetime in header ({when!r})')
    utc = when.utctimetuple()
    row[TIMESTAMP] = timestamp = plan.fit_timestamp(calendar.timegm(utc))
    if plan.extended_time:
        row[NANOSECONDS] = nanoseconds = plan.fit_nanoseconds(header.get('nanoseconds', 0))
        row[EXT_TIMESTAMP] = plan.fit_ext_timestamp(timestamp * NS_PER_S + nanoseconds)
    return utc


def convert(event, minimum_year, unknown_codes):
    """One event -> (code, (year, month, day), row, blobs); raise Unfit.

    A blob cell holds the index of the blob in the returned list; the caller
    makes it absolute. Upload codes the layout does not know are added to
    ``unknown_codes`` as (event type, code) and otherwise ignored.
    """
    try:
        header, datalist = event['header'], event['datalist']
        code = header['eventtype_uploadcode']
    except (TypeError, KeyError):
        raise Unfit('malformed event (no header, datalist or event type)') from None
    plan = PLANS.get(code)
    if plan is None:
        raise Unfit(f'unknown event type {code!r}')
    row = plan.new_row()
    utc = _time_columns(plan, header, row)
    if utc.tm_year < minimum_year:
        raise Unfit(f'dated {utc.tm_year}, before the minimum year {minimum_year}')
    blobs = []
    setters = plan.setters
    try:
        for item in datalist:
            upload = item['data_uploadcode']
            setter = setters.get(upload)
            if setter is None:
                unknown_codes.add((code, upload))
                continue
            pos, index, convert_value, is_blob = setter
            value = convert_value(item['data'])
            if is_blob:
                blobs.append(value)
                value = len(blobs) - 1
            if index is None:
                row[pos] = value
            else:
                row[pos][index] = value
    except Unfit as exc:
        raise Unfit(f'{code} {upload}: {exc}') from None
    except (TypeError, KeyError):
        raise Unfit(f'{code}: malformed datalist item') from None
    return code, (utc.tm_year, utc.tm_mon, utc.tm_mday), row, blobs
