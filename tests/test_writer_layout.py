"""The written HDF5 layout, column by column, against the spec (never against our own table)."""

import datetime
import pathlib
import random

import pytest
import tables

from datastore import factory
from datastore.eventtypes import EVENT_TYPES, all_columns
from tests.support import spec
from tests.support.writer import day_path, drain, queue, station_path

WHEN = datetime.datetime(2024, 5, 17, 12, 0, 0)


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


def test_every_table_matches_the_spec_column_by_column(written):
    layout = spec.layout()
    _h5, station = written
    assert len(layout) == 14
    assert {node._v_name for node in station._f_iter_nodes('Table')} == {
        entry.table for entry in layout.values()
    }
    for entry in layout.values():
        check_table(
            station._f_get_child(entry.table),
            entry.title,
            [(c.name, c.type, c.shape, c.default) for c in entry.columns],
        )


def test_the_event_type_table_matches_the_spec():
    layout = spec.layout()
    assert set(layout) == set(EVENT_TYPES)
    for code, entry in layout.items():
        event_type = EVENT_TYPES[code]
        assert (event_type.table, event_type.title, event_type.extended_time) == (
            entry.table,
            entry.title,
            entry.extended_time,
        )
        ours = [(c.name, c.type, c.shape, c.default, c.upload) for c in all_columns(event_type)]
        assert ours == [tuple(c) for c in entry.columns]
        blob_stems = {c.upload for c in event_type.columns if c.blob}
        assert blob_stems == {b.removesuffix('n') for b in entry.blob_codes}


def test_groups_and_blobs_have_their_titles(written):
    h5, station = written
    assert h5.root.hisparc._v_title == 'HiSPARC data'
    assert h5.root.hisparc.cluster_amsterdam._v_title == 'HiSPARC cluster Amsterdam data'
    assert station._v_title == 'HiSPARC station 501 data'
    assert isinstance(station.blobs, tables.VLArray)
    assert isinstance(station.blobs.atom, tables.VLStringAtom)
    assert station.blobs._v_title == 'HiSPARC binary data'


def test_events_table_has_exactly_the_13_columns_sapphire_copies(written):
    _h5, station = written
    assert len(station.events.colnames) == 13


def test_day_file_path_and_folder_modes(written, tmp_path_factory):
    h5, _ = written
    path = pathlib.Path(h5.filename)
    assert path.name == '2024_5_17.h5' and path.parent.name == '5' and path.parent.parent.name == '2024'
    assert path.parent.stat().st_mode & 0o777 == 0o755
    assert path.parent.parent.stat().st_mode & 0o777 == 0o755
