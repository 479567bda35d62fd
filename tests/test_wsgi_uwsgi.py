"""The upload endpoint under a real uWSGI (2 worker processes, --http-socket), posted to over HTTP."""

import concurrent.futures
import socket
import threading
import time

import pytest

from datastore import datadir, py2pickle, safepickle, spoolfile
from tests.support import uwsgi_server
from tests.support.pickles import batch, deeply_nested, hostile_pickles, shared_reference_bomb
from tests.support.uwsgi_server import upload_body

pytestmark = pytest.mark.slow

STATIONS = '501,Amsterdam,s3cret\n502,Utrecht,pa ss\n'
PASSWORDS = {501: 's3cret', 502: 'pa ss'}


@pytest.fixture
def site(make_config, tmp_path):
    """(config path, data_dir, log path) of a fresh installation."""
    return make_config(stations=STATIONS), tmp_path / 'datastore', tmp_path / 'hisparc.log-wsgi'


def _files(data_dir, folder):
    path = data_dir / folder
    return sorted(path.iterdir()) if path.is_dir() else []


def _body(events, station=501):
    return upload_body(station, PASSWORDS[station], py2pickle.dumps(events))


def test_the_reply_is_http_200_text_plain_exactly_the_code(site):
    with uwsgi_server.running(site[0]) as server:
        assert server.request('GET', path='/') == (200, 'text/plain', '400')
        assert server.request('POST', b'station_id=501', path='/x') == (200, 'text/plain', '400')


def test_concurrent_uploads_are_all_stored_and_nothing_is_left_in_tmp(site):
    configfile, data_dir, _ = site
    batches = {(501 + i % 2, i): batch(seed=i) for i in range(40)}
    bodies = [_body(events, station) for (station, _), events in batches.items()]
    with uwsgi_server.running(configfile) as server, concurrent.futures.ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(server.post, bodies))
    assert replies == ['100'] * 40
    records = [spoolfile.load(path) for path in _files(data_dir, datadir.INCOMING)]
    assert len(records) == 40
    assert sorted(str(r['event_list']) for r in records) == sorted(str(e) for e in batches.values())
    assert _files(data_dir, datadir.TMP) == []


def test_identical_uploads_at_the_same_moment_are_stored_once(site):
    configfile, data_dir, log_path = site
    body = _body(batch())
    with uwsgi_server.running(configfile) as server:
        start = threading.Barrier(8)

        def post(_):
            start.wait()
            return server.post(body)

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            replies = list(pool.map(post, range(8)))
    assert replies == ['100'] * 8
    assert len(_files(data_dir, datadir.INCOMING)) == 1
    assert log_path.read_text().count('resend') == 7


def test_a_resend_is_recognised_after_a_restart(site):
    configfile, data_dir, _ = site
    body = _body(batch())
    with uwsgi_server.running(configfile) as server:
        assert server.post(body) == '100'
    with uwsgi_server.running(configfile) as server:
        assert server.post(body) == '100'
    assert len(_files(data_dir, datadir.INCOMING)) == 1


def test_hostile_pickles_answer_208_and_nothing_runs(site, tmp_path):
    configfile, data_dir, _ = site
    marker = tmp_path / 'pwned'
    with uwsgi_server.running(configfile) as server:
        for name, data in hostile_pickles(marker):
            assert server.post(upload_body(501, 's3cret', data)) == '208', name
        assert server.post(_body(batch())) == '100'
    assert not marker.exists()
    assert len(_files(data_dir, datadir.INCOMING)) == 1 and _files(data_dir, datadir.SUSPICIOUS) == []


@pytest.mark.parametrize(
    'pickled, code',
    [(shared_reference_bomb(), '100'), (deeply_nested(1_000_000), '208')],
    ids=['shared-reference-bomb', 'deeply-nested'],
)
def test_bombs_are_answered_within_a_second_and_the_workers_keep_serving(site, pickled, code):
    configfile, _data_dir, _ = site
    body = upload_body(501, 's3cret', pickled)
    with uwsgi_server.running(configfile) as server:
        for _ in range(3):  # more than there are workers
            started = time.monotonic()
            assert server.post(body) == code
            assert time.monotonic() - started < 1.0
        for seed in range(4):
            assert server.post(_body(batch(seed))) == '100'
        assert 'worker respawned' not in server.log() and 'DAMN' not in server.log()


