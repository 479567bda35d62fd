"""The example nginx site (Debian's nginx) in front of a real uWSGI with the production options.

nginx reads each body whole before uWSGI sees the request, so slow senders
hold nginx connections, not the few upload workers; the station's address
reaches the upload log; the protocol's answers are kept (HTTP 200 text/plain,
three digits) where nginx answers itself; the monitoring URLs are for the
addresses the site allows.
"""

import contextlib
import datetime
import http.client
import json
import random
import socket
import threading
import time

import pytest

from datastore import factory, py2pickle
from tests.support import nginx_site, processes, uwsgi_server
from tests.support.nginx_site import LIMIT

pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def nginx():
    return nginx_site.binary()


def in_front(nginx, server, folder):
    return nginx_site.running(nginx, [server.socket], folder)


def body(seed):
    events = factory.batch(datetime.datetime(2024, 5, 17, 12), random.Random(seed))
    return uwsgi_server.upload_body(501, 's3cret', py2pickle.dumps(events))


def post(port, data, source='127.0.0.1', timeout=10):
    """(status, content type, body) of a POST from address ``source``."""
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=timeout, source_address=(source, 0))
    try:
        conn.request(
            'POST',
            '/hisparc/upload',
            body=data,
            headers={'Content-Type': 'application/x-www-form-urlencoded'},
        )
        reply = conn.getresponse()
        return reply.status, reply.getheader('Content-Type'), reply.read().decode()
    finally:
        conn.close()


def get(port, path, source):
    """(status, content type, body) of a GET from address ``source``; (403,) if nginx refused it."""
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=10, source_address=(source, 0))
    try:
        conn.request('GET', path)
        reply = conn.getresponse()
        if reply.status == 403:
            return (reply.status,)
        return reply.status, reply.getheader('Content-Type'), reply.read().decode()
    finally:
        conn.close()


@contextlib.contextmanager
def slow_senders(port, count):
    """``count`` connections that send a POST's headers and then dribble its body, a byte at a time."""
    senders = []
    for _ in range(count):
        sock = socket.create_connection(('127.0.0.1', port))
        sock.sendall(
            b'POST /hisparc/upload HTTP/1.1\r\nHost: datastore\r\n'
            b'Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\nstation_id=501'
        )
        senders.append(sock)
    stop = threading.Event()

    def dribble():
        while not stop.wait(0.1):
            for sock in senders:
                sock.send(b'0')

    thread = threading.Thread(target=dribble)
    thread.start()
    try:
        time.sleep(0.2)  # all of them at it
        yield
    finally:
        stop.set()
        thread.join()
        for sock in senders:
            sock.close()


def test_fifty_slow_senders_do_not_delay_a_station_and_its_address_reaches_the_log(
    nginx, make_config, tmp_path
):
    configfile = make_config()
    with (
        uwsgi_server.running(configfile, processes=2) as server,
        in_front(nginx, server, tmp_path / 'nginx') as port,
    ):
        with slow_senders(port, 50):
            for seed in range(3):
                started = time.monotonic()
                assert post(port, body(seed), source='127.0.0.3') == (200, 'text/plain', '100')
                assert time.monotonic() - started < 1.0
        # Straight to uWSGI, two slow senders hold both workers: what nginx spares it
        with slow_senders(server.port, 2), pytest.raises(socket.timeout):
            post(server.port, body(9), timeout=1.0)
    assert (tmp_path / 'hisparc.log-wsgi').read_text().count(
        'upload from 127.0.0.3 station 501: 100 events, code 100'
    ) == 3


def test_the_protocol_is_kept_where_nginx_answers_itself(nginx, make_config, tmp_path):
    configfile = make_config()
    with (
        uwsgi_server.running(configfile, processes=1) as server,
        in_front(nginx, server, tmp_path / 'nginx') as port,
    ):
        # A body over the limit: the protocol's 400, not an HTML 413 (the headers say it all)
        with socket.create_connection(('127.0.0.1', port), timeout=10) as sock:
            sock.sendall(
                b'POST /hisparc/upload HTTP/1.1\r\nHost: datastore\r\n'
                b'Content-Type: application/x-www-form-urlencoded\r\n'
                + f'Content-Length: {LIMIT + 1}\r\n\r\n'.encode()
            )
            reply = http.client.HTTPResponse(sock)
            reply.begin()
            assert (reply.status, reply.getheader('Content-Type'), reply.read()) == (
                200,
                'text/plain',
                b'400',
            )
        # The monitoring URLs: for the allowed addresses only
        assert json.loads(processes.get(port, '/hisparc/status'))['queue']['files'] == 0
        assert json.loads(processes.get(port, '/hisparc/ready'))['ready'] is True
        # (nginx matches the path it has normalised, as it passes it on)
        for path in (
            *('/hisparc/status', '/hisparc/health', '/hisparc/ready', '/hisparc/metrics'),
            *('/hisparc//status', '/hisparc/./metrics', '/hisparc/%73tatus', '/hisparc/status?format=json'),
        ):
            assert get(port, path, source='127.0.0.2')[0] == 403, path
        # Any path near them passes, and reaches the upload endpoint: a bare GET's 400, no figures
        for path in ('/hisparc/status/', '/hisparc/x/metrics', '/hisparc/a/health', '/hisparc/ready/'):
            assert get(port, path, source='127.0.0.2') == (200, 'text/plain', '400'), path
        # uWSGI down: storage unavailable, 404, for the station to retry
        uwsgi_server.stop(server.process)
        assert post(port, body(1)) == (200, 'text/plain', '404')
