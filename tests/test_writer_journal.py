"""Finishing or undoing an interrupted pass: journal.recover, both branches, on real day files."""

import hashlib
import os
import sqlite3

import pytest

from datastore import datadir, ledger
from tests.support.writer import fail_next_commit
from writer import journal, layout
from writer.dayfile import DayFile, append_blobs

DAY = '2024-03-01'
STATION = layout.station_path('Amsterdam', 501)
NEW_STATION = layout.station_path('Amsterdam', 502)
BLOBS = f'{STATION}/{layout.BLOBS}'
BEFORE = [b'tr1', b'', b'tr3']  # in the file before the pass
PASS = [b'pass-1', b'pass-2']  # appended by the interrupted pass


def setup(tmp_path):
    """A data_dir whose day file an interrupted pass left: blobs added to 501, station 502 new.

    Returns (data_dir, ledger, day file path, the journal entry the pass wrote).
    """
    data_dir = datadir.DataDir(str(tmp_path / 'datastore'))
    data_dir.ensure()
    book = ledger.Ledger(data_dir)
    path = data_dir.day_file(2024, 3, 1)
    f = DayFile(path)
    append_blobs(f.blobs(f.station('Amsterdam', 501)), BEFORE)
    before = f.node_map()
    append_blobs(f.blobs(f.station('Amsterdam', 501)), PASS)
    append_blobs(f.blobs(f.station('Amsterdam', 502)), PASS)
    f.close()
    book.commit_pass(1, [], {DAY: before})  # what the ledger knew before
    entry = {
        'pass': 2,
        'pid': os.getpid(),
        'stored': '2024-03-01',
        'spool': ['s1'],
        'days': {DAY: {'new': False, 'nodes': before}},
    }
    journal.write(data_dir, entry)
    return data_dir, book, path, entry


def blobs_of(path, node=BLOBS):
    f = DayFile(path)
    try:
        blobs = f.node(node)
        return None if blobs is None else [bytes(row) for row in blobs.read()]
    finally:
        f.close()


def digest(path):
    return hashlib.sha256(open(path, 'rb').read()).hexdigest()


def test_an_uncommitted_pass_is_cut_back_to_the_journal_and_appends_go_on(tmp_path):
    data_dir, book, path, _ = setup(tmp_path)
    assert journal.recover(data_dir, book, archive_days=7)
    assert blobs_of(path) == BEFORE
    assert blobs_of(path, f'{NEW_STATION}/blobs') is None
    f = DayFile(path)
    assert f.node(STATION)._v_title == layout.station_group(501)[1]
    append_blobs(f.node(BLOBS), [b'again'])
    f.close()
    assert blobs_of(path) == [*BEFORE, b'again']
    assert sorted(os.listdir(os.path.dirname(path))) == ['2024_3_1.h5']
    assert journal.read(data_dir) is None
    assert book.damaged() == {}


def test_the_half_written_copy_of_a_killed_rollback_is_made_anew(tmp_path):
    data_dir, book, path, _ = setup(tmp_path)
    with open(path + '.rollback', 'wb') as half_written:  # what a killed rollback left
        half_written.write(b'\x89HDF\r\n')
    journal.recover(data_dir, book, archive_days=7)
    assert blobs_of(path) == BEFORE
    assert sorted(os.listdir(os.path.dirname(path))) == ['2024_3_1.h5']


def test_a_committed_pass_is_finished_and_its_day_file_left_alone(tmp_path):
    data_dir, book, path, entry = setup(tmp_path)
    for name in entry['spool']:
        data_dir.deliver(datadir.PARTIAL, name, b'spool file')
    book.commit_pass(entry['pass'], [], {})
    before = digest(path)
    assert journal.recover(data_dir, book, archive_days=7)
    assert digest(path) == before  # the rows are in: nothing is undone
    assert data_dir.queued(datadir.PARTIAL) == []
    archived = data_dir.archive_path(entry['stored'], 's1')
    assert open(archived, 'rb').read() == b'spool file'
    assert journal.read(data_dir) is None


def test_a_pass_whose_commit_fails_is_not_taken_for_committed_and_is_undone(tmp_path):
    data_dir, book, path, entry = setup(tmp_path)
    data_dir.deliver(datadir.PARTIAL, 's1', b'spool file')
    fail_next_commit(book._db())
    with pytest.raises(sqlite3.OperationalError):
        book.commit_pass(entry['pass'], [], {DAY: {}})
    assert not book.committed(entry['pass'])
    assert journal.recover(data_dir, book, archive_days=7)
    assert blobs_of(path) == BEFORE  # undone, not finished
    assert [os.path.basename(p) for p in data_dir.queued(datadir.PARTIAL)] == ['s1']  # stored again
    book.commit_pass(entry['pass'], [], {})  # the same connection takes the pass done again
    assert book.committed(entry['pass'])


def test_a_committed_pass_without_an_archive_removes_its_spool_files(tmp_path):
    data_dir, book, _, entry = setup(tmp_path)
    data_dir.deliver(datadir.PARTIAL, 's1', b'spool file')
    book.commit_pass(entry['pass'], [], {})
    journal.recover(data_dir, book, archive_days=0)
    assert data_dir.queued(datadir.PARTIAL) == []
    assert not os.path.exists(data_dir.archive_root)


def test_a_file_the_pass_created_is_removed_but_one_the_ledger_knows_is_not(tmp_path):
    data_dir, book, path, entry = setup(tmp_path)
    new_day = data_dir.day_file(2024, 3, 2)
    f = DayFile(new_day)
    append_blobs(f.blobs(f.station('Amsterdam', 501)), PASS)
    f.close()
    entry['days']['2024-03-02'] = {'new': True, 'nodes': {}}
    journal.write(data_dir, entry)
    journal.recover(data_dir, book, archive_days=7)
    assert not os.path.exists(new_day)  # it held nothing but the pass's rows

    data_dir, book, path, entry = setup(tmp_path / 'again')
    entry['days'][DAY]['new'] = True  # the journal says new, the ledger knows better
    journal.write(data_dir, entry)
    journal.recover(data_dir, book, archive_days=7)
    assert blobs_of(path) == BEFORE


def test_a_copy_that_does_not_verify_leaves_the_original_and_marks_the_day_damaged(tmp_path):
    data_dir, book, path, entry = setup(tmp_path)
    entry['days'][DAY]['nodes'][f'{STATION}/events'] = 10  # known to the journal, not in the file
    journal.write(data_dir, entry)
    before = digest(path)
    journal.recover(data_dir, book, archive_days=7)
    assert digest(path) == before
    assert list(book.damaged()) == [DAY] and book.damaged()[DAY].hard
    assert 'events cannot be copied' in book.damaged()[DAY].reason
    assert sorted(os.listdir(os.path.dirname(path))) == ['2024_3_1.h5']
    assert journal.read(data_dir) is None


def test_a_day_file_that_cannot_be_read_is_not_replaced(tmp_path):
    data_dir, book, path, _ = setup(tmp_path)
    with open(path, 'r+b') as f:  # damaged metadata near the start
        f.seek(512)
        f.write(os.urandom(512))
    before = digest(path)
    journal.recover(data_dir, book, archive_days=7)
    assert digest(path) == before
    assert list(book.damaged()) == [DAY]
