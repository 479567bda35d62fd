"""The fail2ban filter over real upload-log lines: guesses counted, retries not."""

import subprocess

import pytest

from datastore import py2pickle
from tests.support import debian, uwsgi_server
from tests.support.endpoint import Endpoint
from tests.support.pickles import batch

FILTER = uwsgi_server.EXAMPLES / 'fail2ban' / 'filter.d' / 'hisparc-datastore.conf'
JAIL = uwsgi_server.EXAMPLES / 'fail2ban' / 'jail.d' / 'hisparc-datastore.conf'


@pytest.fixture(scope='module')
def fail2ban_regex():
    return debian.program('fail2ban-regex', 'fail2ban')


def post(ep, client, station, password):
    body = uwsgi_server.upload_body(station, password, py2pickle.dumps(batch(station)))
    return ep.app.post('/hisparc/upload', body, extra_environ={'REMOTE_ADDR': client}).text


def test_the_filter_counts_new_guesses_and_unknown_stations_but_not_retries(make_config, fail2ban_regex):
    ep = Endpoint(make_config())
    for guess in range(25):  # a password guesser
        assert post(ep, '192.0.2.7', 501, f'guess-{guess}') == '203'
    for _ in range(10):  # a misconfigured station retrying its wrong password
        assert post(ep, '198.51.100.1', 501, 'old password') == '203'
    for station in (501, 502):  # a school: two stations behind one address, both misconfigured
        for _ in range(5):
            assert post(ep, '203.0.113.9', station, 'stale') == '203'
    for _ in range(5):  # a station that was removed from the list, still sending
        assert post(ep, '203.0.113.5', 999, 'x') == '206'
    assert post(ep, '203.0.113.5', 501, 's3cret') == '100'
    assert ep.post(b'') == '400'
    done = subprocess.run(
        [fail2ban_regex, '--print-all-matched', str(ep.log_path), str(FILTER)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    matched = [line for line in done.stdout.splitlines() if ' upload from ' in line and '<HOST>' not in line]
    by_address = {}
    for line in matched:
        address = line.split(' upload from ')[1].split()[0]
        by_address[address] = by_address.get(address, 0) + 1
    assert by_address == {'192.0.2.7': 25, '198.51.100.1': 1, '203.0.113.9': 2, '203.0.113.5': 1}
    assert 'Lines: ' in done.stdout and ' 29 matched' in done.stdout.replace(',', '')


def test_the_jail_bans_20_new_guesses_a_minute_for_an_hour():
    text = JAIL.read_text()
    assert 'filter   = hisparc-datastore' in text
    assert 'maxretry = 20' in text and 'findtime = 60' in text and 'bantime  = 3600' in text
    assert 'unbanip' in text
