"""Two upload hosts, one spool, one batch record in a real PostgreSQL (``[General] resend_database``).

Two uWSGI instances on their own ports share one data_dir and one writer; the
record of acknowledged batches, the resend check and the per-station lock
live in PostgreSQL, so neither instance's local files decide.
"""

import concurrent.futures
import os
import signal
import threading
import urllib.request

import pytest

from datastore import cli, datadir, py2pickle, received, received_pg
from tests.support import nginx_site, postgres, processes, uwsgi_server
from tests.support.pickles import batch
from tests.support.uwsgi_server import upload_body
from tests.support.writer import run_once

pytestmark = pytest.mark.slow


@pytest.fixture
def pg():
    with postgres.cluster() as server:
        yield server


@pytest.fixture
def site(make_config, tmp_path, pg):
    configfile = make_config(resend_database=pg.url)
    return configfile, tmp_path / 'datastore'


def body(seed):
    return upload_body(501, 's3cret', py2pickle.dumps(batch(seed=seed)))


def spooled(data_dir):
    return sorted(os.listdir(data_dir / datadir.INCOMING))


@pytest.fixture
def hosts(site, tmp_path):
    configfile, _ = site
    with (
        uwsgi_server.running(configfile, log_path=tmp_path / 'a.log') as a,
        uwsgi_server.running(configfile, log_path=tmp_path / 'b.log') as b,
    ):
        yield a, b


def test_two_hosts_store_every_batch_once_and_audit_finds_them_all(site, hosts, capsys):
    configfile, data_dir = site
    a, b = hosts
    # distinct batches, to either host
    assert [(a, b)[i % 2].post(body(i)) for i in range(10)] == ['100'] * 10
    assert len(spooled(data_dir)) == 10
    # a resend reaches the other host: recognised there, not stored again
    assert [b.post(body(i)) if i % 2 == 0 else a.post(body(i)) for i in range(10)] == ['100'] * 10
    assert len(spooled(data_dir)) == 10
    # identical uploads at the same moment, one on each host: stored once
    for seed in range(100, 110):
        payload, start = body(seed), threading.Barrier(2)

        def send(host, payload=payload, start=start):
            start.wait()
            return host.post(payload)

        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            assert list(pool.map(send, (a, b))) == ['100', '100']
    assert len(spooled(data_dir)) == 20
    assert not (data_dir / 'received.sqlite').exists()  # the record is PostgreSQL's alone

    assert run_once(configfile).returncode == 0
    assert cli.main(['audit', '-c', configfile, '--since', '2000-01-01']) == 0
    out = capsys.readouterr().out
    assert '20 batch(es) acknowledged' in out and '0 batch(es) unaccounted for' in out, out


def test_an_unreachable_database_answers_404_logs_why_and_recovers(site, hosts, pg, tmp_path):
    configfile, data_dir = site
    a, _ = hosts
    assert a.post(body(1)) == '100'
    pg.stop()
    assert a.post(body(2)) == '404'
    assert spooled(data_dir) and len(spooled(data_dir)) == 1  # nothing kept of the refused batch
    status, _, text = a.request('GET', path='/hisparc/ready')
    assert status == 503 and 'batch record unreachable: PostgreSQL' in text
    log = (tmp_path / 'hisparc.log-wsgi').read_text()
    assert 'storage unavailable: locking the station failed' in log
    refused = [line for line in log.splitlines() if 'code 404' in line]
    assert refused and 'PostgreSQL: connection failed' in refused[0]  # why, on the upload's one line
    pg.start()
    # every worker's connection died with the server: each opens a new one at once
    assert [a.post(body(seed)) for seed in (2, 3, 4, 5)] == ['100'] * 4
    assert a.request('GET', path='/hisparc/ready')[0] == 200
    assert len(spooled(data_dir)) == 5


def post_to(port, payload):
    request = urllib.request.Request(f'http://127.0.0.1:{port}/hisparc/upload', data=payload, method='POST')
    with urllib.request.urlopen(request, timeout=30) as reply:
        return reply.read().decode()


def worker_pids(server):
    master = server.process.pid
    with open(f'/proc/{master}/task/{master}/children') as f:
        return {int(pid) for pid in f.read().split()}


def test_nginx_spreads_uploads_over_two_hosts_and_keeps_taking_them_when_one_dies(
    site, hosts, tmp_path, capsys
):
    configfile, data_dir = site
    a, b = hosts
    pids = {'a': worker_pids(a), 'b': worker_pids(b)}
    with nginx_site.running(nginx_site.binary(), [a.socket, b.socket], tmp_path / 'nginx') as port:
        assert [post_to(port, body(i)) for i in range(20)] == ['100'] * 20
        log = (tmp_path / 'hisparc.log-wsgi').read_text().splitlines()
        served = {
            name: sum(1 for line in log if 'code 100' in line and int(line.split()[1]) in workers)
            for name, workers in pids.items()
        }
        assert served['a'] and served['b'] and served['a'] + served['b'] == 20, served
        # one host dies: nginx passes its uploads to the other, resends included
        os.killpg(a.process.pid, signal.SIGKILL)
        processes.wait_for(lambda: processes.gone(a.process.pid), what='host a to die')
        assert [post_to(port, body(i)) for i in range(15, 30)] == ['100'] * 15
    assert len(spooled(data_dir)) == 30
    assert run_once(configfile).returncode == 0
    assert cli.main(['audit', '-c', configfile, '--since', '2000-01-01']) == 0
    assert '30 batch(es) acknowledged' in capsys.readouterr().out


def test_a_connection_lost_while_a_station_is_locked_fails_the_upload_instead_of_reopening(pg):
    this_host, other_host = (received_pg.PostgresRecord(pg.url, 3600) for _ in range(2))
    checksum = 'ab' * 16
    with this_host.station_lock(501):
        backend = this_host._call(lambda db: db.execute('SELECT pg_backend_pid()').fetchone()[0])
        other_host._call(lambda db: db.execute('SELECT pg_terminate_backend(%s)', (backend,)))
        # the lock went with the connection: recording on a new one would let an identical upload in
        with pytest.raises(received.Unavailable):
            this_host.record(501, checksum, 1, [])
    assert not other_host.seen(501, checksum)
    with other_host.station_lock(501):  # nobody holds it any more
        pass
    this_host.record(501, checksum, 1, [])  # the next upload opens a new connection
    assert other_host.seen(501, checksum)
