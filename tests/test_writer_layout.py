"""The written HDF5 layout, column by column, against the spec and the event-type table."""
import datetime
import pathlib
import random
import re

import pytest
import tables

from datastore.eventtypes import EVENT_TYPES, all_columns
from datastore import factory
from writer_support import day_path, drain, queue, station_path

SPEC = pathlib.Path(__file__).resolve().parent.parent.parent / 'shared' / 'spec' / 'raw-datastore.md'
WHEN = datetime.datetime(2024, 5, 17, 12, 0, 0)


def parse_spec(text):
    """raw-datastore.md -> {table: {'code', 'title', 'columns': [(name, type, shape, default, upload)]}}."""
    titles = {m.group(2): (m.group(1), m.group(3)) for m in re.finditer(
        r'^\| `(\w{3})` \| `(\w+)` \| ([^|]+?) \|', text, re.M)}
    spec = {}
    for section in re.split(r'^### ', text, flags=re.M)[1:]:
        head = re.match(r'`(\w+)` — event type `(\w+)`', section)
        table, code = head.groups()
        columns = []
        for m in re.finditer(r'^\| (\d+) \| (\w+) \| (\w+)(?:\[(\d+)\])? \| ([^|]+?) \| ([^|]*?) \|$',
                             section, re.M):
            pos, name, type_, shape, default, upload = m.groups()
            assert int(pos) == len(columns)
            columns.append((name, type_, int(shape or 1), default, upload.strip()))
        assert titles[table][0] == code
        spec[table] = {'code': code, 'title': titles[table][1], 'columns': columns}
    return spec


def spec_default(text):
    return {'False': False, 'True': True}[text] if text in ('False', 'True') else float(text)


def spec_upload(upload, shape):
    """'`BL1`…`BL4`' -> 'BL'; '`RED`' -> 'RED'; '' -> None."""
    codes = re.findall(r'`(\w+)`', upload)
    if not codes:
        return None
    if shape > 1:
        assert codes == [f'{codes[0][:-1]}1', f'{codes[0][:-1]}{shape}']
        return codes[0][:-1]
    return codes[0]


@pytest.fixture(scope='module')
def written(tmp_path_factory):
    """A day file holding one event of every type, written by the writer."""
    tmp = tmp_path_factory.mktemp('layout')
    data_dir = tmp / 'datastore'
    config = tmp / 'config.ini'
    config.write_text(f'[General]\nlog={tmp}/log\nstation_list=/dev/null\ndata_dir={data_dir}\n')
    queue(str(data_dir), factory.every_type(WHEN, random.Random(3)))
    drain(str(config))
    h5 = tables.open_file(day_path(str(data_dir), WHEN))
    yield h5, h5.get_node(station_path())
    h5.close()


def check_table(table, title, columns):
    """columns: [(name, type, shape, default)] in on-disk order."""
    assert table._v_title == title
    assert table.colnames == [c[0] for c in columns]
    for name, type_, shape, default in columns:
        col = table.coldescrs[name]
        assert col.type == type_, name
        assert col.shape == (() if shape == 1 else (shape,)), name
        assert col.dflt == default, name
        assert table.description._v_colobjects[name]._v_pos == table.colnames.index(name)


@pytest.mark.skipif(not SPEC.is_file(), reason='the spec is not beside this checkout')
def test_every_table_matches_the_spec_column_by_column(written):
    spec = parse_spec(SPEC.read_text(encoding='utf-8'))
    h5, station = written
    assert len(spec) == 14
    for table_name, entry in spec.items():
        check_table(station._f_get_child(table_name), entry['title'],
                    [(n, t, s, spec_default(d)) for n, t, s, d, _ in entry['columns']])


@pytest.mark.skipif(not SPEC.is_file(), reason='the spec is not beside this checkout')
def test_the_event_type_table_matches_the_spec():
    spec = parse_spec(SPEC.read_text(encoding='utf-8'))
    assert {e['code'] for e in spec.values()} == set(EVENT_TYPES)
    for table_name, entry in spec.items():
        event_type = EVENT_TYPES[entry['code']]
        assert (event_type.table, event_type.title) == (table_name, entry['title'])
        ours = [(c.name, c.type, c.shape, c.default, c.upload) for c in all_columns(event_type)]
        theirs = [(n, t, s, spec_default(d), spec_upload(u, s)) for n, t, s, d, u in entry['columns']]
        assert ours == theirs


def test_every_table_matches_the_event_type_table(written):
    h5, station = written
    tables_written = {node._v_name for node in station._f_iter_nodes('Table')}
    assert tables_written == {et.table for et in EVENT_TYPES.values()}
    for event_type in EVENT_TYPES.values():
        check_table(station._f_get_child(event_type.table), event_type.title,
                    [(c.name, c.type, c.shape, c.default) for c in all_columns(event_type)])


def test_groups_and_blobs_have_their_titles(written):
    h5, station = written
    assert h5.root.hisparc._v_title == 'HiSPARC data'
    assert h5.root.hisparc.cluster_amsterdam._v_title == 'HiSPARC cluster Amsterdam data'
    assert station._v_title == 'HiSPARC station 501 data'
    assert isinstance(station.blobs, tables.VLArray)
    assert isinstance(station.blobs.atom, tables.VLStringAtom)
    assert station.blobs._v_title == 'HiSPARC binary data'


def test_events_table_has_exactly_the_13_columns_sapphire_copies(written):
    h5, station = written
    assert len(station.events.colnames) == 13


def test_day_file_path_and_folder_modes(written, tmp_path_factory):
    h5, _ = written
    path = pathlib.Path(h5.filename)
    assert path.name == '2024_5_17.h5' and path.parent.name == '5' and path.parent.parent.name == '2024'
    assert path.parent.stat().st_mode & 0o777 == 0o755
    assert path.parent.parent.stat().st_mode & 0o777 == 0o755
