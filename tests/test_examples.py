"""The deployment files in examples/ and config.ini.example, run or checked for real."""

import configparser
import datetime
import grp
import json
import logging
import os
import pathlib
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile

import pytest
import webtest

from datastore import config as config_mod
from datastore import factory, py2pickle, uwsgi_ini
from tests.support import debian, processes, uwsgi_server
from writer import writer_app

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


UNITS = ('hisparc-datastore.service', 'hisparc-writer.service')


def unit_setting(name, key):
    """The values of ``key=`` in examples/NAME, in order."""
    return re.findall(rf'^{key}=(.*)$', (EXAMPLES / name).read_text(), flags=re.MULTILINE)


@pytest.fixture(scope='module')
def systemd_analyze():
    return debian.program('systemd-analyze', 'systemd')


def test_apt_is_asked_once_a_session_and_a_package_it_cannot_install_is_skipped_at_once(monkeypatch):
    # (the tests above and below install their programs through this, as root)
    asked = []

    def apt(*arguments):
        asked.append(arguments[0] if arguments[0] == 'update' else arguments[-1])
        return f'apt-get {arguments[0]} failed: no mirror answers'

    monkeypatch.setattr(debian, 'TRIED', {})
    monkeypatch.setattr(debian, '_apt', apt)
    monkeypatch.setattr(debian, '_may_install', lambda: True)
    monkeypatch.setattr(debian, '_found', lambda _commands: False)
    for _ in range(3):
        with pytest.raises(pytest.skip.Exception, match='apt-get update failed: no mirror answers'):
            debian.program('nginx', 'nginx')
    assert debian.missing(('promtool',), ('prometheus',)) == 'apt-get install failed: no mirror answers'
    assert asked == ['nginx', 'update', 'prometheus']  # the lists updated once, each package tried once


def remote_database_drop_in(name):
    """The drop-in examples/NAME's comments give for a resend_database on another host."""
    text = (EXAMPLES / name).read_text()
    found = re.search(r'^#   \[Service\]\n((?:#   \w+=.*\n)+)', text, flags=re.MULTILINE)
    assert found, f'{name} gives no drop-in for a resend_database on another host'
    return '[Service]\n' + ''.join(line.removeprefix('#   ') + '\n' for line in found[1].splitlines())


@pytest.mark.slow
@pytest.mark.parametrize('drop_in', [False, True], ids=['as-written', 'remote-resend-database'])
@pytest.mark.parametrize('name', UNITS)
def test_the_units_verify_and_are_hardened(systemd_analyze, tmp_path, name, drop_in):
    text = (EXAMPLES / name).read_text()
    if drop_in:  # a section given again extends it, as a drop-in does
        text += '\n' + remote_database_drop_in(name)
    text = text.replace('/srv/hisparc-datastore/.venv/bin/', f'{pathlib.Path(sys.executable).parent}/')
    unit = tmp_path / name
    unit.write_text(re.sub(r'^(User|Group)=.*$', '', text, flags=re.MULTILINE))  # no such user here
    verified = subprocess.run([systemd_analyze, 'verify', str(unit)], capture_output=True, text=True)
    assert verified.returncode == 0, verified.stderr
    assert name not in verified.stderr, verified.stderr
    unit.write_text(text)
    rated = subprocess.run(
        [systemd_analyze, 'security', '--offline=yes', str(unit)], capture_output=True, text=True
    )
    exposure = re.search(rf'Overall exposure level for {re.escape(name)}: ([0-9.]+)', rated.stdout)
    assert exposure, rated.stdout + rated.stderr
    assert float(exposure[1]) <= 4.0, rated.stdout


def test_the_uwsgi_unit_makes_the_run_dir_waits_for_ready_and_checks_before_it_reloads():
    name = 'hisparc-datastore.service'
    assert unit_setting(name, 'Type') == ['notify']
    assert f'/run/{unit_setting(name, "RuntimeDirectory")[0]}' == uwsgi_ini.PRODUCTION['run_dir']
    check, reload = unit_setting(name, 'ExecReload')
    assert ' check-config ' in check and reload == '/bin/kill -HUP $MAINPID'
    assert unit_setting(name, 'ExecStart')[0].endswith(' --ini /srv/hisparc-datastore/examples/uwsgi.ini')


@pytest.mark.parametrize('name', UNITS)
def test_the_units_allow_this_host_only_and_give_a_drop_in_for_a_postgresql_elsewhere(name):
    # The endpoint records every batch there and the writer's light audit reads them
    assert 'yes' not in unit_setting(name, 'PrivateNetwork')
    assert {'AF_INET', 'AF_INET6'} <= set(' '.join(unit_setting(name, 'RestrictAddressFamilies')).split())
    assert unit_setting(name, 'IPAddressDeny') == ['any']
    assert unit_setting(name, 'IPAddressAllow') == ['localhost']
    assert re.fullmatch(r'\[Service\]\nIPAddressAllow=[0-9.]+\n', remote_database_drop_in(name))


def test_the_writer_unit_does_not_restart_a_writer_that_cannot_help_it():
    stops = unit_setting('hisparc-writer.service', 'RestartPreventExitStatus')[0].split()
    assert str(writer_app.EXIT_ALREADY_RUNNING) in stops and str(writer_app.EXIT_CONFIG) in stops


