"""Faults as they happen: a disk that fills up (a real tmpfs), SIGKILL during recovery and rebuild.

Every test ends by checking that every event sent is stored exactly once and
that `audit` accounts for every batch.
"""

import glob
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from datastore import config as config_mod
from datastore import datadir, ledger
from datastore.cli import main as cli_main
from tests.support.backlog import (
    check_exactly_once,
    queue_backlog,
    start_writer,
    wait_for,
)
from tests.support.disk import MB, Filler, tmpfs
from tests.support.writer import ROOT, contents, folder_files, run_once
from writer import faults, rewrite, writer_app

pytestmark = pytest.mark.slow


@pytest.fixture
def disk(tmp_path):
    """A tmpfs of 200 MB of its own: the disk that fills up."""
    with tmpfs(tmp_path / 'disk') as mount:
        yield mount


def config_on(folder, batch_files=100, **general):
    folder.joinpath('stations.csv').write_text('501,Amsterdam,s3cret\n502,Utrecht,pa ss\n')
    text = (
        f'[General]\nlog={folder}/hisparc.log\nloglevel=debug\nstation_list={folder}/stations.csv\n'
        f'data_dir={folder}/datastore\n'
        + ''.join(f'{k}={v}\n' for k, v in general.items())
        + f'[Writer]\nsleep=0.2\nbatch_files={batch_files}\n'
    )
    path = folder / 'config.ini'
    path.write_text(text)
    return str(path)


def writer_status(data_dir):
    try:
        with open(os.path.join(data_dir, 'writer.status')) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def journal_pid(data_dir):
    try:
        with open(os.path.join(data_dir, 'writer.journal')) as f:
            return json.load(f)['pid']
    except (OSError, ValueError, KeyError):
        return None


def day_files(data_dir):
    return sorted(glob.glob(os.path.join(data_dir, '*', '*', '*.h5')))


def rollback_copies(data_dir):
    return glob.glob(os.path.join(data_dir, '*', '*', '*.rollback'))


def kill_inside_a_pass(config, data_dir):
    """Start writers until one is SIGKILLed inside a pass it started itself."""
    for _ in range(50):
        writer = start_writer(config, '--once')
        wait_for(lambda writer=writer: journal_pid(data_dir) == writer.pid or writer.poll() is not None)
        writer.send_signal(signal.SIGSTOP)
        inside = journal_pid(data_dir) == writer.pid
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        if inside:
            return
    pytest.fail('no kill landed inside a pass')


def audited(config, capsys):
    code = cli_main(['audit', '-c', config])
    return code, capsys.readouterr().out


def grows_from(before, after):
    """Every node of ``before`` is a prefix of the same node in ``after`` (rows only appended)."""
    for node, rows in before.items():
        assert after[node][: len(rows)] == rows, node


def test_disk_full_during_a_pass_is_waited_out_and_everything_is_stored_once(disk, capsys):
    config = config_on(disk)
    data_dir = str(disk / 'datastore')
    sent = queue_backlog(data_dir, 120, seed=1)
    assert run_once(config).returncode == 0
    before = {path: contents(path) for path in day_files(data_dir)}
    sent += queue_backlog(data_dir, 100, seed=2, start_at=200)
    filler = Filler(disk)
    queued = sum(os.path.getsize(p) for p in glob.glob(os.path.join(data_dir, 'incoming', '*')))
    filler.fill(leave=queued + 20 * MB)  # room for the pass to start, not to finish
    writer = start_writer(config)
    try:
        # the moment the writer has started its pass, it is held while the rest of the disk is taken
        assert wait_for(lambda: journal_pid(data_dir) == writer.pid, timeout=30)
        writer.send_signal(signal.SIGSTOP)
        try:
            assert journal_pid(data_dir) == writer.pid, 'the pass ended before the writer was held'
            filler.fill()
        finally:
            writer.send_signal(signal.SIGCONT)
        assert wait_for(lambda: writer_status(data_dir).get('state') == 'waiting', timeout=60), (
            disk / 'hisparc.log-writer'
        ).read_text()[-3000:]
        assert 'disk full' in writer_status(data_dir)['reason']
        waiting_pid = writer_status(data_dir)['pid']
        deadline = time.monotonic() + 180
        while folder_files(data_dir, 'incoming') or folder_files(data_dir, 'partial'):
            assert writer.poll() is None, writer.stderr.read()  # the writer never gives up
            filler.give_back(4 * MB)  # space comes back a little at a time
            time.sleep(0.3)
            assert time.monotonic() < deadline, 'the backlog was not stored'
        assert wait_for(lambda: writer_status(data_dir).get('state') == 'idle', timeout=30)
        assert writer_status(data_dir)['pid'] == waiting_pid == writer.pid
        log = (disk / 'hisparc.log-writer').read_text()
        assert 'pass failed, the storage is at fault: disk full' in log, log[-3000:]  # mid-pass
    finally:
        writer.send_signal(signal.SIGTERM)
        assert writer.wait(30) == 0
    os.unlink(filler.path)
    for path, rows in before.items():
        grows_from(rows, contents(path))
    check_exactly_once(data_dir, sent)
    assert not glob.glob(os.path.join(data_dir, '*', '*', '*.rollback'))
    assert audited(config, capsys)[0] == 0


