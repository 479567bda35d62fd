"""Every durable hand-over does write, fsync, rename, folder fsync, in that order.

The order is recorded from the real system calls (the operations still
happen; they are only watched), so removing a folder fsync, or moving a file
before its bytes are fsynced, fails here.
"""

import datetime
import os
import random

import pytest

from datastore import config as config_mod
from datastore import datadir, durable, factory, ledger
from tests.support.writer import drain, queue
from writer import journal, rebuild, rewrite
from writer.dayfile import DayFile, append_blobs

WHEN = datetime.datetime(2024, 5, 17, 12, 0, 0)


class Watched:
    """``os`` as durable.py sees it, with write, fsync, rename, link, mkdir and unlink recorded."""

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

    def link(self, source, target):
        self.ops.append(('link', self.name(source), self.name(target)))
        os.link(source, target)

    def mkdir(self, path, mode=0o777):
        self.ops.append(('mkdir', self.name(path)))
        os.mkdir(path, mode)


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


def test_archiving_makes_its_folders_durably_then_renames_and_fsyncs_both_folders(watched):
    data_dir, ops = watched
    for name in 'ab':
        data_dir.deliver(datadir.PARTIAL, name, b'x')
    del ops[:]
    data_dir.archive(['a'], '2024-05-17')
    assert ops == [
        ('mkdir', 'archive'),
        ('fsync', '.'),
        ('mkdir', 'archive/2024-05-17'),
        ('fsync', 'archive'),
        ('rename', 'partial/a', 'archive/2024-05-17/a'),
        ('fsync', 'archive/2024-05-17'),
        ('fsync', 'partial'),
    ]
    del ops[:]
    data_dir.archive(['b'], '2024-05-17')  # into a folder that is there: no folder is made
    assert ops == [
        ('rename', 'partial/b', 'archive/2024-05-17/b'),
        ('fsync', 'archive/2024-05-17'),
        ('fsync', 'partial'),
    ]


def test_a_delivery_into_a_folder_removed_since_makes_it_durably_first(watched):
    data_dir, ops = watched
    os.rmdir(data_dir.folder(datadir.SUSPICIOUS))
    data_dir.deliver(datadir.SUSPICIOUS, 'a', b'x')
    assert ops[ops.index(('mkdir', 'suspicious')) :] == [
        ('mkdir', 'suspicious'),
        ('fsync', '.'),
        ('write', 'tmp/a'),
        ('fsync', 'tmp/a'),
        ('rename', 'tmp/a', 'suspicious/a'),
        ('fsync', 'suspicious'),
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


def test_a_new_day_file_has_its_folders_fsynced_as_they_are_made_and_its_name_at_close(watched):
    data_dir, ops = watched
    f = DayFile(data_dir.day_file(2024, 5, 17))
    append_blobs(f.blobs(f.station('Amsterdam', 501)), [b'a'])
    f.close()
    assert ops == [
        ('mkdir', '2024'),
        ('fsync', '.'),
        ('mkdir', '2024/5'),
        ('fsync', '2024'),
        ('fsync', '2024/5/2024_5_17.h5'),
        ('fsync', '2024/5'),
    ]


def test_rebuild_keeps_the_old_file_aside_and_fsyncs_the_new_one_before_the_swap(make_config, monkeypatch):
    path = make_config()
    config = config_mod.load(path)
    queue(config.data_dir, factory.batch(WHEN, random.Random(1)))
    drain(path)
    recorder = Watched(config.data_dir)
    monkeypatch.setattr(durable, 'os', recorder)
    monkeypatch.setattr(datadir, 'os', recorder)  # keep_aside links the old file
    kept = rebuild.rebuild(config, '2024-05-17', say=lambda _: None)
    day = '2024/5/2024_5_17.h5'
    assert recorder.ops == [
        ('fsync', f'{day}.rebuild'),
        ('link', day, recorder.name(kept)),
        ('fsync', '2024/5'),
        ('rename', f'{day}.rebuild', day),
        ('fsync', '2024/5'),
    ]


def test_a_pass_has_its_journal_on_disk_before_it_writes_any_day_file(make_config, monkeypatch):
    path = make_config()
    config = config_mod.load(path)
    rng = random.Random(2)
    queue(config.data_dir, factory.batch(WHEN, rng))
    drain(path)  # a day file the next pass appends to
    queue(config.data_dir, factory.batch(WHEN + datetime.timedelta(hours=1), rng))
    queue(config.data_dir, factory.batch(WHEN + datetime.timedelta(days=1), rng))  # and one it creates
    recorder = Watched(config.data_dir)
    monkeypatch.setattr(durable, 'os', recorder)
    real_init, real_writing = DayFile.__init__, DayFile.writing

    def init(self, day_file, day=None):
        if not os.path.exists(day_file):
            recorder.ops.append(('create', recorder.name(day_file)))
        real_init(self, day_file, day)

    def writing(self):  # every change the writer makes to an open day file is inside one
        recorder.ops.append(('change', recorder.name(self.path)))
        return real_writing(self)

    monkeypatch.setattr(DayFile, '__init__', init)
    monkeypatch.setattr(DayFile, 'writing', writing)
    drain(path)
    ops = recorder.ops
    written = [i for i, op in enumerate(ops) if op[0] in ('create', 'change')]
    assert {ops[i][1] for i in written} == {'2024/5/2024_5_17.h5', '2024/5/2024_5_18.h5'}
    renamed = ops.index(('rename', 'writer.journal.tmp', 'writer.journal'))
    assert ops[renamed - 1 : renamed + 2] == [
        ('fsync', 'writer.journal.tmp'),
        ('rename', 'writer.journal.tmp', 'writer.journal'),
        ('fsync', '.'),
    ]
    assert renamed + 1 < written[0]


def test_the_ledger_commits_a_pass_with_a_full_fsync(tmp_path):
    book = ledger.Ledger(datadir.DataDir(str(tmp_path)))
    book.commit_pass(1, [], {})
    assert book._db().execute('PRAGMA synchronous').fetchone() == (2,)  # FULL
    assert book.committed(1)
