"""The writer as a process: command line, signals, SIGKILL, locked day files, pause."""

import datetime
import glob
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

import pytest
import tables

from datastore import datadir, factory
from tests.support.backlog import (
    WHEN,
    check_exactly_once,
    data_dir_of,
    queue_backlog,
    start_writer,
    stored_rows,
    wait_for,
    writer_config,
)
from tests.support.writer import (
    day_path,
    drain,
    folder_files,
    make_writer,
    queue,
    run_once,
    station_path,
)


@pytest.mark.slow
def test_once_command_drains_the_queue_and_exits_0(make_config):
    config = make_config()
    data_dir = data_dir_of(config)
    sent = queue_backlog(data_dir, 4)
    done = run_once(config)
    assert done.returncode == 0, done.stderr
    assert folder_files(data_dir, 'incoming') == folder_files(data_dir, 'partial') == []
    check_exactly_once(data_dir, sent)


@pytest.mark.slow
def test_once_command_with_a_damaged_day_file_exits_1_and_its_events_wait(make_config):
    config = make_config()
    data_dir = data_dir_of(config)
    when = datetime.datetime(2024, 5, 17, 10, 0)
    name = queue(data_dir, factory.batch(when, random.Random(5)))
    path = day_path(data_dir, when)  # a day file where no table can go
    os.makedirs(os.path.dirname(path))
    with tables.open_file(path, 'w') as h5:
        h5.create_group(station_path(), 'events', createparents=True)
    done = run_once(config)
    assert done.returncode == 1, done.stderr
    assert f'{name} waits in incoming/: day file 2024-05-17 damaged' in done.stderr, done.stderr
    assert folder_files(data_dir, 'incoming') == [name]
    assert folder_files(data_dir, 'partial') == folder_files(data_dir, 'failed') == []


@pytest.mark.slow
@pytest.mark.parametrize(
    'text, named',
    [
        (None, 'config.ini'),
        ('[General]\nlog=-\nstation_list=/dev/null\n', 'data_dir'),
    ],
)
def test_a_bad_config_is_a_clear_error_with_exit_code_2(tmp_path, text, named):
    path = tmp_path / 'config.ini'
    if text is not None:
        path.write_text(text)
    done = run_once(str(path))
    assert done.returncode == 2
    assert named in done.stderr and 'Traceback' not in done.stderr


@pytest.mark.slow
def test_sigkill_inside_passes_stores_every_event_exactly_once(make_config):
    """Each writer is killed inside a pass it started itself, or between two of its own."""
    config = writer_config(make_config, batch_files=4)
    data_dir = data_dir_of(config)
    sent = queue_backlog(data_dir, 600, seed=1)  # enough for the most kills (a few files each)
    rng = random.Random(20261124)
    journal = os.path.join(data_dir, 'writer.journal')
    kills = mid_pass = 0
    while mid_pass < 15 and kills < 150:  # a loaded machine lands fewer kills inside a pass
        writer = start_writer(config, '--once')
        # past its start and recovery: the journal of a pass of its own
        wait_for(
            lambda writer=writer: journal_pid(journal) == writer.pid or writer.poll() is not None, timeout=30
        )
        time.sleep(rng.uniform(0, 0.03))  # a pass of 4 files takes some 20-60 ms
        if writer.poll() is not None:
            break
        writer.send_signal(signal.SIGSTOP)  # frozen, to see exactly where it is
        mid_pass += journal_pid(journal) == writer.pid
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        kills += 1
    print(f'{kills} kills, {mid_pass} of them inside a pass the killed writer had started')
    done = run_once(config)
    assert done.returncode == 0, done.stderr
    assert mid_pass >= 15, (kills, mid_pass)
    assert folder_files(data_dir, 'incoming') == folder_files(data_dir, 'partial') == []
    assert folder_files(data_dir, 'failed') == folder_files(data_dir, 'suspicious') == []
    assert not os.path.exists(journal)
    check_exactly_once(data_dir, sent)


def journal_pid(path):
    """The pid of the writer whose pass the journal describes, or None."""
    try:
        with open(path) as f:
            return json.load(f)['pid']
    except (OSError, ValueError, KeyError):
        return None


