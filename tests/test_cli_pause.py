"""hisparc-datastore pause --wait: back once the writer has closed every day file; actions logged."""

import glob
import json
import os
import signal
import time

import pytest
import tables

from datastore import cli
from tests.support.backlog import data_dir_of, queue_backlog, start_writer, wait_for, writer_config
from tests.support.writer import folder_files


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def writer_state(data_dir):
    try:
        with open(os.path.join(data_dir, 'writer.status')) as f:
            return json.load(f)['state']
    except (OSError, ValueError):
        return None


def test_pause_and_resume_are_logged_in_the_tools_log(make_config, capsys, tmp_path):
    path = make_config()
    run(capsys, 'pause', '-c', path)
    run(capsys, 'resume', '-c', path)
    log = (tmp_path / 'hisparc.log-tools').read_text()
    assert ' tools.pause INFO pause asked for by ' in log and ' tools.pause INFO resume asked for by ' in log
    assert not (tmp_path / 'hisparc.log-writer').exists()  # never the services' own logs


def test_pause_wait_returns_at_once_when_no_writer_runs(make_config, capsys):
    started = time.monotonic()
    code, out, _ = run(capsys, 'pause', '--wait', '-c', make_config())
    assert code == 0 and 'no writer is running' in out
    assert time.monotonic() - started < 1.0


@pytest.mark.slow
def test_pause_wait_returns_with_every_day_file_closed_while_a_backlog_drains(make_config, capsys, tmp_path):
    config = writer_config(make_config, batch_files=1)
    data_dir = data_dir_of(config)
    queue_backlog(data_dir, 60)
    writer = start_writer(config)
    try:
        assert wait_for(lambda: writer_state(data_dir) == 'storing')
        code, out, _ = run(capsys, 'pause', '--wait', '--timeout', '30', '-c', config)
        assert code == 0 and 'has paused: every day file is closed' in out
        assert folder_files(data_dir, 'incoming'), 'the backlog was gone before the pause'
        day_files = glob.glob(os.path.join(data_dir, '*', '*', '*.h5'))
        assert day_files
        for path in day_files:
            with tables.open_file(path, 'a'):  # HDF5 refuses a file another process has open
                pass
        left = len(folder_files(data_dir, 'incoming'))
        time.sleep(0.3)
        assert len(folder_files(data_dir, 'incoming')) == left  # and it stays off
        assert run(capsys, 'resume', '-c', config)[0] == 0
        assert wait_for(lambda: not folder_files(data_dir, 'incoming'))
    finally:
        writer.send_signal(signal.SIGTERM)
        assert writer.wait(timeout=10) == 0
    log = (tmp_path / 'hisparc.log-writer').read_text()
    assert log.index(' INFO paused: ') < log.index(' INFO resumed: ')


@pytest.mark.slow
def test_pause_wait_gives_up_after_its_timeout_with_exit_1(make_config, capsys):
    config = make_config()
    data_dir = data_dir_of(config)
    writer = start_writer(config)
    try:
        assert wait_for(lambda: writer_state(data_dir) == 'idle')
        writer.send_signal(signal.SIGSTOP)  # alive and reported, but it cannot pause
        code, _, err = run(capsys, 'pause', '--wait', '--timeout', '0.5', '-c', config)
        assert code == 1 and 'has not paused within 0.5 s (it says idle)' in err
    finally:
        writer.send_signal(signal.SIGCONT)
        writer.send_signal(signal.SIGTERM)
        assert writer.wait(timeout=10) == 0
