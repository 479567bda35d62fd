"""hisparc-datastore simulate: realistic uploads, encoded as the Windows client does."""

import contextlib
import hashlib
import http.server
import threading
import time
import urllib.parse

import pytest

from datastore import cli, eventtypes, safepickle
from tests.support import uwsgi_server


class Station(http.server.BaseHTTPRequestHandler):
    """Records every POSTed form and answers the server's next code."""

    def do_POST(self):
        body = self.rfile.read(int(self.headers['Content-Length']))
        self.server.posts.append((self.path, self.headers['Content-Type'], body))
        reply = self.server.replies.pop(0) if self.server.replies else b'100'
        self.send_response(200)
        self.send_header('Content-Type', 'text/plain')
        self.send_header('Content-Length', str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def listening(replies=()):
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Station)
    server.posts, server.replies = [], list(replies)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, f'http://127.0.0.1:{server.server_port}/hisparc/upload'
    finally:
        server.shutdown()
        server.server_close()


def decode(body):
    """The server's reading of a form (upload-protocol.md): (fields, pickle bytes)."""
    fields = dict(urllib.parse.parse_qsl(body.decode('ascii'), keep_blank_values=True))
    return fields, fields['data'].encode('iso-8859-1')


def simulate(capsys, *argv):
    code = cli.main(['simulate', *argv])
    return code, capsys.readouterr()


@pytest.mark.parametrize('flavour, opening', [('py2', b'(l'), ('py3', b'\x80')])
def test_posts_form_encoded_pickles_with_their_md5(capsys, flavour, opening):
    with listening() as (server, url):
        code, out = simulate(
            capsys,
            '--url',
            url,
            '--station',
            '501',
            '--password',
            'pa ss&=é',
            '--batches',
            '2',
            '--batch-size',
            '50',
            '--pickle',
            flavour,
        )
    assert code == 0
    assert len(server.posts) == 2
    for path, content_type, body in server.posts:
        assert (path, content_type) == ('/hisparc/upload', 'application/x-www-form-urlencoded')
        fields, data = decode(body)
        assert fields['station_id'] == '501' and fields['password'] == 'pa ss&=é'
        assert fields['checksum'] == hashlib.md5(data).hexdigest()
        assert data.startswith(opening)
        batch = safepickle.loads(data)
        assert len(batch) == 50
        assert {e['header']['eventtype_uploadcode'] for e in batch} == {'CIC', 'SIN'}
    assert '100   OK' in out.out and ' 2\n' in out.out


def test_every_type_mix_sends_all_fourteen_event_types(capsys):
    with listening() as (server, url):
        simulate(
            capsys,
            '--url',
            url,
            '--station',
            '7',
            '--password',
            'x',
            '--mix',
            'every-type',
            '--batch-size',
            '28',
        )
    batch = safepickle.loads(decode(server.posts[0][2])[1])
    codes = [e['header']['eventtype_uploadcode'] for e in batch]
    assert sorted(set(codes)) == sorted(eventtypes.EVENT_TYPES) and len(codes) == 28


def test_passwords_come_from_the_configs_station_list(make_config, capsys):
    with listening() as (server, url):
        code, _ = simulate(capsys, '--url', url, '--config', make_config(), '--stations', '2')
    assert code == 0
    sent = sorted((f['station_id'], f['password']) for f in (decode(b)[0] for _, _, b in server.posts))
    assert sent == [('501', 's3cret'), ('502', 'pa ss')]


def test_any_reply_but_100_is_counted_and_the_exit_is_1(capsys):
    with listening(replies=[b'203', b'100', b'203']) as (_server, url):
        code, out = simulate(
            capsys, '--url', url, '--station', '1', '--password', 'x', '--batches', '3', '--batch-size', '1'
        )
    assert code == 1
    assert '203   wrong password' in out.out and ' 2\n' in out.out
    # rates count the one batch answered 100, and call it accepted (not stored: that is the writer's)
    rates = out.out.splitlines()[-1]
    assert 'batches/s, ' in rates and 'MB/s accepted' in rates and 'stored' not in out.out


def test_no_rates_when_nothing_was_accepted(capsys):
    with listening(replies=[b'203', b'203']) as (_server, url):
        code, out = simulate(capsys, '--url', url, '--station', '1', '--password', 'x', '--batches', '2')
    assert code == 1
    assert 'no batch accepted' in out.out and '/s' not in out.out


def test_many_stations_are_summarized_not_listed(make_config, capsys):
    stations = ''.join(f'{n},Amsterdam,pw{n}\n' for n in range(1001, 1031))
    with listening() as (_server, url):
        code, out = simulate(
            capsys, '--url', url, '--config', make_config(stations), '--stations', '30', '--batch-size', '1'
        )
    assert code == 0
    assert 'for 30 stations (1001 to 1030) to ' in out.out and '1002' not in out.out


def test_a_refused_connection_is_reported_not_a_traceback(capsys):
    code, out = simulate(
        capsys, '--url', f'http://127.0.0.1:{uwsgi_server.free_port()}/', '--station', '1', '--password', 'x'
    )
    assert code == 1 and 'error: [Errno 111] Connection refused' in out.out


def test_a_station_without_password_is_refused_with_a_reason(capsys):
    code, out = simulate(capsys, '--station', '1')
    assert code == 1 and 'no password for station 1' in out.err


def test_rate_paces_the_batches_and_duration_bounds_the_run(capsys):
    with listening() as (server, url):
        began = time.monotonic()
        simulate(
            capsys,
            '--url',
            url,
            '--station',
            '1',
            '--password',
            'x',
            '--batch-size',
            '1',
            '--batches',
            '5',
            '--rate',
            '20',
        )
        assert time.monotonic() - began >= 4 / 20
        began = time.monotonic()
        simulate(
            capsys,
            '--url',
            url,
            '--station',
            '1',
            '--password',
            'x',
            '--batch-size',
            '1',
            '--duration',
            '0.5',
            '--rate',
            '10',
        )
        assert 0.4 <= time.monotonic() - began < 2.0
    assert 5 + 4 <= len(server.posts) <= 5 + 6


def test_date_sets_the_day_of_the_events(capsys):
    with listening() as (server, url):
        simulate(capsys, '--url', url, '--station', '1', '--password', 'x', '--date', '2019-04-07')
    batch = safepickle.loads(decode(server.posts[0][2])[1])
    assert {e['header']['datetime'].date().isoformat() for e in batch} == {'2019-04-07'}


@pytest.mark.slow
def test_the_real_endpoint_stores_simulated_uploads(make_config, capsys):
    path = make_config()
    with uwsgi_server.running(path) as server:
        for flavour in ('py2', 'py3'):
            code, out = simulate(
                capsys,
                '--url',
                server.url,
                '--config',
                path,
                '--stations',
                '2',
                '--batches',
                '2',
                '--pickle',
                flavour,
                '--mix',
                'every-type',
            )
            assert code == 0, out


@pytest.mark.parametrize(
    'argv, says',
    [
        (['--url', 'localhost:8080/hisparc/upload'], "'localhost:8080/hisparc/upload' is not an http:// URL"),
        (['--rate', '-1'], "'-1' is not a positive number"),
        (['--stations', '0'], "'0' is not a positive whole number"),
    ],
)
def test_arguments_that_make_no_sense_are_refused_with_the_reason(capsys, argv, says):
    with pytest.raises(SystemExit) as exc:
        cli.main(['simulate', '--station', '1', '--password', 'x', *argv])
    assert exc.value.code == 2 and says in capsys.readouterr().err