@pytest.mark.slow
@pytest.mark.parametrize('signum', [signal.SIGTERM, signal.SIGINT])
def test_sigterm_finishes_the_batch_closes_and_exits_0(make_config, signum):
    config = writer_config(make_config, batch_files=5)
    data_dir = data_dir_of(config)
    sent = queue_backlog(data_dir, 80, seed=3)
    writer = start_writer(config)
    status = os.path.join(data_dir, 'writer.status')
    assert wait_for(lambda: os.path.exists(status))
    writer.send_signal(signum)
    assert writer.wait(timeout=20) == 0, writer.stderr.read()
    assert folder_files(data_dir, 'partial') == []
    assert not os.path.exists(os.path.join(data_dir, 'writer.journal'))
    left = set(folder_files(data_dir, 'incoming'))
    assert left, 'the writer drained everything before the signal; nothing was tested'
    counts, _ = stored_rows(data_dir)  # every day file opens and reads
    assert sum(counts.values()) == len(sent) - 100 * len(left)
    assert max(counts.values()) == 1


@pytest.mark.slow
@pytest.mark.parametrize('mode', ['a', 'r'])
def test_a_locked_day_file_is_retried_later_while_other_days_go_on(make_config, mode):
    config = make_config()
    data_dir = data_dir_of(config)
    rng = random.Random(4)
    locked_day = datetime.datetime(2024, 5, 17, 10, 0)
    other_day = datetime.datetime(2024, 5, 18, 10, 0)
    first = factory.batch(locked_day, rng)
    queue(data_dir, first)
    drain(config)  # the day file exists
    holder = subprocess.Popen(
        [
            sys.executable,
            '-c',
            (
                'import sys, tables; f = tables.open_file(sys.argv[1], sys.argv[2]); '
                'print("held", flush=True); sys.stdin.read(); f.close()'
            ),
            day_path(data_dir, locked_day),
            mode,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == 'held'
        waiting = factory.batch(locked_day + datetime.timedelta(hours=1), rng)
        waiting_name = queue(data_dir, waiting)
        others = factory.batch(other_day, rng)
        queue(data_dir, others)
        drain(config)
        assert folder_files(data_dir, 'incoming') == [waiting_name]
        assert folder_files(data_dir, 'partial') == []
        with tables.open_file(day_path(data_dir, other_day)) as h5:
            station = h5.get_node(station_path())
            assert station.events.nrows + station.singles.nrows == 100
    finally:
        holder.communicate('', timeout=10)
    drain(config)
    assert folder_files(data_dir, 'incoming') == []
    sent = [(501, 'Amsterdam', e) for e in first + waiting + others]
    check_exactly_once(data_dir, sent)


def test_pause_file_holds_the_writer_until_removed(make_config):
    config = make_config()
    data_dir = data_dir_of(config)
    datadir.DataDir(str(data_dir)).ensure()
    pause = os.path.join(data_dir, 'writer.pause')
    open(pause, 'w').close()
    sent = queue_backlog(data_dir, 3, seed=5)
    app = make_writer(config)
    thread = threading.Thread(target=app.run)
    thread.start()
    try:
        status = os.path.join(data_dir, 'writer.status')
        assert wait_for(lambda: os.path.exists(status))
        time.sleep(0.3)
        assert len(folder_files(data_dir, 'incoming')) == 3
        with open(status) as f:
            assert json.load(f)['state'] == 'paused'
        assert glob.glob(os.path.join(data_dir, '*', '*', '*.h5')) == []
        os.unlink(pause)
        assert wait_for(lambda: not folder_files(data_dir, 'incoming'))
        assert wait_for(lambda: app.events_stored == 300)
    finally:
        app.request_stop()
        thread.join(timeout=10)
    assert not thread.is_alive()
    check_exactly_once(data_dir, sent)


@pytest.mark.slow
def test_once_on_a_paused_writer_exits_1_saying_it_is_paused_and_files_wait(make_config):
    config = make_config()
    data_dir = data_dir_of(config)
    sent = queue_backlog(data_dir, 2, seed=7)
    pause = os.path.join(data_dir, 'writer.pause')
    open(pause, 'w').close()
    done = run_once(config)
    assert done.returncode == 1, done.stderr
    assert f'paused ({pause} exists): 2 spool file(s) wait in incoming/' in done.stderr, done.stderr
    assert len(folder_files(data_dir, 'incoming')) == 2
    os.unlink(pause)
    done = run_once(config)
    assert done.returncode == 0, done.stderr
    check_exactly_once(data_dir, sent)


def test_pause_after_storing_closes_files_so_readers_can_open_them(make_config):
    config = make_config()
    data_dir = data_dir_of(config)
    sent = queue_backlog(data_dir, 2, seed=6)
    app = make_writer(config)
    thread = threading.Thread(target=app.run)
    thread.start()
    try:
        assert wait_for(lambda: app.events_stored == 200)
        open(os.path.join(data_dir, 'writer.pause'), 'w').close()
        assert wait_for(lambda: app.state == 'paused')
        for path in glob.glob(os.path.join(data_dir, '*', '*', '*.h5')):
            with tables.open_file(path, 'a'):  # not locked by the writer
                pass
    finally:
        app.request_stop()
        thread.join(timeout=10)
    check_exactly_once(data_dir, sent)


def cpu_seconds(pid):
    with open(f'/proc/{pid}/stat') as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists('/proc/self/stat'), reason='needs /proc')
def test_idle_writer_uses_no_cpu_to_speak_of(make_config):
    config = make_config(writer_sleep=0.2)
    data_dir = data_dir_of(config)
    writer = start_writer(config)
    try:
        assert wait_for(lambda: os.path.exists(os.path.join(data_dir, 'writer.status')))
        before = cpu_seconds(writer.pid)
        time.sleep(2.0)
        assert cpu_seconds(writer.pid) - before < 0.1
        queue(data_dir, factory.batch(WHEN, random.Random(7)))  # and it still wakes up
        assert wait_for(lambda: not folder_files(data_dir, 'incoming'), timeout=10)
    finally:
        writer.send_signal(signal.SIGTERM)
        assert writer.wait(timeout=10) == 0


@pytest.mark.slow
def test_a_second_writer_on_the_same_data_dir_refuses_to_run(make_config):
    config = make_config()
    data_dir = data_dir_of(config)
    first = start_writer(config)
    try:
        assert wait_for(lambda: os.path.exists(os.path.join(data_dir, 'writer.status')))
        second = run_once(config)
        assert second.returncode == 3  # its own status: a service manager must not restart it
        assert 'another writer is running' in second.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=10) == 0


