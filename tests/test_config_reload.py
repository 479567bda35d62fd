"""config.ini under a running uWSGI with the production options (and the writer attached).

A broken file saved over a working one stops nothing: uploads keep their
100, the writer keeps storing, each process says what is wrong once, status
shows it; a good file is taken up. A reload (SIGHUP, what `systemctl reload`
sends) starts the master anew. A cold start on a broken file refuses.
"""

import json
import os
import re
import signal
import socket
import time

import pytest

from datastore import py2pickle
from tests.support import processes, uwsgi_server
from tests.support.pickles import batch

pytestmark = pytest.mark.slow


def body(seed, station=501, password='s3cret'):
    return uwsgi_server.upload_body(station, password, py2pickle.dumps(batch(seed)))


def errors_by_process(log_text):
    """{pid: [message]} of the ERROR lines of a log."""
    found = {}
    for line in log_text.splitlines():
        match = re.match(r'\S+ (\d+) \S+ ERROR (.*)', line)
        if match:
            found.setdefault(match[1], []).append(match[2])
    return found


@pytest.fixture
def notify(tmp_path):
    """A socket like the one systemd gives a Type=notify service (``NOTIFY_SOCKET``)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(tmp_path / 'notify'))
        sock.settimeout(10)
        yield sock


def ready(notify):
    """True once uWSGI has sent READY=1 to the notify socket."""
    while True:
        if b'READY=1' in notify.recv(4096).split(b'\n'):
            return True


def test_a_broken_config_stops_nothing_and_a_good_one_is_taken_up(make_config, tmp_path, notify):
    configfile = make_config()
    data_dir, wsgi_log, writer_log = (
        tmp_path / name for name in ('datastore', 'hisparc.log-wsgi', 'hisparc.log-writer')
    )
    env = {'NOTIFY_SOCKET': notify.getsockname()}
    with uwsgi_server.running(configfile, attach_writer=True, env=env) as server:
        assert ready(notify)
        assert server.post(body(1)) == '100'
        writer = processes.wait_for(lambda: writer_pid(data_dir), what='the attached writer')
        good = open(configfile).read()

        with open(configfile, 'a') as f:
            f.write('batch_files=none\n')
        for seed in range(2, 8):  # over more than a second: every worker looks
            assert server.post(body(seed)) == '100'
            time.sleep(0.2)
        processes.wait_for(lambda: not os.listdir(data_dir / 'incoming'), what='the writer to store them')
        problem = "[Writer] batch_files = 'none' is not a valid int"
        for log in (wsgi_log, writer_log):
            by_process = processes.wait_for(
                lambda log=log: errors_by_process(log.read_text()), what='an ERROR'
            )
            for messages in by_process.values():
                assert len(messages) == 1 and problem in messages[0] and 'not taken up' in messages[0]
        figures = json.loads(processes.get(server.port, '/hisparc/status'))
        assert figures['config_problems'] == [f'{configfile}: {problem}']
        assert figures['writer']['running'] is True

        (tmp_path / 'other.csv').write_text('501,Amsterdam,s3cret\n503,Enschede,fresh\n')
        with open(configfile, 'w') as f:
            f.write(good.replace(str(tmp_path / 'station_list.csv'), str(tmp_path / 'other.csv')))
        processes.wait_for(lambda: server.post(body(20, 503, 'fresh')) == '100', what='the new station list')
        time.sleep(1.1)
        assert {server.post(body(seed, 503, 'fresh')) for seed in range(21, 25)} == {'100'}
        processes.wait_for(lambda: 'changed: taken up' in writer_log.read_text(), what='the writer')
        assert json.loads(processes.get(server.port, '/hisparc/status'))['config_problems'] == []

        # systemctl reload: SIGHUP to the pid of the pidfile; the master starts anew
        assert int((server.run_dir / 'uwsgi.pid').read_text()) == server.process.pid
        assert (server.run_dir / 'master.fifo').exists()
        os.kill(server.process.pid, signal.SIGHUP)
        processes.wait_for(lambda: 'gracefully (RE)spawned uWSGI master' in server.log(), what='the reload')
        processes.wait_for(lambda: processes.answers(server.port), what='answers after the reload')
        assert server.post(body(30, 503, 'fresh')) == '100'
        assert server.process.poll() is None
        writer = processes.wait_for(
            lambda: writer_pid(data_dir) not in (None, writer) and writer_pid(data_dir)
        )
    processes.wait_for(lambda: processes.gone(writer), timeout=10, what='the writer to stop')


def writer_pid(data_dir):
    try:
        return json.loads((data_dir / 'writer.status').read_text())['pid']
    except (OSError, ValueError):
        return None


def test_a_cold_start_on_a_broken_config_stops_uwsgi_with_the_reason(make_config):
    configfile = make_config()
    with open(configfile, 'a') as f:
        f.write('batch_files=none\n')
    with pytest.raises(RuntimeError) as refused, uwsgi_server.running(configfile):
        pass
    assert str(refused.value).startswith('uWSGI exited with 22')  # need-app: no app could be loaded
    assert "[Writer] batch_files = 'none' is not a valid int" in str(refused.value)
