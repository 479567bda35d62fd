"""Hostile input under a real uWSGI with the production options (examples/uwsgi.ini), over real sockets."""

import contextlib
import datetime
import http.client
import pathlib
import pickle
import socket
import time

import pytest

from datastore import config as config_mod
from datastore import datadir, py2pickle, safepickle, spoolfile, uwsgi_ini
from tests.support import uwsgi_server
from tests.support.pickles import BOMBS, IMPOSSIBLE, batch, event_at, writes_as_another
from tests.support.uwsgi_server import upload_body

pytestmark = pytest.mark.slow

STATIONS = '501,Amsterdam,s3cret\n²,Super,pw\n502,Utrecht,pa ss\n'
MB = 1 << 20


@pytest.fixture
def site(make_config, tmp_path):
    """(config path, data_dir, upload log) of an installation whose station list has a bad line."""
    return (
        make_config(stations=STATIONS, max_upload_bytes=200_000),
        tmp_path / 'datastore',
        tmp_path / 'hisparc.log-wsgi',
    )


def records(data_dir, folder=datadir.INCOMING):
    path = data_dir / folder
    return [spoolfile.load(str(p)) for p in sorted(path.iterdir())] if path.is_dir() else []


def workers(master):
    """The pids of a uWSGI master's worker processes."""
    children = pathlib.Path(f'/proc/{master}/task/{master}/children').read_text().split()
    return [int(pid) for pid in children]


def memory(pid, field):
    """A memory figure of ``pid`` from /proc (VmRSS now, VmHWM its peak), in bytes."""
    for line in pathlib.Path(f'/proc/{pid}/status').read_text().splitlines():
        if line.startswith(f'{field}:'):
            return int(line.split()[1]) * 1024
    raise AssertionError(f'no {field}')


def reset_peak(pid):
    """Start the peak (VmHWM) of ``pid`` afresh from what it holds now."""
    pathlib.Path(f'/proc/{pid}/clear_refs').write_text('5')
    return memory(pid, 'VmRSS')


def exchange(port, request, read_timeout=30):
    """What a raw client reads back after sending ``request`` whole: (reply bytes, seconds)."""
    started = time.monotonic()
    with socket.create_connection(('127.0.0.1', port)) as sock:
        sock.sendall(request)
        sock.settimeout(read_timeout)
        reply = b''
        while chunk := sock.recv(65536):
            reply += chunk
    return reply, time.monotonic() - started


def test_no_pickle_of_any_protocol_sets_another_station_and_a_bad_line_stops_nobody(site):
    configfile, data_dir, log_path = site
    with uwsgi_server.running(configfile) as server:
        for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
            crafted = writes_as_another(batch(protocol), protocol)
            assert server.post(upload_body(501, 's3cret', crafted)) == '100', protocol
        assert server.post(upload_body(502, 'pa ss', py2pickle.dumps(batch(9)))) == '100'
    stored = records(data_dir)
    assert sorted((r['station_id'], r['cluster']) for r in stored) == [(501, 'Amsterdam')] * 6 + [
        (502, 'Utrecht')
    ]
    assert 'line 2 skipped' in log_path.read_text()


def test_allocation_bombs_are_refused_within_a_second_and_the_worker_stays_small(make_config, tmp_path):
    configfile, data_dir = make_config(), tmp_path / 'datastore'  # the default body limit, 16 MiB
    with uwsgi_server.running(configfile, processes=1) as server:
        assert server.post(upload_body(501, 's3cret', py2pickle.dumps(batch()))) == '100'  # warmed up
        (worker,) = workers(server.process.pid)
        for name, bomb in BOMBS.items():
            body = upload_body(501, 's3cret', bomb)
            before = reset_peak(worker)
            started = time.monotonic()
            assert server.post(body) == '208', name
            assert time.monotonic() - started < 1.0, name
            assert workers(server.process.pid) == [worker], f'{name} cost the worker its life'
            assert memory(worker, 'VmHWM') - before <= 32 * len(body) + 50 * MB, name
        assert server.post(upload_body(501, 's3cret', py2pickle.dumps(batch(2)))) == '100'
    assert len(records(data_dir)) == 2


def test_the_worker_memory_limit_is_above_what_the_largest_upload_may_take():
    (limit,) = [
        value for _, options in uwsgi_ini.GROUPS for name, value in options if name == 'evil-reload-on-rss'
    ]
    worker = 30 * MB  # what a worker holds before it unpickles
    largest = config_mod.default('max_upload_bytes')  # read once and decoded once more
    needs = worker + 2 * largest + safepickle.MEMORY_FACTOR * largest + safepickle.MEMORY_MARGIN
    assert needs < int(limit) * MB < 2 * needs


