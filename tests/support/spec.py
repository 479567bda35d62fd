"""The facts the project must match, read from ``../shared`` (the spec and the captures).

Tests that check the layout take their expected values from the spec's own
tables, never from ``datastore.eventtypes``, so that a mistake in that table
cannot hide. Where ``../shared`` is not beside the checkout those tests skip;
under CI (the ``CI`` environment variable is set) that is a failure instead.
"""

from __future__ import annotations

import functools
import os
import pathlib
import re
import typing

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / 'shared'
LAYOUT = SHARED / 'spec' / 'raw-datastore.md'


class SpecColumn(typing.NamedTuple):
    name: str
    type: str
    shape: int
    default: object
    upload: str | None  # the upload code, or the stem of an array column's codes


class SpecType(typing.NamedTuple):
    code: str
    table: str
    title: str
    extended_time: bool
    blob_codes: tuple
    columns: tuple


def shared(*parts):
    """``../shared/PARTS``; skip the test where it is missing, fail it under CI."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        message = f'{path} is not beside this checkout'
        if os.environ.get('CI'):
            pytest.fail(f'{message}; CI must have ../shared', pytrace=False)
        pytest.skip(message)
    return path


def _default(text):
    return {'False': False, 'True': True}[text] if text in ('False', 'True') else float(text)


def _stem(upload, shape):
    """'`BL1`…`BL4`' -> 'BL'; '`RED`' -> 'RED'; '' -> None."""
    codes = re.findall(r'`(\w+)`', upload)
    if not codes:
        return None
    if shape > 1:
        assert codes == [f'{codes[0][:-1]}1', f'{codes[0][:-1]}{shape}'], upload
        return codes[0][:-1]
    return codes[0]


def parse_layout(text):
    """raw-datastore.md -> {event type code: SpecType}."""
    titles = {
        m.group(2): (m.group(1), m.group(3))
        for m in re.finditer(r'^\| `(\w{3})` \| `(\w+)` \| ([^|]+?) \|', text, re.MULTILINE)
    }
    layout = {}
    for section in re.split(r'^### ', text, flags=re.MULTILINE)[1:]:
        table, code = re.match(r'`(\w+)` — event type `(\w+)`', section).groups()
        blob_line = re.search(
            r'^Blob codes: (.*?)\. Extended time columns: (yes|no)\.', section, re.MULTILINE
        )
        blob_codes = tuple(re.findall(r'`(\w+)`', blob_line.group(1)))
        columns = []
        for m in re.finditer(
            r'^\| (\d+) \| (\w+) \| (\w+)(?:\[(\d+)\])? \| ([^|]+?) \| ([^|]*?) \|$', section, re.MULTILINE
        ):
            pos, name, type_, shape, default, upload = m.groups()
            assert int(pos) == len(columns)
            shape = int(shape or 1)
            upload_stem = _stem(upload.strip(), shape)
            columns.append(SpecColumn(name, type_, shape, _default(default), upload_stem))
        assert titles[table][0] == code
        layout[code] = SpecType(
            code, table, titles[table][1], blob_line.group(2) == 'yes', blob_codes, tuple(columns)
        )
    return layout


@functools.cache
def _cached_layout():
    return parse_layout(LAYOUT.read_text(encoding='utf-8'))


def layout():
    """{event type code: SpecType} from the spec (skip or fail where it is absent)."""
    shared('spec', 'raw-datastore.md')
    return _cached_layout()


def by_table():
    return {spec_type.table: spec_type for spec_type in layout().values()}


def upload_codes(code):
    """{upload code: (column, element index or None, blob kind or None)} of event type ``code``.

    Blob kind: 'base64' for the traces (``TRn``), 'text' for every other blob code.
    """
    spec_type = layout()[code]
    blob_stems = {re.sub(r'n$', '', blob) for blob in spec_type.blob_codes}
    codes = {}
    for column in spec_type.columns:
        if column.upload is None:
            continue
        blob = None
        if column.upload in blob_stems:
            blob = 'base64' if column.upload == 'TR' else 'text'
        if column.shape == 1:
            codes[column.upload] = (column, None, blob)
        else:
            for i in range(column.shape):
                codes[f'{column.upload}{i + 1}'] = (column, i, blob)
    return codes
