"""The upload endpoint in-process (WebTest): one test per return code and per outcome."""

import datetime
import errno
import functools
import gc
import io
import os
import pathlib
import pickle
import random
import sqlite3
import subprocess
import sys
import threading
import time

import pytest
import webtest

from datastore import config as config_mod
from datastore import datadir, events, factory, py2pickle, received, safepickle
from tests.support.endpoint import PASSWORD
from tests.support.pickles import WHEN, batch, deeply_nested, hostile_pickles, shared_reference_bomb
from tests.support.uwsgi_server import upload_body
from wsgi import rcodes, wsgi_app

# -- the reply -----------------------------------------------------------------


def test_return_codes_are_the_protocols():
    assert dict(rcodes.MEANING.items()) == {
        '100': 'OK',
        '201': 'invalid input',
        '202': 'wrong upload code',
        '203': 'wrong password',
        '204': 'event already exists',
        '205': 'transaction failed',
        '206': 'station unknown',
        '207': 'wrong event type',
        '208': 'unpickling error',
        '400': 'internal server error: invalid post data',
        '404': 'internal server error: storage unavailable',
    }
    assert (
        rcodes.OK,
        rcodes.INVALID_INPUT,
        rcodes.WRONG_PASSWORD,
        rcodes.STATION_UNKNOWN,
        rcodes.UNPICKLING_ERROR,
        rcodes.INVALID_POST_DATA,
        rcodes.STORAGE_UNAVAILABLE,
    ) == ('100', '201', '203', '206', '208', '400', '404')


def test_a_bare_get_answers_400_as_exactly_three_bytes(ep):
    response = ep.app.get('/hisparc/upload')
    assert response.status_int == 200
    assert response.headers['Content-Type'] == 'text/plain'
    assert response.body == b'400'


@pytest.mark.parametrize(
    'method, path', [('POST', '/'), ('PUT', '/anything/at/all'), ('POST', '/hisparc/upload?x=1')]
)
def test_any_path_and_method_is_the_endpoint(ep, method, path):
    pickled = py2pickle.dumps(batch())
    response = ep.app.request(
        path,
        method=method,
        body=upload_body(501, PASSWORD, pickled),
        content_type='application/x-www-form-urlencoded',
    )
    assert response.body == b'100'
    assert len(ep.files(datadir.INCOMING)) == 1


# -- 100: stored -----------------------------------------------------------------


def test_a_python2_batch_answers_100_and_is_spooled_in_incoming(ep):
    events = batch()
    assert ep.upload(events) == '100'
    assert ep.spooled() == [{'station_id': 501, 'cluster': 'Amsterdam', 'event_list': events}]
    assert ep.files(datadir.SUSPICIOUS) == [] and ep.files(datadir.TMP) == []


@pytest.mark.parametrize('protocol', range(pickle.HIGHEST_PROTOCOL + 1))
@pytest.mark.parametrize('raw_bytes', [False, True], ids=['utf8-text', 'raw-bytes'])
def test_python3_pickles_in_both_form_encodings_are_stored(ep, protocol, raw_bytes):
    events = factory.every_type(WHEN, random.Random(protocol))
    events[0]['datalist'].append({'data_uploadcode': 'ERRMSG', 'data': b'caf\xe9 \x80'})
    pickled = pickle.dumps(events, protocol=protocol)
    assert ep.post(upload_body(502, 'pa ss', pickled, raw_bytes=raw_bytes)) == '100'
    assert ep.spooled() == [{'station_id': 502, 'cluster': 'Utrecht', 'event_list': events}]


def test_numpy_scalars_arrive_as_plain_ints(ep):
    events = batch()[:1]
    events[0]['datalist'] = [
        {'data_uploadcode': 'PH1', 'data': py2pickle.NumpyScalar(625)},
        {'data_uploadcode': 'IN1', 'data': py2pickle.NumpyScalar(-3, 'i8')},
    ]
    assert ep.upload(events) == '100'
    datalist = ep.spooled()[0]['event_list'][0]['datalist']
    assert [(item['data'], type(item['data'])) for item in datalist] == [(625, int), (-3, int)]