def test_the_units_nginx_and_logrotate_name_the_paths_of_the_example_configuration():
    config = config_mod.load(str(EXAMPLES / 'config.ini'))
    for name in UNITS:
        writable = ' '.join(unit_setting(name, 'ReadWritePaths')).split()
        for path in (config.data_dir, os.path.dirname(config.log)):
            assert any(path == w or path.startswith(w + '/') for w in writable), (name, path)
    socket_path = f'{uwsgi_ini.PRODUCTION["run_dir"]}/uwsgi.sock'
    assert f'server unix:{socket_path};' in (EXAMPLES / 'nginx' / 'hisparc-datastore.conf').read_text()
    assert 'socket = %(run_dir)/uwsgi.sock' in uwsgi_ini.render()
    rotated = (EXAMPLES / 'logrotate' / 'hisparc-datastore').read_text()
    uwsgi_log = unit_setting('hisparc-datastore.service', 'StandardOutput')[0].removeprefix('append:')
    suffixes = (config_mod.ENDPOINT_LOG, config_mod.WRITER_LOG, config_mod.TOOLS_LOG)
    for path in (*(config.log + suffix for suffix in suffixes), uwsgi_log):
        assert re.search(rf'^{re.escape(path)}$', rotated, flags=re.MULTILINE), path


def step_one_uwsgi_log():
    """(mode, path) of uWSGI's log as the README's Deployment step 1 makes it, the service's."""
    found = re.findall(
        r'^ *install -o hisparc -g hisparc -m ([0-7]+) /dev/null (\S+)$',
        (ROOT / 'README.md').read_text(),
        flags=re.MULTILINE,
    )
    assert len(found) == 1, found
    return found[0]


def test_the_deployment_steps_make_uwsgis_log_the_services_before_systemd_opens_it():
    _, path = step_one_uwsgi_log()
    assert unit_setting('hisparc-datastore.service', 'StandardOutput') == [f'append:{path}']


@pytest.fixture
def log_folder(tmp_path):
    """(folder, user, group) for logrotate's ``su``: as root an unprivileged user's, as in production.

    The folder is outside tmp_path, whose parents only root may enter.
    """
    if os.geteuid() != 0:
        folder = tmp_path / 'log'
        folder.mkdir()
        yield folder, pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name
        return
    user, group = 'nobody', grp.getgrgid(pwd.getpwnam('nobody').pw_gid).gr_name
    top = pathlib.Path(tempfile.mkdtemp(prefix='hisparc-logrotate-'))
    try:
        top.chmod(0o755)
        folder = top / 'log'
        folder.mkdir()
        shutil.chown(folder, user, group)
        yield folder, user, group
    finally:
        shutil.rmtree(top)


def logrotate_run(logrotate, tmp_path, logs, user, group):
    text = (EXAMPLES / 'logrotate' / 'hisparc-datastore').read_text().replace('/var/log/hisparc/', f'{logs}/')
    conf = tmp_path / 'logrotate.conf'
    conf.write_text(text.replace('hisparc hisparc', f'{user} {group}'))
    return subprocess.run(
        [logrotate, '--force', '--state', str(tmp_path / 'state'), str(conf)], capture_output=True, text=True
    )


@pytest.mark.slow
def test_logrotate_rotates_every_log_and_each_writer_goes_on_in_the_new_file(
    make_config, tmp_path, log_folder
):
    logrotate = debian.program('logrotate', 'logrotate')
    logs, user, group = log_folder
    config = config_mod.load(make_config(log=logs / 'datastore.log'))
    config_mod.setup_logging(config, config_mod.WRITER_LOG)  # as the writer does
    logging.getLogger('writer').warning('before')
    mode, _ = step_one_uwsgi_log()
    made = subprocess.run(
        ['install', '-o', user, '-g', group, '-m', mode, '/dev/null', str(logs / 'uwsgi.log')],
        capture_output=True,
        text=True,
    )
    assert made.returncode == 0, made.stderr
    with open(logs / 'uwsgi.log', 'a') as uwsgi_output:  # as systemd holds it for uWSGI
        uwsgi_output.write('uWSGI before\n')
        uwsgi_output.flush()
        rotated = logrotate_run(logrotate, tmp_path, logs, user, group)
        assert rotated.returncode == 0, rotated.stderr
        logging.getLogger('writer').warning('after')
        uwsgi_output.write('uWSGI after\n')
    assert 'before' in (logs / 'datastore.log-writer.1').read_text()
    assert 'after' in (logs / 'datastore.log-writer').read_text()
    assert (logs / 'uwsgi.log.1').read_text() == 'uWSGI before\n'
    assert (logs / 'uwsgi.log').read_text() == 'uWSGI after\n'  # O_APPEND: at the new end, no hole
    for handler in [h for h in logging.getLogger().handlers if h.get_name() == config_mod.LOG_HANDLER]:
        logging.getLogger().removeHandler(handler)
        handler.close()


@pytest.mark.slow
def test_logrotate_cannot_empty_a_uwsgi_log_that_systemd_made_as_root(tmp_path, log_folder):
    logrotate = debian.program('logrotate', 'logrotate')
    logs, user, group = log_folder
    if user == 'root' or os.geteuid() != 0:
        pytest.skip('needs root, to make a file root owns and rotate as another user')
    (logs / 'uwsgi.log').write_text('uWSGI\n')  # what the unit makes where step 1 was left out
    rotated = logrotate_run(logrotate, tmp_path, logs, user, group)
    assert rotated.returncode != 0
    assert f'error opening {logs}/uwsgi.log: Permission denied' in rotated.stderr