def copies(events, times):
    """``times`` distinct copies of ``events``, a day apart (cheaper than making new traces)."""
    return [
        {
            'header': {
                **event['header'],
                'datetime': event['header']['datetime'] + datetime.timedelta(days=n),
            },
            'datalist': [
                {**item, 'data': f'{item["data"]}{n}' if isinstance(item['data'], str) else item['data']}
                for item in event['datalist']
            ],
        }
        for n in range(times)
        for event in events
    ]


def test_a_worker_past_the_memory_limit_is_killed_and_replaced(make_config):
    configfile = make_config()
    big = pickle.dumps(copies(batch(), 100), protocol=4)  # 10 MB: 150 MB at its peak, 50 MB after
    # the production limit, lowered so that this real upload passes it (a worker holds 30 MB before)
    options = ('--evil-reload-on-rss', '40', '--mem-collector-freq', '1')
    with uwsgi_server.running(configfile, *options, processes=1) as server:
        assert server.post(upload_body(501, 's3cret', py2pickle.dumps(batch()))) == '100'
        (worker,) = workers(server.process.pid)
        with contextlib.suppress(http.client.HTTPException, OSError):  # killed while it unpickles, or after
            server.post(upload_body(501, 's3cret', big), timeout=60)
        deadline = time.monotonic() + 15
        while 'EVIL RELOAD ON WORKER 1' not in server.log() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert 'EVIL RELOAD ON WORKER 1' in server.log()
        assert server.post(upload_body(501, 's3cret', py2pickle.dumps(batch(2)))) == '100'
        assert workers(server.process.pid) != [worker]


def test_impossible_times_are_held_not_stored(site):
    configfile, data_dir, log_path = site
    raw, reason = IMPOSSIBLE['2024-02-31 25:60:60']
    with uwsgi_server.running(configfile) as server:
        assert server.post(upload_body(501, 's3cret', py2pickle.dumps([*batch(), event_at(raw)]))) == '100'
    assert len(records(data_dir, datadir.SUSPICIOUS)[0]['event_list']) == 1
    assert f'1 in suspicious/ ({reason})' in log_path.read_text()


def test_a_body_over_the_limit_is_answered_400_and_the_client_reads_it(site):
    configfile, _, log_path = site
    body = b'x' * 300_000
    request = (
        b'POST /hisparc/upload HTTP/1.1\r\nHost: datastore\r\nContent-Length: %d\r\n'
        b'Content-Type: application/x-www-form-urlencoded\r\n\r\n' % len(body)
    ) + body
    with uwsgi_server.running(configfile) as server:
        reply, _ = exchange(server.port, request)
    assert reply.startswith(b'HTTP/1.1 200 OK') and reply.endswith(b'\r\n\r\n400')
    assert log_path.read_text().count('code 400 (body of 300000 bytes is over the limit of 200000') == 1


def test_a_chunked_body_is_answered_400_and_the_client_reads_it(site):
    configfile, _, log_path = site
    chunks = b''.join(b'%x\r\n%s\r\n' % (10_000, b'y' * 10_000) for _ in range(30)) + b'0\r\n\r\n'
    request = (
        b'POST /hisparc/upload HTTP/1.1\r\nHost: datastore\r\nTransfer-Encoding: chunked\r\n\r\n' + chunks
    )
    with uwsgi_server.running(configfile) as server:
        reply, _ = exchange(server.port, request)
    assert reply.endswith(b'\r\n\r\n400'), reply[-200:]
    assert log_path.read_text().count('code 400 (a chunked body') == 1


def test_a_body_shorter_than_its_length_is_answered_400_after_the_socket_timeout(site):
    configfile, _, log_path = site
    request = (
        b'POST /hisparc/upload HTTP/1.1\r\nHost: datastore\r\nContent-Length: 1000\r\n\r\nstation_id=501'
    )
    with uwsgi_server.running(configfile, '--socket-timeout', '2') as server:
        reply, seconds = exchange(server.port, request)
        assert server.post(upload_body(501, 's3cret', py2pickle.dumps(batch()))) == '100'
    assert reply.endswith(b'\r\n\r\n400') and 1.5 < seconds < 10
    assert log_path.read_text().count('of 1000 bytes: timeout during read') == 1
