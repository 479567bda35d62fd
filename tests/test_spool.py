"""The spool file format and its durable delivery."""
import datetime
import os
import pickle
import random
import shutil

import pytest

from datastore import factory, py2pickle, spool

EVENTS = factory.batch(datetime.datetime(2024, 6, 1, 23, 59), random.Random(5))


@pytest.mark.parametrize('pickled', [py2pickle.dumps(EVENTS), pickle.dumps(EVENTS, protocol=0)],
                         ids=['python2', 'python3-protocol0'])
@pytest.mark.parametrize('cluster', ['Amsterdam', "Zürich 'quote' \\ back"])
def test_splice_is_the_spool_record_around_the_stations_own_bytes(pickled, cluster):
    spliced = spool.splice(501, cluster, pickled)
    assert pickled[:-1] in spliced
    expected = {'station_id': 501, 'cluster': cluster, 'event_list': EVENTS}
    assert spool.loads(spliced) == expected
    assert pickle.loads(spliced, encoding='latin1') == expected      # any Python 3 reader


@pytest.mark.parametrize('protocol', range(1, pickle.HIGHEST_PROTOCOL + 1))
def test_splice_leaves_binary_protocols_to_dumps(protocol):
    assert spool.splice(501, 'Amsterdam', pickle.dumps(EVENTS, protocol=protocol)) is None


def test_deliver_writes_via_tmp_and_leaves_nothing_there(tmp_path):
    data_dir = str(tmp_path)
    path = spool.deliver(data_dir, spool.INCOMING, spool.unique_name(501),
                         spool.dumps(501, 'Amsterdam', EVENTS))
    assert os.path.dirname(path) == os.path.join(data_dir, spool.INCOMING)
    assert os.listdir(os.path.join(data_dir, spool.TMP)) == []
    assert spool.load(path)['event_list'] == EVENTS
    assert spool.queued(data_dir) == [path]


@pytest.mark.parametrize('removed', [spool.TMP, spool.INCOMING])
def test_deliver_recreates_a_folder_removed_after_the_first_delivery(tmp_path, removed):
    data_dir = str(tmp_path)
    first = spool.deliver(data_dir, spool.INCOMING, 'first', b'payload')
    shutil.rmtree(os.path.join(data_dir, removed))
    second = spool.deliver(data_dir, spool.INCOMING, 'second', b'payload')
    assert open(second, 'rb').read() == b'payload'
    assert os.path.exists(first) == (removed != spool.INCOMING)


def test_deliver_that_fails_leaves_no_file(tmp_path):
    data_dir = str(tmp_path)
    spool.ensure_folders(data_dir)
    os.rmdir(os.path.join(data_dir, spool.INCOMING))
    (tmp_path / spool.INCOMING).write_text('not a folder')
    with pytest.raises(OSError):
        spool.deliver(data_dir, spool.INCOMING, 'name', b'payload')
    assert os.listdir(os.path.join(data_dir, spool.TMP)) == []