def test_a_ledger_that_the_full_disk_cannot_take_is_reported_as_disk_full(disk):
    # which write a full disk stops first (a day file's or the ledger's) is chance: both say so alike
    db = sqlite3.connect(disk / 'ledger.sqlite', isolation_level=None)
    db.execute('CREATE TABLE t (b BLOB)')
    Filler(disk).fill()
    with pytest.raises(sqlite3.Error) as raised:
        db.execute('INSERT INTO t VALUES (?)', (os.urandom(4 * MB),))
    db.close()
    reason = faults.storage_reason(raised.value, datadir.DataDir(str(disk)))
    assert reason.startswith('disk full: the ledger cannot be written: '), reason


def a_pass_killed_over_a_day_file(disk, seed):
    """A 12 MB day on ``disk``, a writer SIGKILLed inside a pass over it: (config, data_dir, sent, path)."""
    config = config_on(disk)
    data_dir = str(disk / 'datastore')
    sent = queue_backlog(data_dir, 150, seed=seed, distinct=150, start_at=10)
    assert run_once(config).returncode == 0
    sent += queue_backlog(data_dir, 40, seed=seed + 1, start_at=300)
    kill_inside_a_pass(config, data_dir)
    (day_file,) = day_files(data_dir)
    return config, data_dir, sent, day_file


def test_disk_full_during_recovery_never_replaces_the_day_file_and_is_waited_out(disk, capsys):
    config, data_dir, sent, day_file = a_pass_killed_over_a_day_file(disk, seed=3)
    assert os.path.getsize(day_file) > 10 * MB
    filler = Filler(disk)
    filler.fill(leave=15 * MB)  # less than a copy of the day file needs, with the writer's reserve
    digests = {path: open(path, 'rb').read() for path in day_files(data_dir)}
    writer = start_writer(config)
    try:
        assert wait_for(lambda: writer_status(data_dir).get('state') == 'waiting', timeout=60)
        assert 'a copy of' in writer_status(data_dir)['reason']
        time.sleep(1)
        assert {path: open(path, 'rb').read() for path in day_files(data_dir)} == digests
        deadline = time.monotonic() + 180
        while (
            folder_files(data_dir, 'incoming')
            or folder_files(data_dir, 'partial')
            or os.path.exists(os.path.join(data_dir, 'writer.journal'))
        ):
            assert writer.poll() is None, writer.stderr.read()
            filler.give_back(2 * MB)
            time.sleep(0.3)
            assert time.monotonic() < deadline, 'the backlog was not stored'
    finally:
        writer.send_signal(signal.SIGTERM)
        assert writer.wait(30) == 0
    check_exactly_once(data_dir, sent)
    assert audited(config, capsys)[0] == 0


def test_a_rollback_copy_that_runs_out_of_space_is_waited_out_not_marked_damaged(disk, capsys, monkeypatch):
    config, data_dir, sent, day_file = a_pass_killed_over_a_day_file(disk, seed=14)
    original = open(day_file, 'rb').read()
    filler = Filler(disk)
    real = rewrite.cut_copy
    left = []

    def cut_copy(source, copy, nodes):  # the space the check saw is gone while the copy is written
        monkeypatch.setattr(rewrite, 'cut_copy', real)
        filler.fill(leave=2 * MB)
        try:
            real(source, copy, nodes)
        finally:
            left.append(filler.free())
            os.unlink(filler.path)  # and the space is back before the copy is checked

    monkeypatch.setattr(rewrite, 'cut_copy', cut_copy)
    app = writer_app.Writer(config_mod.load(config))
    app.run(once=True)  # it starts by undoing the killed pass
    assert len(left) == 1 and left[0] < MB  # the copy used up the disk
    assert open(day_file, 'rb').read() == original
    assert any(
        line.startswith(f'waiting: a copy of {os.path.basename(day_file)} failed') for line in app.leftovers()
    )
    assert ledger.Ledger(datadir.DataDir(data_dir)).damaged() == {}
    assert os.path.exists(os.path.join(data_dir, 'writer.journal'))  # the pass is still to undo
    assert not rollback_copies(data_dir)
    done = run_once(config)  # tried again, with the space there
    assert done.returncode == 0, done.stderr
    check_exactly_once(data_dir, sent)
    assert audited(config, capsys)[0] == 0


