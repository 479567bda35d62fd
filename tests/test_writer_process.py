"""The writer as a process: command line, signals, SIGKILL, locked day files, pause."""

import base64
import collections
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

import numpy as np
import pytest
import tables

from datastore import datadir, factory
from tests.support import spec
from tests.support.writer import (
    ROOT,
    day_path,
    drain,
    expected_row,
    folder_files,
    make_writer,
    plain,
    queue,
    run_once,
    station_path,
    trace_samples,
)

WHEN = datetime.datetime(2024, 5, 17, 23, 50, 0)
STATIONS = ((501, 'Amsterdam'), (502, 'Utrecht'))


def writer_config(make_config, **writer_keys):
    """A config with extra [Writer] keys (the last section of make_config's file)."""
    config = make_config()
    with open(config, 'a') as f:
        f.writelines(f'{key}={value}\n' for key, value in writer_keys.items())
    return config


def data_dir_of(config):
    return os.path.join(os.path.dirname(config), 'datastore')


def shifted(events, seconds):
    """The same events, ``seconds`` later."""
    return [
        {
            'header': dict(
                e['header'], datetime=e['header']['datetime'] + datetime.timedelta(seconds=seconds)
            ),
            'datalist': e['datalist'],
        }
        for e in events
    ]


def queue_backlog(data_dir, files, seed=0, distinct=20):
    """Spool files of 100 events (a third pickled by Python 2) from two stations,
    around midnight; return (station_id, cluster, event) of every event sent.

    ``distinct`` batches are drawn; later files repeat them at later times.
    """
    rng = random.Random(seed)
    batches = [
        factory.batch(WHEN + datetime.timedelta(seconds=100 * i), rng) for i in range(min(files, distinct))
    ]
    sent = []
    for i in range(files):
        station_id, cluster = STATIONS[i % 2]
        events = shifted(batches[i % distinct], 100 * distinct * (i // distinct))
        queue(data_dir, events, station_id, cluster, py2=(i % 3 == 0))
        sent += [(station_id, cluster, event) for event in events]
    return sent


def identity(table_name, row):
    """What makes a stored row unique: time plus content (all but event_id and blob indexes)."""
    return (
        table_name,
        *(
            tuple(row[name].tolist()) if row[name].shape else row[name].item()
            for name in row.dtype.names
            if name not in ('event_id', 'traces')
        ),
    )


def stored_rows(data_dir):
    """(station_id, identity) -> count, and every CIC row's trace blobs, over all day files."""
    counts = collections.Counter()
    traces = {}
    for path in glob.glob(os.path.join(data_dir, '*', '*', '*.h5')):
        with tables.open_file(path) as h5:
            for table in h5.walk_nodes('/hisparc', 'Table'):
                station_id = int(table._v_parent._v_name.split('_')[1])
                rows = table.read()
                assert list(rows['event_id']) == list(range(1, len(rows) + 1))
                blobs = table._v_parent.blobs
                for row in rows:
                    key = (station_id, identity(table.name, row))
                    counts[key] += 1
                    if table.name == 'events':
                        traces[station_id, int(row['ext_timestamp'])] = [blobs[int(i)] for i in row['traces']]
    return counts, traces


def expected(sent):
    """The same identities, built from the source events (CIC and SIN: no blob columns but traces)."""
    counts = collections.Counter()
    for station_id, _, event in sent:
        spec_type = spec.layout()[event['header']['eventtype_uploadcode']]
        row = np.zeros(
            1,
            dtype=[
                (c.name, _numpy_type(c.type), (c.shape,) if c.shape > 1 else ()) for c in spec_type.columns
            ],
        )[0]
        for column in spec_type.columns:
            row[column.name] = column.default
        for name, value in plain(expected_row(event)).items():
            if name != 'traces':
                row[name] = [value[i] for i in sorted(value)] if isinstance(value, dict) else value
        counts[station_id, identity(spec_type.table, row)] += 1
    return counts


def _numpy_type(spec_type):
    return 'int32' if spec_type == 'time32' else spec_type


def check_exactly_once(data_dir, sent):
    counts, traces = stored_rows(data_dir)
    assert counts == expected(sent)
    assert max(counts.values()) == 1
    cics = [(s, e) for s, _, e in sent if e['header']['eventtype_uploadcode'] == 'CIC']
    assert len(traces) == len(cics)
    for station_id, event in cics:
        source = {d['data_uploadcode']: d['data'] for d in event['datalist']}
        stored = traces[station_id, expected_row(event)['ext_timestamp']]
        for i, blob in enumerate(stored):
            assert trace_samples(blob) == trace_samples(base64.b64decode(source[f'TR{i + 1}']))


def start_writer(config, *args):
    return subprocess.Popen(
        [sys.executable, '-m', 'writer', config, *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(condition, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


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
def test_once_command_that_hits_a_failing_pass_exits_1_and_keeps_the_files(make_config):
    config = make_config()
    data_dir = data_dir_of(config)
    when = datetime.datetime(2024, 5, 17, 10, 0)
    name = queue(data_dir, factory.batch(when, random.Random(5)))
    path = day_path(data_dir, when)  # a day file where no table can go
    os.makedirs(os.path.dirname(path))
    with tables.open_file(path, 'w') as h5:
        h5.create_group(station_path(), 'events', createparents=True)
    done = run_once(config)
    assert done.returncode == 1 and 'a pass failed' in done.stderr, done.stderr
    assert folder_files(data_dir, 'partial') == [name]


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
def test_sigkill_at_random_moments_stores_every_event_exactly_once(make_config):
    config = writer_config(make_config, batch_files=2)
    data_dir = data_dir_of(config)
    sent = queue_backlog(data_dir, 400, seed=1)
    rng = random.Random()
    journal = os.path.join(data_dir, 'writer.journal')
    kills = mid_pass = 0
    while kills < 40 and not (kills >= 15 and mid_pass >= 5):  # random: enough of both
        writer = start_writer(config, '--once')
        # from the first pass on, a random moment (often mid-pass)
        wait_for(lambda writer=writer: os.path.exists(journal) or writer.poll() is not None, timeout=20)
        time.sleep(rng.uniform(0, 0.15))
        if writer.poll() is not None:
            break
        mid_pass += os.path.exists(journal)
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        kills += 1
    done = run_once(config)
    assert done.returncode == 0, done.stderr
    assert kills >= 10 and mid_pass >= 3, (kills, mid_pass)
    assert folder_files(data_dir, 'incoming') == folder_files(data_dir, 'partial') == []
    assert folder_files(data_dir, 'failed') == folder_files(data_dir, 'suspicious') == []
    assert not os.path.exists(os.path.join(data_dir, 'writer.journal'))
    check_exactly_once(data_dir, sent)


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
        assert second.returncode == 1
        assert 'another writer is running' in second.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=10) == 0