def test_a_station_that_hangs_up_mid_body_gets_400_and_the_worker_serves_on(site):
    configfile, data_dir, log_path = site
    with uwsgi_server.running(configfile, processes=1) as server:
        with socket.create_connection(('127.0.0.1', server.port)) as sock:
            sock.sendall(
                b'POST /hisparc/upload HTTP/1.1\r\nHost: datastore\r\n'
                b'Content-Type: application/x-www-form-urlencoded\r\n'
                b'Content-Length: 100000\r\n\r\nstation_id=501&data='
            )
            time.sleep(0.3)
        assert server.post(_body(batch())) == '100'
    log = log_path.read_text()
    assert 'code 400 (body unreadable after' in log
    assert 'Traceback' not in log and _files(data_dir, datadir.TMP) == []


def test_storage_failure_answers_404_and_recovers(site):
    configfile, data_dir, log_path = site
    body = _body(batch())
    data_dir.mkdir()
    (data_dir / datadir.INCOMING).write_text('not a folder')
    with uwsgi_server.running(configfile) as server:
        assert server.post(body) == '404'
        assert ' ERROR storage unavailable' in log_path.read_text()
        (data_dir / datadir.INCOMING).unlink()
        assert server.post(body) == '100'
    assert len(_files(data_dir, datadir.INCOMING)) == 1 and _files(data_dir, datadir.TMP) == []


def test_a_changed_station_list_is_followed_without_a_restart(site, tmp_path):
    configfile, data_dir, _ = site
    body = upload_body(503, 'fresh', py2pickle.dumps(batch()))
    with uwsgi_server.running(configfile) as server:
        assert server.post(body) == '206'
        (tmp_path / 'station_list.csv').write_text(STATIONS + '503,Enschede,fresh\n')
        deadline, reply = time.monotonic() + 5.0, None
        while time.monotonic() < deadline:
            reply = server.post(body)
            if reply == '100':
                break
            time.sleep(0.1)
        assert reply == '100'
        time.sleep(1.1)  # each worker checks the list's file at most once a second
        assert [server.post(_body(batch(seed))) for seed in range(4)] == ['100'] * 4
        assert {
            server.post(upload_body(503, 'fresh', py2pickle.dumps(batch(seed)))) for seed in range(10, 14)
        } == {'100'}
    assert spoolfile.load(_files(data_dir, datadir.INCOMING)[0])['cluster'] == 'Enschede'


def test_every_captured_upload_is_stored(make_config, tmp_path, captures):
    configfile = make_config(stations=STATIONS, minimum_year=2017)
    data_dir = tmp_path / 'datastore'
    names = ['py2_s510_100events', 'py2event', 'py2_pysparc_config', 'py3event', 'suspicious_event']
    with uwsgi_server.running(configfile) as server:
        for name in names:
            pickled = (captures / 'upload' / name).read_bytes()
            assert server.post(upload_body(501, 's3cret', pickled)) == '100', name
    stored = [spoolfile.load(path)['event_list'] for path in _files(data_dir, datadir.INCOMING)]
    held = [spoolfile.load(path)['event_list'] for path in _files(data_dir, datadir.SUSPICIOUS)]
    expected = {name: safepickle.loads((captures / 'upload' / name).read_bytes()) for name in names}
    assert held == [expected.pop('suspicious_event')]
    assert sorted(map(str, stored)) == sorted(map(str, expected.values()))
    py3event = next(events for events in stored if events == expected['py3event'])
    assert {
        type(item['data'])
        for item in py3event[0]['datalist']
        if item['data_uploadcode'] in ('PH1', 'PH2', 'IN1', 'IN2')
    } == {int}
