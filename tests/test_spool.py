"""The spool file format and its durable delivery."""

import datetime
import os
import pickle
import random
import shutil

import pytest

from datastore import datadir, factory, py2pickle, spoolfile

EVENTS = factory.batch(datetime.datetime(2024, 6, 1, 23, 59), random.Random(5))


@pytest.mark.parametrize(
    'pickled',
    [py2pickle.dumps(EVENTS), pickle.dumps(EVENTS, protocol=0), pickle.dumps(EVENTS, protocol=1)],
    ids=['python2', 'python3-protocol0', 'python3-protocol1'],
)
@pytest.mark.parametrize('cluster', ['Amsterdam', "Zürich 'quote' \\ back"])
def test_splice_is_the_spool_record_around_the_stations_own_bytes(pickled, cluster):
    spliced = spoolfile.splice(501, cluster, pickled)
    assert pickled[:-1] in spliced
    expected = {'station_id': 501, 'cluster': cluster, 'event_list': EVENTS}
    assert spoolfile.loads(spliced) == expected
    assert pickle.loads(spliced, encoding='latin1') == expected  # any Python 3 reader


@pytest.mark.parametrize('protocol', range(2, pickle.HIGHEST_PROTOCOL + 1))
def test_splice_leaves_protocols_with_a_proto_opcode_to_dumps(protocol):
    assert spoolfile.splice(501, 'Amsterdam', pickle.dumps(EVENTS, protocol=protocol)) is None


def test_deliver_writes_via_tmp_and_leaves_nothing_there(tmp_path):
    data_dir = str(tmp_path)
    path = datadir.DataDir(str(data_dir)).deliver(
        datadir.INCOMING, datadir.unique_name(501), spoolfile.dumps(501, 'Amsterdam', EVENTS)
    )
    assert os.path.dirname(path) == os.path.join(data_dir, datadir.INCOMING)
    assert os.listdir(os.path.join(data_dir, datadir.TMP)) == []
    assert spoolfile.load(path)['event_list'] == EVENTS
    assert datadir.DataDir(str(data_dir)).queued() == [path]


@pytest.mark.parametrize('removed', [datadir.TMP, datadir.INCOMING])
def test_deliver_recreates_a_folder_removed_after_the_first_delivery(tmp_path, removed):
    data_dir = str(tmp_path)
    first = datadir.DataDir(str(data_dir)).deliver(datadir.INCOMING, 'first', b'payload')
    shutil.rmtree(os.path.join(data_dir, removed))
    second = datadir.DataDir(str(data_dir)).deliver(datadir.INCOMING, 'second', b'payload')
    assert open(second, 'rb').read() == b'payload'
    assert os.path.exists(first) == (removed != datadir.INCOMING)


def test_deliver_that_fails_leaves_no_file(tmp_path):
    data_dir = str(tmp_path)
    datadir.DataDir(str(data_dir)).ensure()
    os.rmdir(os.path.join(data_dir, datadir.INCOMING))
    (tmp_path / datadir.INCOMING).write_text('not a folder')
    with pytest.raises(OSError):
        datadir.DataDir(str(data_dir)).deliver(datadir.INCOMING, 'name', b'payload')
    assert os.listdir(os.path.join(data_dir, datadir.TMP)) == []