@pytest.mark.slow
def test_the_writer_ignores_a_broken_config_and_follows_a_good_one_to_a_new_data_dir(make_config, tmp_path):
    config = make_config()
    data_dir, elsewhere = data_dir_of(config), str(tmp_path / 'elsewhere')
    log = tmp_path / 'hisparc.log-writer'
    good = open(config).read()
    writer = start_writer(config)
    try:
        assert wait_for(lambda: os.path.exists(os.path.join(data_dir, 'writer.status')))
        with open(config, 'a') as f:
            f.write('batch_files=none\n')
        queue(data_dir, factory.batch(WHEN, random.Random(8)))
        assert wait_for(lambda: ' ERROR ' in log.read_text() and not folder_files(data_dir, 'incoming'))
        assert "batch_files = 'none' is not a valid int" in log.read_text()
        with open(config, 'w') as f:
            f.write(good.replace(data_dir, elsewhere))
        queue(elsewhere, factory.batch(WHEN, random.Random(9)))
        assert wait_for(lambda: os.path.exists(os.path.join(elsewhere, 'writer.status')))
        assert wait_for(lambda: not folder_files(elsewhere, 'incoming'))
        assert writer.poll() is None
        assert f'this writer starts again on {elsewhere}' in log.read_text()
    finally:
        writer.send_signal(signal.SIGTERM)
        assert writer.wait(timeout=10) == 0
    assert log.read_text().count(' ERROR ') == 1
