"""The deployment files in examples/ and config.ini.example, run or checked for real."""

import configparser
import datetime
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys

import pytest
import webtest

from datastore import config as config_mod
from datastore import factory, py2pickle, uwsgi_ini
from tests.support import processes, uwsgi_server

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / 'examples'


def adapted_uwsgi_ini(tmp_path, configfile, port):
    """examples/uwsgi.ini with its placeholders and port pointed at this checkout and tmp_path."""
    text = (EXAMPLES / 'uwsgi.ini').read_text()
    for name, value in (('home_dir', ROOT), ('config_file', configfile), ('run_dir', tmp_path)):
        text, n = re.subn(
            rf'^set-placeholder = {name}=.*$', f'set-placeholder = {name}={value}', text, flags=re.MULTILINE
        )
        assert n == 1, name
    text, n = re.subn(
        r'^http-socket = 127\.0\.0\.1:8080$', f'http-socket = 127.0.0.1:{port}', text, flags=re.MULTILINE
    )
    assert n == 1
    text = text.replace(f'virtualenv = {ROOT}/.venv', f'virtualenv = {sys.prefix}')
    text = text.replace(f'{ROOT}/.venv/bin/', f'{pathlib.Path(sys.executable).parent}/')
    path = tmp_path / 'uwsgi.ini'
    path.write_text(text)
    return path


def ini_values(path, key):
    return [
        line.split('=', 1)[1].strip()
        for line in pathlib.Path(path).read_text().splitlines()
        if line.split('=', 1)[0].strip() == key
    ]


@pytest.mark.slow
def test_uwsgi_ini_serves_upload_status_and_the_writer_and_stops_on_sigterm(make_config, tmp_path):
    configfile = make_config()
    data_dir = tmp_path / 'datastore'
    port = uwsgi_server.free_port()
    log = open(tmp_path / 'uwsgi.log', 'w+')
    process = subprocess.Popen(
        [str(uwsgi_server.UWSGI), '--ini', str(adapted_uwsgi_ini(tmp_path, configfile, port))],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    writer = None
    try:
        processes.wait_for(
            lambda: process.poll() is not None or processes.answers(port), what='uWSGI to answer'
        )
        assert process.poll() is None, (tmp_path / 'uwsgi.log').read_text()
        # The upload app answers on its URL and on every path but the status URL.
        for path in ('/hisparc/upload', '/', '/some/proxy/path'):
            assert processes.post(port, path) == '400'
            events = factory.batch(datetime.datetime(2024, 1, 2, 3, 4, 5))
            body = uwsgi_server.upload_body(501, 's3cret', py2pickle.dumps(events))
            assert processes.post(port, path, body) == '100'
        assert processes.get(port, '/hisparc/upload') == '400'
        # The status app, and the attached writer that drains the queue.
        writer = processes.wait_for(
            lambda: (
                (data_dir / 'writer.status').exists()
                and json.loads(processes.get(port, '/hisparc/status'))['writer']['running']
                and json.loads((data_dir / 'writer.status').read_text())['pid']
            ),
            what='the writer to report',
        )
        processes.wait_for(
            lambda: json.loads(processes.get(port, '/hisparc/status'))['writer']['events_stored'] == 300,
            what='the writer to store the uploads',
        )
        assert (tmp_path / 'stats.sock').exists()
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
        processes.wait_for(lambda: processes.gone(writer), timeout=10, what='the writer to stop')
        assert not (tmp_path / 'stats.sock').exists()  # vacuum
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        if writer and not processes.gone(writer):
            os.kill(writer, signal.SIGKILL)
        log.close()


def test_examples_uwsgi_ini_is_the_option_table_that_serve_and_the_tests_run():
    assert (EXAMPLES / 'uwsgi.ini').read_text() == uwsgi_ini.render()


def test_uwsgi_ini_leaves_the_body_limit_to_the_app_which_answers_400():
    assert ini_values(EXAMPLES / 'uwsgi.ini', 'limit-post') == []
    assert ini_values(EXAMPLES / 'uwsgi.ini', 'post-buffering') == []


def test_uwsgi_ini_has_the_production_settings():
    names = {
        line.split('=', 1)[0].strip()
        for line in (EXAMPLES / 'uwsgi.ini').read_text().splitlines()
        if line.strip() and not line.startswith(';')
    }
    assert {
        'strict',
        'master',
        'processes',
        'threads',
        'harakiri',
        'socket-timeout',
        'die-on-term',
        'need-app',
        'vacuum',
        'stats',
        'pidfile',
        'master-fifo',
        'binary-path',
        'socket',
        'mount',
        'manage-script-name',
        'attach-daemon2',
    } <= names
    assert 'touch-reload' not in names  # a broken config.ini saved must not stop anything
    assert ini_values(EXAMPLES / 'uwsgi.ini', 'threads') == ['1']
    assert 'stopsignal=15' in ini_values(EXAMPLES / 'uwsgi.ini', 'attach-daemon2')[0]


def documented_keys():
    """(section, key) -> value of every key set in config.ini.example."""
    parser = configparser.ConfigParser(inline_comment_prefixes=('#', ';'), interpolation=None)
    parser.read(ROOT / 'config.ini.example')
    return {(s, k): v for s in parser.sections() for k, v in parser[s].items()}


def test_config_ini_example_documents_every_key_with_its_default():
    documented = documented_keys()
    for section, key, _, default in config_mod.KEYS:
        assert (section, key) in documented, f'[{section}] {key} is not in config.ini.example'
        if default is not None:
            assert type(default)(documented[section, key]) == default, key
    assert set(documented) == {(s, k) for s, k, _, _ in config_mod.KEYS}


def test_config_ini_example_and_examples_config_ini_load(tmp_path):
    for path in (ROOT / 'config.ini.example', EXAMPLES / 'config.ini'):
        config = config_mod.load(str(path))
        assert config.data_dir and config.station_list


def test_status_wsgi_answers_with_the_configured_datastore(make_config, monkeypatch):
    monkeypatch.setenv('HISPARC_DATASTORE_CONFIG', make_config())
    namespace = {}
    exec(compile((EXAMPLES / 'status.wsgi').read_text(), 'status.wsgi', 'exec'), namespace)
    reply = webtest.TestApp(namespace['application']).get('/hisparc/status')
    assert reply.json['queue']['files'] == 0


@pytest.mark.slow
@pytest.mark.skipif(not shutil.which('systemd-analyze'), reason='systemd-analyze is not installed')
def test_the_writer_service_unit_verifies(tmp_path):
    text = (EXAMPLES / 'hisparc-writer.service').read_text()
    text = text.replace('/srv/hisparc-datastore/.venv/bin/', f'{pathlib.Path(sys.executable).parent}/')
    text = re.sub(r'^(User|Group)=.*$', '', text, flags=re.MULTILINE)  # no such user here
    unit = tmp_path / 'hisparc-writer.service'
    unit.write_text(text)
    result = subprocess.run(['systemd-analyze', 'verify', str(unit)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert 'hisparc-writer' in re.search(r'^ExecStart=(.*)$', text, re.MULTILINE).group(1)