def test_an_empty_batch_answers_100_and_spools_nothing(ep):
    assert ep.upload([]) == '100'
    assert ep.files(datadir.INCOMING) == [] and ep.files(datadir.SUSPICIOUS) == []


def test_spool_folders_are_created_when_missing(ep):
    assert not ep.data_dir.exists()
    assert ep.upload(batch()) == '100'
    assert len(ep.files(datadir.INCOMING)) == 1


# -- 100: suspicious events are held, the rest stored ----------------------------


def test_old_events_go_to_suspicious_and_the_rest_to_incoming(ep):
    events = batch()
    cold = factory.event('CIC', datetime.datetime(2019, 4, 7, 0, 0, 3), random.Random(9))
    events.insert(5, cold)
    assert ep.upload(events) == '100'
    assert ep.spooled(datadir.SUSPICIOUS) == [
        {'station_id': 501, 'cluster': 'Amsterdam', 'event_list': [cold]}
    ]
    assert ep.spooled()[0]['event_list'] == events[:5] + events[6:]


def test_minimum_year_comes_from_the_config(endpoint):
    ep = endpoint(minimum_year=2025)
    assert ep.upload(batch()) == '100'
    assert ep.files(datadir.INCOMING) == []
    assert len(ep.spooled(datadir.SUSPICIOUS)[0]['event_list']) == 100


def test_events_without_a_datetime_or_malformed_are_held(ep):
    events = batch()[:3]
    del events[0]['header']['datetime']
    events[1]['datalist'][0]['data'] = None
    assert ep.upload(events) == '100'
    assert ep.spooled(datadir.SUSPICIOUS)[0]['event_list'] == events[:2]
    assert ep.spooled()[0]['event_list'] == events[2:]


def test_a_batch_of_only_suspicious_events_writes_nothing_to_incoming(ep):
    events = batch(when=datetime.datetime(2011, 2, 22))
    assert ep.upload(events) == '100'
    assert ep.files(datadir.INCOMING) == []
    assert ep.spooled(datadir.SUSPICIOUS)[0]['event_list'] == events


# -- 100: resends ------------------------------------------------------------------


def test_a_resend_answers_100_and_is_not_spooled_again(ep, monkeypatch):
    events = batch()
    assert ep.upload(events) == '100'
    loads = []
    monkeypatch.setattr(safepickle, 'loads', loads.append)
    assert ep.upload(events) == '100'
    assert loads == []  # answered before unpickling
    assert len(ep.files(datadir.INCOMING)) == 1
    assert 'resend' in ep.log().splitlines()[-1]


def test_the_same_batch_from_another_station_is_not_a_resend(ep):
    events = batch()
    assert ep.upload(events) == '100'
    assert ep.upload(events, station=502, password='pa ss') == '100'
    assert sorted(r['station_id'] for r in ep.spooled()) == [501, 502]


def test_a_resend_after_the_window_is_stored_again(ep):
    events = batch()
    assert ep.upload(events) == '100'
    with sqlite3.connect(ep.data_dir / 'received.sqlite') as db:
        db.execute('UPDATE batches SET received = received - 8 * 86400')
    assert ep.upload(events) == '100'
    assert len(ep.files(datadir.INCOMING)) == 2


def test_a_resend_window_of_zero_stores_every_upload(endpoint):
    ep = endpoint(resend_window=0)
    events = batch()
    assert ep.upload(events) == '100' and ep.upload(events) == '100'
    assert len(ep.files(datadir.INCOMING)) == 2


def test_resends_are_recognised_by_a_new_process(ep):
    events = batch()
    assert ep.upload(events) == '100'
    wsgi_app._endpoints.clear()  # as after a restart
    assert ep.upload(events) == '100'
    assert len(ep.files(datadir.INCOMING)) == 1


