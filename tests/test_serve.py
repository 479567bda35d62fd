"""hisparc-datastore serve (what `make serve` runs): from nothing to a stored upload, then Ctrl-C."""

import contextlib
import json
import os
import pathlib
import shlex
import signal
import socket
import subprocess
import sys
import time

import pytest
import tables

from datastore import cli
from tests.support import uwsgi_server
from tests.support.processes import answers, get, gone, post, wait_for

pytestmark = pytest.mark.slow

COMMAND = pathlib.Path(sys.executable).with_name('hisparc-datastore')


def writer_pid(var, data='data'):
    try:
        return json.loads((var / data / 'writer.status').read_text())['pid']
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def serving(var, port, data='data'):
    """`hisparc-datastore serve` in its own session, as a terminal would run it."""
    out = open(var.parent / 'serve.out', 'w+')
    process = subprocess.Popen(
        [str(COMMAND), 'serve', '--var', str(var), '--port', str(port)],
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for(lambda: process.poll() is not None or answers(port), what='uWSGI to answer')
        assert process.poll() is None, pathlib.Path(out.name).read_text()
        # The writer reports once the master runs its loop (which spawns it);
        # a signal in the instant before that can be missed by uWSGI.
        wait_for(lambda: writer_pid(var, data), what='the writer to report')
        yield process, out
    finally:
        pids = [process.pid, writer_pid(var, data)]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
        for pid in pids:
            if pid and not gone(pid):
                os.kill(pid, signal.SIGKILL)
        out.close()


def test_serve_stores_an_upload_restarts_the_writer_and_stops_cleanly_on_ctrl_c(tmp_path):
    var, port = tmp_path / 'var', uwsgi_server.free_port()
    with serving(var, port) as (process, out):
        # The embedded default configuration, with the demo station.
        assert (var / 'station_list.csv').read_text() == '99,Demo,demo\n'
        assert f'data_dir = {var}/data' in (var / 'config.ini').read_text()

        # It says where things are, and how to send a test upload: run that command.
        banner = wait_for(lambda: (out.seek(0), out.read())[1], what='the banner')
        assert f'config        {var}/config.ini' in banner and f'{var}/data' in banner
        line = next(line for line in banner.splitlines() if ' simulate ' in line)
        simulate = subprocess.run(shlex.split(line), capture_output=True, text=True, timeout=60)
        assert simulate.returncode == 0, simulate.stdout + simulate.stderr
        assert '100   OK' in simulate.stdout

        # The attached writer stores it in today's HDF5 file.
        today = time.gmtime()
        day_file = (
            var
            / 'data'
            / str(today.tm_year)
            / str(today.tm_mon)
            / f'{today.tm_year}_{today.tm_mon}_{today.tm_mday}.h5'
        )

        def stored():
            if not day_file.exists() or os.listdir(var / 'data' / 'incoming'):
                return 0
            try:
                with tables.open_file(str(day_file)) as h5:
                    station = h5.get_node('/hisparc/cluster_demo/station_99')
                    return station.events.nrows + station.singles.nrows
            except (OSError, tables.HDF5ExtError, tables.NoSuchNodeError):
                return 0  # the writer has it open (HDF5 locks it), or is not done

        assert wait_for(stored, what='the events in the day file') == 100

        # Every other path reaches the upload app; a bare GET answers 400.
        assert post(port, '/') == '400'
        assert get(port, '/hisparc/upload') == '400'
        figures = json.loads(get(port, '/hisparc/status'))
        assert figures['writer']['running'] is True
        assert figures['stations']['99']['last_upload'] is not None
        assert 'hisparc_writer_running 1.0' in get(port, '/hisparc/status?format=prometheus')

        # A writer that dies is restarted by the uWSGI master.
        first = writer_pid(var)
        os.kill(first, signal.SIGKILL)
        second = wait_for(
            lambda: writer_pid(var) not in (None, first) and writer_pid(var), timeout=60, what='a new writer'
        )
        assert not gone(second)

        # Ctrl-C: SIGINT to the terminal's process group stops uWSGI and the writer.
        os.killpg(process.pid, signal.SIGINT)
        assert process.wait(30) == 0
        wait_for(lambda: gone(second), timeout=10, what='the writer to stop')
        with pytest.raises(ProcessLookupError):
            os.killpg(process.pid, 0)
        log = (var / 'log' / 'hisparc.log-writer').read_text()
        assert log.rstrip().endswith('writer stopped')


def test_serve_keeps_an_existing_configuration(tmp_path):
    var, port = tmp_path / 'var', uwsgi_server.free_port()
    var.mkdir()
    (var / 'stations.csv').write_text('501,Amsterdam,s3cret\n')
    text = f'[General]\nlog={var}/mine.log\nstation_list={var}/stations.csv\ndata_dir={var}/mydata\n'
    (var / 'config.ini').write_text(text)
    with serving(var, port, data='mydata') as (process, _out):
        assert (var / 'config.ini').read_text() == text
        assert not (var / 'station_list.csv').exists()
        assert json.loads(get(port, '/hisparc/status'))['data_dir'] == f'{var}/mydata'
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0


def test_serve_with_a_broken_configuration_says_so_and_does_not_start(tmp_path):
    var = tmp_path / 'var'
    var.mkdir()
    (var / 'config.ini').write_text('[General]\nlog=-\n')
    result = subprocess.run(
        [str(COMMAND), 'serve', '--var', str(var), '--port', '1'], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 1
    assert 'required key [General] station_list is missing' in result.stderr
    assert 'Traceback' not in result.stderr


def test_serve_refuses_a_configuration_whose_station_list_is_missing(tmp_path):
    var = tmp_path / 'var'
    var.mkdir()
    (var / 'config.ini').write_text(f'[General]\nlog=-\nstation_list={var}/gone.csv\ndata_dir={var}/data\n')
    result = subprocess.run(
        [str(COMMAND), 'serve', '--var', str(var), '--port', '1'], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 1
    assert f'station_list = {var}/gone.csv: cannot read it' in result.stderr


def test_serve_on_a_busy_port_says_so_before_its_banner(tmp_path, capsys):
    with socket.socket() as taken:
        taken.bind(('127.0.0.1', 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert cli.main(['serve', '--var', str(tmp_path / 'var'), '--port', str(port)]) == 1
    out, err = capsys.readouterr()
    assert f'cannot listen on 127.0.0.1:{port}: Address already in use (choose another with --port)' in err
    assert 'HiSPARC datastore on' not in out
