"""Every durable hand-over does write, fsync, rename, folder fsync, in that order.

The order is recorded from the real system calls (the operations still
happen; they are only watched), so removing a folder fsync, or moving a file
before its bytes are fsynced, fails here.
"""

import os

import pytest

from datastore import datadir, durable, ledger
from writer import journal, rewrite
from writer.dayfile import DayFile, append_blobs


class Watched:
    """``os`` as durable.py sees it, with write, fsync, rename and unlink recorded."""

    def __init__(self, root):
        self.root, self.ops, self.fds = str(root), [], {}

    def __getattr__(self, name):
        return getattr(os, name)

    def name(self, path):
        return os.path.relpath(path, self.root)

    def open(self, path, flags, mode=0o777):
        fd = os.open(path, flags, mode)
        self.fds[fd] = self.name(path)
        return fd

    def close(self, fd):
        self.fds.pop(fd, None)
        os.close(fd)

    def write(self, fd, data):
        if not self.ops or self.ops[-1] != ('write', self.fds[fd]):
            self.ops.append(('write', self.fds[fd]))
        return os.write(fd, data)

    def fsync(self, fd):
        self.ops.append(('fsync', self.fds[fd]))
        os.fsync(fd)

    def rename(self, source, target):
        self.ops.append(('rename', self.name(source), self.name(target)))
        os.rename(source, target)

    def unlink(self, path):
        self.ops.append(('unlink', self.name(path)))
        os.unlink(path)


@pytest.fixture
def watched(tmp_path, monkeypatch):
    """(DataDir, the recorded operations)"""
    data_dir = datadir.DataDir(str(tmp_path))
    data_dir.ensure()
    recorder = Watched(tmp_path)
    monkeypatch.setattr(durable, 'os', recorder)
    return data_dir, recorder.ops


def test_deliver_writes_fsyncs_renames_then_fsyncs_the_folder(watched):
    data_dir, ops = watched
    data_dir.deliver(datadir.INCOMING, 'a', b'payload')
    assert ops == [
        ('write', 'tmp/a'),
        ('fsync', 'tmp/a'),
        ('rename', 'tmp/a', 'incoming/a'),
        ('fsync', 'incoming'),
    ]


def test_claim_renames_into_partial_then_fsyncs_partial_and_incoming(watched):
    data_dir, ops = watched
    for name in 'ab':
        data_dir.deliver(datadir.INCOMING, name, b'x')
    del ops[:]
    data_dir.claim(data_dir.queued())
    assert ops == [
        ('rename', 'incoming/a', 'partial/a'),
        ('rename', 'incoming/b', 'partial/b'),
        ('fsync', 'partial'),
        ('fsync', 'incoming'),
    ]


def test_release_renames_back_then_fsyncs_both_folders(watched):
    data_dir, ops = watched
    data_dir.deliver(datadir.PARTIAL, 'a', b'x')
    del ops[:]
    data_dir.release(data_dir.queued(datadir.PARTIAL))
    assert ops == [('rename', 'partial/a', 'incoming/a'), ('fsync', 'incoming'), ('fsync', 'partial')]


def test_fail_moves_to_failed_then_fsyncs_both_folders(watched):
    data_dir, ops = watched
    data_dir.deliver(datadir.PARTIAL, 'a', b'x')
    del ops[:]
    data_dir.fail(data_dir.queued(datadir.PARTIAL)[0])
    assert ops == [('rename', 'partial/a', 'failed/a'), ('fsync', 'failed'), ('fsync', 'partial')]


def test_requeue_moves_to_incoming_then_fsyncs_both_folders(watched):
    data_dir, ops = watched
    data_dir.deliver(datadir.SUSPICIOUS, 'a', b'x')
    del ops[:]
    data_dir.requeue(data_dir.queued(datadir.SUSPICIOUS)[0])
    assert ops == [('rename', 'suspicious/a', 'incoming/a'), ('fsync', 'incoming'), ('fsync', 'suspicious')]


def test_archiving_a_stored_spool_file_renames_then_fsyncs_both_folders(watched):
    data_dir, ops = watched
    data_dir.deliver(datadir.PARTIAL, 'a', b'x')
    del ops[:]
    data_dir.archive(['a'], '2024-05-17')
    assert ops == [
        ('rename', 'partial/a', 'archive/2024-05-17/a'),
        ('fsync', 'archive/2024-05-17'),
        ('fsync', 'partial'),
    ]


def test_finishing_without_an_archive_unlinks_then_fsyncs_partial(watched):
    data_dir, ops = watched
    data_dir.deliver(datadir.PARTIAL, 'a', b'x')
    del ops[:]
    data_dir.finish(['a'])
    assert ops == [('unlink', 'partial/a'), ('fsync', 'partial')]


def test_the_journal_is_written_fsynced_renamed_and_its_folder_fsynced(watched):
    data_dir, ops = watched
    journal.write(data_dir, {'pass': 1})
    assert ops == [
        ('write', 'writer.journal.tmp'),
        ('fsync', 'writer.journal.tmp'),
        ('rename', 'writer.journal.tmp', 'writer.journal'),
        ('fsync', '.'),
    ]


def test_a_rewritten_day_file_is_fsynced_before_it_is_renamed_over_the_original(watched):
    data_dir, ops = watched
    path = data_dir.day_file(2024, 5, 17)
    f = DayFile(path)
    append_blobs(f.blobs(f.station('Amsterdam', 501)), [b'a', b'b'])
    nodes = f.node_map()
    f.close()
    del ops[:]
    rewrite.rewrite(data_dir, path, nodes)
    assert ops == [
        ('fsync', '2024/5/2024_5_17.h5.rollback'),
        ('rename', '2024/5/2024_5_17.h5.rollback', '2024/5/2024_5_17.h5'),
        ('fsync', '2024/5'),
    ]


def test_the_ledger_commits_a_pass_with_a_full_fsync(tmp_path):
    book = ledger.Ledger(datadir.DataDir(str(tmp_path)))
    book.commit_pass(1, [], {})
    assert book._db().execute('PRAGMA synchronous').fetchone() == (2,)  # FULL
    assert book.committed(1)