def test_the_batch_record_holds_each_acknowledged_batch_and_its_spool_files(ep):
    before = time.time()
    old = [factory.event('CIC', datetime.datetime(2019, 4, 7), random.Random(1))]
    assert ep.upload(batch(1)) == '100' and ep.upload(batch(2) + old) == '100'
    batches = received.Received(datadir.DataDir(str(ep.data_dir)), 0).batches_since(before)
    assert [(b.station, b.events) for b in batches] == [(501, 100), (501, 101)]
    assert all(before <= b.received <= time.time() for b in batches)
    incoming = {path.name for path in ep.files(datadir.INCOMING)}
    suspicious = {path.name for path in ep.files(datadir.SUSPICIOUS)}
    assert [(folder, n) for folder, _, n in batches[1].files] == [('suspicious', 1), ('incoming', 100)]
    assert {name for b in batches for folder, name, _ in b.files if folder == 'incoming'} == incoming
    assert {name for b in batches for folder, name, _ in b.files if folder == 'suspicious'} == suspicious
    with sqlite3.connect(ep.data_dir / 'received.sqlite') as db:
        assert db.execute('PRAGMA journal_mode').fetchone() == ('wal',)


def test_a_batch_that_cannot_be_recorded_answers_404(ep, monkeypatch):
    assert ep.upload(batch(1)) == '100'

    def broken(*args, **kwargs):
        raise sqlite3.OperationalError('disk I/O error')

    monkeypatch.setattr(received.Received, 'record', broken)
    assert ep.upload(batch(2)) == '404'
    assert 'recording the batch failed' in ep.log()


def test_old_records_are_pruned(tmp_path):
    from datastore.received import Received

    received = Received(datadir.DataDir(str(tmp_path)), window_seconds=100)
    received.record(501, 'a' * 32, 0, [], now=1000.0)
    received.record(501, 'b' * 32, 0, [], now=1090.0)
    received.prune(now=1150.0)
    assert not received.seen(501, 'a' * 32, now=1150.0)
    with sqlite3.connect(tmp_path / 'received.sqlite') as db:
        assert db.execute('SELECT checksum FROM batches').fetchall() == [('b' * 32,)]


