"""hisparc-datastore status, pause and resume; errors are one clear line."""

import json
import os
import subprocess
import sys
import time

import pytest

from datastore import cli, datadir
from datastore.received import Received


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_status_shows_queue_held_files_writer_and_stations(make_config, capsys):
    path = make_config()
    data_dir = os.path.join(os.path.dirname(path), 'datastore')
    datadir.DataDir(str(data_dir)).deliver(datadir.INCOMING, 'a', b'x')
    os.utime(os.path.join(data_dir, datadir.INCOMING, 'a'), (time.time() - 125,) * 2)
    datadir.DataDir(str(data_dir)).deliver(datadir.SUSPICIOUS, 'b', b'x')
    Received(datadir.DataDir(str(data_dir)), 10**9).record(501, 'aa', 0, [])
    with open(os.path.join(data_dir, datadir.WRITER_STATUS), 'w') as f:
        json.dump(
            {
                'pid': os.getpid(),
                'state': 'storing',
                'updated': time.time(),
                'stations': {'501': 1795486000},
                'events_stored': 99,
            },
            f,
        )
    code, out, _ = run(capsys, 'status', '--config', path)
    assert code == 0
    assert '1 file(s) in incoming/, oldest waiting 2 min' in out
    assert 'suspicious/ 1   failed/ 0   partial/ 0' in out
    assert f'running (pid {os.getpid()}, storing' in out and '99 events stored' in out
    station_line = next(line for line in out.splitlines() if line.strip().startswith('501'))
    assert time.strftime('%Y-%m-%d', time.gmtime()) in station_line
    assert '(0 s ago)' in station_line or '(1 s ago)' in station_line


def test_status_json_is_the_gathered_figures_and_the_health_verdict(make_config, capsys):
    code, out, _ = run(capsys, 'status', '--json', '-c', make_config())
    figures = json.loads(out)
    assert code == 1  # no writer
    assert set(figures) == {
        'time',
        'data_dir',
        'folders',
        'queue',
        'writer',
        'stations',
        'damaged_days',
        'audit',
        'stored_per_hour',
        'config_problems',
        'health',
    }
    assert figures['writer']['running'] is False
    assert figures['health'] == {'healthy': False, 'reasons': ['the writer is not running']}


def test_the_station_table_stays_aligned_whatever_the_ages(make_config, capsys):
    path = make_config()
    data_dir = datadir.DataDir(os.path.join(os.path.dirname(path), 'datastore'))
    data_dir.ensure()
    now = time.time()
    uploads = Received(data_dir, 10**9)
    for number, age in ((7, 5), (501, 3 * 86400 + 7), (14008, 400 * 86400), (99, 3599)):
        uploads.record(number, 'aa', 0, [], now=now - age)
    with open(data_dir.path(datadir.WRITER_STATUS), 'w') as f:
        json.dump({'stations': {'501': now - 1234567, '7': now + 90}}, f)
    _, out, _ = run(capsys, 'status', '-c', path)
    table = out[out.index('station  ') :].splitlines()
    assert len(table) == 5
    assert [line.split()[0] for line in table[1:]] == ['7', '99', '501', '14008']
    for column in ('last upload (UTC)', 'last stored event (UTC)'):
        start = table[0].index(column)
        for line in table[1:]:  # every cell starts under its heading: a date, or '-'
            assert line[start - 2 : start] == '  ' and line[start] in '12-', (column, line)
    assert [line.index(line.split()[0]) + len(line.split()[0]) for line in table] == [7] * 5


@pytest.mark.slow
def test_status_piped_into_head_ends_quietly(make_config):
    path = make_config()
    data_dir = datadir.DataDir(os.path.join(os.path.dirname(path), 'datastore'))
    data_dir.ensure()
    uploads = Received(data_dir, 10**9)
    for number in range(1, 3000):
        uploads.record(number, 'aa', 0, [])
    command = f'{os.path.dirname(sys.executable)}/hisparc-datastore status -c {path} | head -3'
    done = subprocess.run(['bash', '-c', command], capture_output=True, text=True, timeout=60)
    assert len(done.stdout.splitlines()) == 3
    assert done.stderr == ''


def test_status_says_when_the_writer_is_not_running(make_config, capsys):
    _, out, _ = run(capsys, 'status', '-c', make_config())
    assert 'not running' in out


def test_pause_and_resume_create_and_remove_the_pause_file(make_config, capsys):
    path = make_config()
    pause = os.path.join(os.path.dirname(path), 'datastore', datadir.WRITER_PAUSE)
    assert run(capsys, 'pause', '-c', path)[0] == 0
    assert os.path.exists(pause)
    assert 'paused: writer.pause exists' in run(capsys, 'status', '-c', path)[1]
    assert run(capsys, 'resume', '-c', path)[0] == 0
    assert not os.path.exists(pause)
    assert 'was not paused' in run(capsys, 'resume', '-c', path)[1]


@pytest.mark.slow
def test_a_missing_config_is_one_clear_line_not_a_traceback(tmp_path):
    command = [
        os.path.join(os.path.dirname(sys.executable), 'hisparc-datastore'),
        'status',
        '--config',
        str(tmp_path / 'nope.ini'),
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.startswith('hisparc-datastore status: cannot read config file')
    assert 'nope.ini' in result.stderr and 'Traceback' not in result.stderr


def test_bad_arguments_are_explained_by_argparse(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(['simulate', '--batches', 'many'])
    assert exc.value.code == 2
    assert "'many' is not a positive whole number" in capsys.readouterr().err


def test_status_of_a_broken_config_shows_the_figures_and_what_is_wrong(make_config, capsys):
    path = make_config()
    with open(path, 'a') as f:
        f.write('batch_files=none\n')
    code, out, _ = run(capsys, 'status', '-c', path)
    assert code == 1  # unwell until the file is mended (and no writer runs)
    problem = f"{path}: [Writer] batch_files = 'none' is not a valid int"
    assert f'config     PROBLEM {problem}' in out
    assert f'- config.ini on disk not taken up: {problem}' in out
    assert 'keep their last good configuration' in out and 'queue      0 file(s)' in out
    code, out, _ = run(capsys, 'status', '--json', '-c', path)
    assert json.loads(out)['config_problems'] == [problem]