def test_sigkill_during_recovery_keeps_every_event_once(tmp_path, capsys):
    config = config_on(tmp_path)
    data_dir = str(tmp_path / 'datastore')
    sent = queue_backlog(data_dir, 150, seed=5, distinct=150)
    assert run_once(config).returncode == 0
    sent += queue_backlog(data_dir, 40, seed=6, start_at=300)
    rng = random.Random(7)
    kills = 0
    for _ in range(8):
        kill_inside_a_pass(config, data_dir)  # a pass to undo
        writer = start_writer(config, '--once')  # killed while it undoes it
        if wait_for(
            lambda writer=writer: rollback_copies(data_dir) or writer.poll() is not None, timeout=30
        ) and rollback_copies(data_dir):
            time.sleep(rng.uniform(0, 0.3))
            if writer.poll() is None:
                writer.send_signal(signal.SIGKILL)
                kills += 1
        writer.wait()
        for path in day_files(data_dir):
            contents(path)  # every day file opens and reads after each kill
    assert kills >= 4, kills
    done = run_once(config)
    assert done.returncode == 0, done.stderr
    check_exactly_once(data_dir, sent)
    assert audited(config, capsys)[0] == 0


def test_sigkill_during_rebuild_leaves_the_day_file_as_it_was(tmp_path, capsys):
    config = config_on(tmp_path)
    data_dir = str(tmp_path / 'datastore')
    sent = queue_backlog(data_dir, 150, seed=8, distinct=150)
    assert run_once(config).returncode == 0
    day = '2024-05-17'
    path = datadir.DataDir(data_dir).day_file(2024, 5, 17)
    before = contents(path)
    rng = random.Random(9)
    command = [sys.executable, '-m', 'datastore', 'rebuild', '-c', config, day]
    for _ in range(6):
        rebuild = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.2, 2.0))
        rebuild.send_signal(signal.SIGKILL)
        rebuild.wait()
        assert contents(path) == before
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert contents(path) == before
    assert not os.path.exists(path + '.rebuild')
    check_exactly_once(data_dir, sent)
    assert audited(config, capsys)[0] == 0


def test_once_on_a_damaged_day_file_says_so_and_exits_1(tmp_path):
    config = config_on(tmp_path)
    data_dir = str(tmp_path / 'datastore')
    queue_backlog(data_dir, 4, seed=10)
    assert run_once(config).returncode == 0
    with open(day_files(data_dir)[0], 'r+b') as f:  # 512 bytes of damaged metadata near the start
        f.seek(512)
        f.write(os.urandom(512))
    queue_backlog(data_dir, 1, seed=11, start_at=1)  # 23:51:40-23:53:20, into the damaged day
    done = run_once(config)
    assert done.returncode == 1
    assert 'damaged' in done.stderr and 'Traceback' not in done.stderr
    assert len(folder_files(data_dir, 'incoming')) >= 1
    log = (tmp_path / 'hisparc.log-writer').read_text()
    assert ' ERROR ' in log and 'hisparc-datastore rebuild' in log


def test_a_long_running_writer_is_not_stopped_by_a_day_file_it_cannot_open(tmp_path):
    config = config_on(tmp_path)
    data_dir = str(tmp_path / 'datastore')
    queue_backlog(data_dir, 4, seed=12)
    assert run_once(config).returncode == 0
    for path in day_files(data_dir):
        with open(path, 'wb') as f:
            f.write(b'garbage' * 1000)
    queue_backlog(data_dir, 1, seed=13, start_at=4)  # into the garbled day
    writer = start_writer(config)
    try:
        assert wait_for(lambda: writer_status(data_dir).get('state') == 'idle', timeout=30)
        time.sleep(1)
        assert writer.poll() is None
    finally:
        writer.send_signal(signal.SIGTERM)
        assert writer.wait(30) == 0
    assert folder_files(data_dir, 'incoming') and not folder_files(data_dir, 'partial')