def test_identical_uploads_at_the_same_moment_are_stored_once(ep):
    body = upload_body(501, PASSWORD, py2pickle.dumps(batch()))
    ep.post(b'')  # initialise before the race
    replies, start = [], threading.Barrier(6)

    def post():
        start.wait()
        replies.append(ep.post(body))

    threads = [threading.Thread(target=post) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert replies == ['100'] * 6
    assert len(ep.files(datadir.INCOMING)) == 1


# -- 400: invalid post data --------------------------------------------------------


@pytest.mark.parametrize('missing', ['station_id', 'password', 'data', 'checksum'])
def test_a_missing_field_answers_400(ep, missing):
    fields = dict(pair.split(b'=', 1) for pair in upload_body(501, PASSWORD, b'(l.').split(b'&'))
    del fields[missing.encode()]
    assert ep.post(b'&'.join(k + b'=' + v for k, v in fields.items())) == '400'


@pytest.mark.parametrize(
    'body',
    [
        b'station_id=abc&password=s3cret&data=%28l.&checksum=x',
        b'station_id=501&password=s3cret&data=%28l.&checksum=x&station_id=501',
        b'station_id=501&password&data=%28l.&checksum=x',
        bytes(random.Random(5).randrange(256) for _ in range(3000)),
        b'--b\r\nContent-Disposition: form-data; name="station_id"\r\n\r\n501\r\n--b--\r\n',
    ],
    ids=['station-abc', 'duplicated', 'no-equals', 'random-bytes', 'multipart'],
)
def test_unparsable_bodies_answer_400(ep, body):
    assert ep.post(body) == '400'
    assert not ep.data_dir.joinpath(datadir.INCOMING).exists()


class Counted(io.BytesIO):
    """A request body that counts what the app reads of it."""

    taken = 0

    def read(self, size=-1):
        chunk = super().read(size)
        self.taken += len(chunk)
        return chunk


def post_raw(ep, body, length):
    stream = Counted(body)
    environ = {'REQUEST_METHOD': 'POST', 'CONTENT_LENGTH': str(length), 'wsgi.input': stream}
    reply = b''.join(wsgi_app.application(environ, lambda *args: None, configfile=ep.configfile))
    return reply.decode(), stream.taken


def test_the_body_limit_is_exact_and_a_body_over_it_is_dropped_unparsed(endpoint):
    body = upload_body(501, PASSWORD, py2pickle.dumps([factory.event('SIN', WHEN, random.Random(1))]))
    ep = endpoint(max_upload_bytes=len(body))
    assert post_raw(ep, body, len(body)) == ('100', len(body))  # exactly at the limit
    over = body + b'&x=1'
    assert post_raw(ep, over, len(over)) == ('400', len(over))  # read to the end, so the 400 is read
    assert f'body of {len(over)} bytes is over the limit of {len(body)}' in ep.log()
    huge = body * 10
    assert post_raw(ep, huge, len(huge)) == ('400', 2 * len(body))  # dropped up to twice the limit


def test_a_content_length_of_5000_digits_answers_400_with_one_log_line(ep):
    body = upload_body(501, PASSWORD, py2pickle.dumps(batch()))
    assert post_raw(ep, body, '9' * 5000)[0] == '400'  # not a ValueError's 404
    assert ep.log().count('code 400 (Content-Length of 5,000 digits is over the limit') == 1
    assert 'Traceback' not in ep.log()


def test_a_body_shorter_than_its_length_answers_400(ep):
    response = ep.app.post(
        '/',
        b'station_id=501',
        headers={'Content-Length': '100'},
        content_type='application/x-www-form-urlencoded',
        expect_errors=True,
    )
    assert response.body == b'400'


# -- 206, 203, 201: station, password, checksum, in that order -----------------------


def test_an_unknown_station_answers_206(ep):
    assert ep.upload(batch(), station=999) == '206'


def test_a_wrong_password_answers_203(ep):
    assert ep.upload(batch(), password='s3creT') == '203'
    assert ep.upload(batch(), password='') == '203'


def test_a_wrong_checksum_answers_201(ep):
    assert ep.upload(batch(), checksum='0' * 32) == '201'


def test_checks_run_in_the_protocols_order(ep):
    hostile = b'cos\nsystem\n(S"true"\ntR.'
    assert ep.upload(hostile, station=999, password='x', checksum='0') == '206'
    assert ep.upload(hostile, password='x', checksum='0') == '203'
    assert ep.upload(hostile, checksum='0') == '201'
    assert ep.upload(hostile) == '208'
    assert ep.files(datadir.INCOMING) == []


# -- 208: unpickling -------------------------------------------------------------------


def testhostile_pickles_answer_208_and_nothing_runs(ep, tmp_path):
    marker = tmp_path / 'pwned'
    for name, data in hostile_pickles(marker):
        assert ep.upload(data) == '208', name
    assert not marker.exists()
    assert ep.files(datadir.INCOMING) == [] and ep.files(datadir.SUSPICIOUS) == []


def test_a_refused_global_is_not_even_imported(ep):
    assert 'imaplib' not in sys.modules
    assert ep.upload(b"cimaplib\nIMAP4\n(S'localhost'\ntR.") == '208'
    assert 'imaplib' not in sys.modules


@pytest.mark.parametrize(
    'data',
    [
        b'not a pickle',
        b'',
        pickle.dumps({'a': 1}),
        pickle.dumps('x'),
        pickle.dumps(None),
        py2pickle.dumps(batch())[:-1],
    ],
    ids=['garbage', 'empty', 'dict', 'str', 'none', 'truncated'],
)
def test_anything_but_a_pickled_list_answers_208(ep, data):
    assert ep.upload(data) == '208'
    assert ep.files(datadir.INCOMING) == [] and ep.files(datadir.SUSPICIOUS) == []


def test_ashared_reference_bomb_is_answered_within_a_second(ep):
    body = upload_body(501, PASSWORD, shared_reference_bomb())
    started = time.monotonic()
    assert ep.post(body) == '100'  # held for review, not walked
    assert time.monotonic() - started < 1.0
    assert ep.files(datadir.INCOMING) == [] and len(ep.files(datadir.SUSPICIOUS)) == 1
    assert ep.upload(batch()) == '100'


def test_adeeply_nested_pickle_answers_208_within_a_second(ep):
    body = upload_body(501, PASSWORD, deeply_nested())
    started = time.monotonic()
    assert ep.post(body) == '208'
    assert time.monotonic() - started < 1.0
    assert 'RecursionError' in ep.log()
    assert ep.files(datadir.SUSPICIOUS) == [] and ep.files(datadir.TMP) == []
    assert ep.upload(batch()) == '100'


# -- 404: storage unavailable --------------------------------------------------------


def test_a_blocked_spool_folder_answers_404_then_recovers(ep):
    ep.data_dir.mkdir()
    (ep.data_dir / datadir.INCOMING).write_text('a file where the folder belongs')
    events = batch()
    assert ep.upload(events) == '404'
    assert ep.files(datadir.TMP) == []
    assert ' ERROR storage unavailable' in ep.log()
    (ep.data_dir / datadir.INCOMING).unlink()
    assert ep.upload(events) == '100'  # not mistaken for a resend
    assert ep.spooled()[0]['event_list'] == events


def test_a_failed_upload_puts_nothing_in_incoming(ep):
    ep.data_dir.mkdir()
    (ep.data_dir / datadir.SUSPICIOUS).write_text('a file where the folder belongs')
    events = batch()
    events.append(factory.event('SIN', datetime.datetime(2019, 4, 7), random.Random(2)))
    assert ep.upload(events) == '404'
    assert ep.files(datadir.INCOMING) == [] and ep.files(datadir.TMP) == []


def test_an_unusable_data_dir_answers_404(endpoint, tmp_path):
    (tmp_path / 'file').write_text('')
    ep = endpoint(data_dir=tmp_path / 'file' / 'datastore')
    assert ep.upload(batch()) == '404'
    assert ' ERROR ' in ep.log()


def test_a_full_disk_answers_404_and_leaves_no_file(ep, monkeypatch):
    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, 'fsync', full)
    assert ep.upload(batch()) == '404'
    monkeypatch.undo()
    assert ep.files(datadir.TMP) == [] and ep.files(datadir.INCOMING) == []
    assert 'No space left on device' in ep.log()
    assert ep.upload(batch()) == '100'


def test_an_unusable_config_answers_404_and_says_why(tmp_path, caplog):
    app = webtest.TestApp(functools.partial(wsgi_app.application, configfile=str(tmp_path / 'missing.ini')))
    assert app.post('/', upload_body(501, PASSWORD, b'(l.')).body == b'404'
    assert 'missing.ini' in caplog.text


def test_an_unexpected_error_answers_a_code_not_500(ep, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError('a bug')

    monkeypatch.setattr(events.Rule, 'split', broken)
    assert ep.upload(batch()) == '404'
    assert 'Traceback' in ep.log() and 'RuntimeError: a bug' in ep.log()


# -- the station list ------------------------------------------------------------------


def test_a_malformed_station_line_is_logged_and_skipped(endpoint):
    ep = endpoint(stations='501,Amsterdam,s3cret\n502;Utrecht;x\n503,Utrecht,y\n')
    assert ep.upload(batch(), station=503, password='y') == '100'
    assert ep.upload(batch(), station=502, password='x') == '206'
    assert 'line 2 skipped' in ep.log()


def test_a_changed_station_list_is_read_again(ep, tmp_path):
    wsgi_app.do_init(ep.configfile).stations.watch.check_every = 0  # no waiting in this test
    assert ep.upload(batch(), station=503, password='new') == '206'
    (tmp_path / 'station_list.csv').write_text('501,Amsterdam,s3cret\n503,Enschede,new\n')
    assert ep.upload(batch(), station=503, password='new') == '100'
    assert ep.spooled()[0]['cluster'] == 'Enschede'


def test_a_broken_config_saved_changes_nothing_and_a_good_one_is_taken_up(ep, tmp_path):
    assert ep.upload(batch()) == '100'
    config_mod.following(ep.configfile).watch.check_every = 0  # no waiting in this test
    path = pathlib.Path(ep.configfile)
    good = path.read_text()
    path.write_text(good.replace('[Writer]', 'max_upload_bytes=lots\n[Writer]'))
    for seed in range(3):
        assert ep.upload(batch(seed + 1)) == '100'
    errors = [line for line in ep.log().splitlines() if ' ERROR ' in line]
    assert len(errors) == 1 and "max_upload_bytes = 'lots' is not a valid int" in errors[0]
    (tmp_path / 'other.csv').write_text('503,Enschede,new\n')
    path.write_text(good.replace(str(tmp_path / 'station_list.csv'), str(tmp_path / 'other.csv')))
    assert ep.upload(batch(9), station=503, password='new') == '100'
    assert ep.upload(batch(10)) == '206'  # 501 is not in the new list
    assert 'changed: taken up' in ep.log()


def test_an_unreadable_station_list_answers_404_and_says_so(ep, tmp_path):
    wsgi_app.do_init(ep.configfile).stations.watch.check_every = 0
    listing = tmp_path / 'station_list.csv'
    listing.rename(tmp_path / 'away.csv')
    assert ep.upload(batch()) == '404'
    assert 'station list' in ep.log() and 'unreadable' in ep.log()
    (tmp_path / 'away.csv').rename(listing)
    assert ep.upload(batch()) == '100'


# -- logging -------------------------------------------------------------------------------


def test_one_line_per_upload_with_the_client_and_never_a_password(endpoint):
    ep = endpoint(stations='501,Amsterdam,Zq7-secret-Xv\n', loglevel='debug')
    assert ep.upload(batch(), password='Zq7-secret-Xv') == '100'
    assert ep.upload(batch(), password='Zq7-wrong-Xv') == '203'
    assert ep.post(b'') == '400'
    lines = [line for line in ep.log().splitlines() if ' upload from ' in line]
    assert len(lines) == 3
    assert ' INFO upload from 127.0.0.1 station 501: 100 events, code 100' in lines[0]
    assert lines[0].endswith(' ms')
    assert ' WARNING upload from 127.0.0.1 station 501: - events, code 203 (wrong password)' in lines[1]
    assert ' INFO upload from 127.0.0.1 station -: - events, code 400' in lines[2]
    assert 'Zq7' not in ep.log()


@pytest.mark.parametrize('refusal', ['203', '206', '201', '208', '400'])
def test_every_refusal_names_the_client(ep, refusal):
    bodies = {'203': {'password': 'wrong'}, '206': {'station': 999}, '201': {'checksum': '0' * 32}}
    if refusal in bodies:
        assert ep.upload(batch(), **bodies[refusal]) == refusal
    elif refusal == '208':
        assert ep.upload(b'not a pickle') == '208'
    else:
        assert ep.post(b'station_id=501') == '400'
    (line,) = [line for line in ep.log().splitlines() if f'code {refusal}' in line]
    assert ' upload from 127.0.0.1 ' in line
    assert (' WARNING ' in line) == (refusal in ('203', '206'))


def test_a_wrong_password_sent_again_is_a_retry_not_a_new_guess(ep):
    for _ in range(3):
        assert ep.upload(batch(), password='wrong') == '203'
    assert ep.upload(batch(), password='other') == '203'
    reasons = [line.split('(')[-1].split(')')[0] for line in ep.log().splitlines() if 'code 203' in line]
    assert reasons == ['wrong password', 'wrong password, again', 'wrong password, again', 'wrong password']


def test_the_client_behind_a_trusted_proxy_is_the_one_it_forwards(endpoint):
    ep = endpoint(trusted_proxies='10.0.0.1, 10.0.0.2')
    headers = {'X-Forwarded-For': '192.0.2.7, 10.0.0.2'}
    ep.app.post('/', b'', extra_environ={'REMOTE_ADDR': '10.0.0.1'}, headers=headers)
    ep.app.post('/', b'', extra_environ={'REMOTE_ADDR': '198.51.100.9'}, headers=headers)  # not trusted
    lines = [line for line in ep.log().splitlines() if ' upload from ' in line]
    assert ' upload from 192.0.2.7 ' in lines[0] and ' upload from 198.51.100.9 ' in lines[1]


def test_the_upload_path_imports_neither_pytables_nor_numpy(tmp_path, make_config):
    configfile = make_config()
    script = f"""
import functools, io, sys
from datastore import protocol, py2pickle
from wsgi import wsgi_app
body = protocol.encode(501, 's3cret', py2pickle.dumps([
    {{'header': {{'eventtype_uploadcode': 'CIC', 'datetime': __import__('datetime').datetime(2024, 1, 1)}},
     'datalist': [{{'data_uploadcode': 'PH1', 'data': py2pickle.NumpyScalar(5)}}]}}]))
environ = {{'CONTENT_LENGTH': str(len(body)), 'wsgi.input': io.BytesIO(body)}}
reply = b''.join(wsgi_app.application(environ, lambda *a: None, configfile={configfile!r}))
print(reply.decode(), 'tables' in sys.modules, 'numpy' in sys.modules)
"""
    out = subprocess.run(
        [sys.executable, '-c', script],
        capture_output=True,
        text=True,
        check=True,
        cwd=pathlib.Path(__file__).parent,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)),
    )
    assert out.stdout.split() == ['100', 'False', 'False']


# -- the real captures -----------------------------------------------------------------


@pytest.mark.parametrize(
    'name', ['py2_s510_100events', 'py2event', 'py2_pysparc_config', 'py3event', 'suspicious_event']
)
def test_every_captured_upload_answers_100(endpoint, captures, name):
    ep = endpoint(minimum_year=2017)  # the captures are from February 2017
    data = (captures / 'upload' / name).read_bytes()
    assert ep.upload(data) == '100'
    (held,) = ep.spooled(datadir.SUSPICIOUS) or [None]
    stored = ep.spooled()
    if name == 'suspicious_event':
        assert stored == [] and held['event_list'] == safepickle.loads(data)
    else:
        assert held is None and stored[0]['event_list'] == safepickle.loads(data)


def test_captured_numpy_scalars_are_plain_ints_in_the_spool(endpoint, captures):
    ep = endpoint(minimum_year=2017)
    assert ep.upload((captures / 'upload' / 'py3event').read_bytes()) == '100'
    data = {item['data_uploadcode']: item['data'] for item in ep.spooled()[0]['event_list'][0]['datalist']}
    assert all(type(data[code]) is int for code in ('PH1', 'PH2', 'IN1', 'IN2'))


def test_the_resend_record_of_version_1_is_taken_over(tmp_path):
    db_path = tmp_path / 'received.sqlite'
    with sqlite3.connect(db_path) as db:
        db.execute(
            'CREATE TABLE received (station INTEGER, checksum TEXT, received REAL, '
            'PRIMARY KEY (station, checksum))'
        )
        db.execute("INSERT INTO received VALUES (501, 'aa', ?)", (time.time(),))
    record = received.Received(datadir.DataDir(str(tmp_path)), window_seconds=100)
    assert record.seen(501, 'aa')
    with sqlite3.connect(db_path) as db:
        tables_left = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables_left == {'batches'}
    assert record.batches_since(0) == []  # not audited: no files known


def test_the_garbage_collector_is_paused_during_an_upload_and_runs_again_after(ep, monkeypatch):
    during, unpickle = [], wsgi_app.unpickle

    def watched(pickled):
        during.append(gc.isenabled())
        return unpickle(pickled)

    monkeypatch.setattr(wsgi_app, 'unpickle', watched)
    assert gc.isenabled()
    assert ep.upload(batch()) == '100'
    assert ep.upload(b'(lp0\ng0\na.') == '100'  # a list that holds itself: a cycle left for the collector
    assert during == [False, False] and gc.isenabled()
