"""The status figures (datastore.status) and the monitoring endpoint (wsgi.status_app)."""

import functools
import json
import os
import subprocess
import sys
import time

import pytest
import webtest
from prometheus_client.parser import text_string_to_metric_families

from datastore import config as config_mod
from datastore import datadir, status
from datastore.received import Received
from wsgi import status_app

NOW = 1_800_000_000.0


def put(data_dir, folder, name, mtime):
    os.makedirs(os.path.join(data_dir, folder), exist_ok=True)
    path = os.path.join(data_dir, folder, name)
    with open(path, 'wb') as f:
        f.write(b'x')
    os.utime(path, (mtime, mtime))


def write_writer_status(data_dir, **fields):
    os.makedirs(data_dir, exist_ok=True)
    with open(os.path.join(data_dir, datadir.WRITER_STATUS), 'w') as f:
        json.dump(fields, f)


def dead_pid():
    """A pid no process can have: above the kernel's pid_max."""
    with open('/proc/sys/kernel/pid_max') as f:
        return int(f.read()) + 1


def test_an_empty_datastore_has_nothing_queued_no_stations_and_no_writer(config):
    figures = status.gather(config, now=NOW)
    assert figures['folders'] == dict.fromkeys(datadir.FOLDERS, 0)
    assert figures['queue'] == {'files': 0, 'oldest_age': None}
    assert figures['stations'] == {}
    assert figures['writer']['running'] is False
    assert figures['writer']['paused'] is False


def test_folder_counts_and_the_age_of_the_oldest_waiting_file(config):
    for i, mtime in enumerate((NOW - 300, NOW - 30, NOW - 5)):
        put(config.data_dir, datadir.INCOMING, f'in{i}', mtime)
    put(config.data_dir, datadir.SUSPICIOUS, 's0', NOW)
    put(config.data_dir, datadir.SUSPICIOUS, 's1', NOW)
    put(config.data_dir, datadir.FAILED, 'f0', NOW)
    put(config.data_dir, datadir.PARTIAL, 'p0', NOW)
    figures = status.gather(config, now=NOW)
    assert figures['folders'] == {'tmp': 0, 'incoming': 3, 'suspicious': 2, 'partial': 1, 'failed': 1}
    assert figures['queue'] == {'files': 3, 'oldest_age': 300.0}


def test_last_upload_per_station_comes_from_the_endpoints_received_record(config):
    received = Received(datadir.DataDir(config.data_dir), window_seconds=10**9)
    os.makedirs(config.data_dir)
    received.record(501, 'aa', 0, [], now=NOW - 100)
    received.record(501, 'bb', 0, [], now=NOW - 10)
    received.record(502, 'cc', 0, [], now=NOW - 50)
    stations = status.gather(config, now=NOW)['stations']
    assert stations == {
        '501': {'last_upload': NOW - 10, 'last_stored_event': None},
        '502': {'last_upload': NOW - 50, 'last_stored_event': None},
    }


def test_a_received_file_that_is_not_a_database_gives_no_uploads_not_an_error(config):
    os.makedirs(config.data_dir)
    with open(os.path.join(config.data_dir, datadir.RECEIVED), 'wb') as f:
        f.write(b'not sqlite at all' * 100)
    assert status.gather(config, now=NOW)['stations'] == {}


def test_a_writer_that_reported_recently_and_is_alive_is_running(config):
    write_writer_status(
        config.data_dir,
        pid=os.getpid(),
        state='idle',
        updated=NOW - 2,
        stations={'501': NOW - 60},
        events_stored=1234,
    )
    writer = status.gather(config, now=NOW)['writer']
    assert writer['running'] is True
    assert (writer['state'], writer['pid'], writer['events_stored']) == ('idle', os.getpid(), 1234)
    assert status.gather(config, now=NOW)['stations']['501'] == {
        'last_upload': None,
        'last_stored_event': NOW - 60,
    }


def test_a_writer_whose_report_is_stale_or_whose_pid_is_gone_is_not_running(config):
    stale = NOW - max(3 * config.sleep, status.MIN_STALE) - 1
    write_writer_status(
        config.data_dir, pid=os.getpid(), state='idle', updated=stale, stations={}, events_stored=0
    )
    assert status.gather(config, now=NOW)['writer']['running'] is False
    write_writer_status(
        config.data_dir, pid=dead_pid(), state='storing', updated=NOW, stations={}, events_stored=0
    )
    assert status.gather(config, now=NOW)['writer']['running'] is False


def test_a_garbled_writer_status_reads_as_not_running(config):
    os.makedirs(config.data_dir)
    with open(os.path.join(config.data_dir, datadir.WRITER_STATUS), 'w') as f:
        f.write('{"pid": ')
    assert status.gather(config, now=NOW)['writer']['running'] is False


def test_paused_is_the_pause_file(config):
    os.makedirs(config.data_dir)
    open(os.path.join(config.data_dir, datadir.WRITER_PAUSE), 'w').close()
    assert status.gather(config, now=NOW)['writer']['paused'] is True


def samples(text):
    """{name{labels}: value} of a Prometheus exposition, read by prometheus_client's own parser."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ','.join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            found[sample.name + (f'{{{labels}}}' if labels else '')] = sample.value
    return found


def running_writer(data_dir, **fields):
    write_writer_status(
        data_dir, **{'pid': os.getpid(), 'state': 'idle', 'updated': time.time(), 'stations': {}, **fields}
    )


def test_metrics_carry_every_figure_and_the_verdicts(make_config):
    path = make_config()
    data_dir = config_mod.load(path).data_dir
    put(data_dir, datadir.INCOMING, 'in0', time.time() - 42)
    Received(datadir.DataDir(data_dir), 10**9).record(501, 'aa', 0, [], now=NOW - 10)
    running_writer(data_dir, stations={'501': NOW - 20}, events_stored=7)
    found = samples(app_for(path).get('/hisparc/metrics').text)
    assert found['hisparc_spool_files{folder="incoming"}'] == 1
    assert found['hisparc_spool_files{folder="suspicious"}'] == 0
    assert 42 <= found['hisparc_queue_oldest_age_seconds'] < 60
    assert found['hisparc_writer_running'] == 1
    assert found['hisparc_writer_paused'] == 0
    assert found['hisparc_writer_events_stored_total'] == 7
    assert found['hisparc_station_last_upload_timestamp_seconds{station="501"}'] == NOW - 10
    assert found['hisparc_station_last_stored_event_timestamp_seconds{station="501"}'] == NOW - 20
    assert found['hisparc_ready'] == 1
    assert found['hisparc_healthy'] == 1
    assert found['hisparc_damaged_day_files'] == 0
    assert found['hisparc_audit_unaccounted_batches'] == 0


def test_the_oldest_queued_age_is_0_not_absent_when_nothing_waits(make_config):
    found = samples(app_for(make_config()).get('/hisparc/metrics').text)
    assert found['hisparc_queue_oldest_age_seconds'] == 0
    assert found['hisparc_writer_running'] == 0
    assert found['hisparc_healthy'] == 0


def app_for(configfile):
    return webtest.TestApp(functools.partial(status_app.application, configfile=configfile))


def test_the_status_endpoint_answers_json_by_default_with_the_health_verdict(make_config):
    path = make_config()
    put(config_mod.load(path).data_dir, datadir.INCOMING, 'in0', time.time())
    reply = app_for(path).get('/hisparc/status')
    assert reply.content_type == 'application/json'
    assert reply.json['queue']['files'] == 1
    assert reply.json['writer']['running'] is False
    assert reply.json['health'] == {'healthy': False, 'reasons': ['the writer is not running']}


def test_the_status_endpoint_answers_prometheus_by_query_or_accept_header(make_config):
    app = app_for(make_config())
    for reply in (
        app.get('/hisparc/status?format=prometheus'),
        app.get('/hisparc/status', headers={'Accept': 'text/plain;version=0.0.4'}),
        app.get(
            '/hisparc/status',
            headers={'Accept': 'application/openmetrics-text;version=1.0.0,text/plain;q=0.5'},
        ),
    ):
        assert reply.content_type == 'text/plain'
        assert samples(reply.text)['hisparc_spool_files{folder="incoming"}'] == 0


def test_the_status_endpoint_answers_a_browser_with_html(make_config):
    reply = app_for(make_config()).get(
        '/hisparc/status', headers={'Accept': 'text/html,application/xhtml+xml,*/*;q=0.8'}
    )
    assert reply.content_type == 'text/html'
    assert '<title>HiSPARC datastore: UNWELL</title>' in reply.text
    assert 'the writer is not running' in reply.text


@pytest.mark.parametrize('path', ['/hisparc/ready', '/hisparc/health', '/hisparc/status', '/hisparc/metrics'])
def test_every_monitoring_url_answers_503_naming_a_broken_config(tmp_path, path):
    reply = app_for(str(tmp_path / 'missing.ini')).get(path, status=503)
    assert reply.json['ready'] is False and reply.json['healthy'] is False
    assert 'missing.ini' in reply.json['reasons'][0]


# Beside the monitoring URLs, the nginx site limits nothing: a monitoring page on
# any of these would be open to every address.
BYPASSES = ['/hisparc/status/', '/hisparc/x/metrics', '/hisparc/a/health', '/hisparc/ready/', '/status']


@pytest.mark.parametrize(
    'path', ['/hisparc/', '/hisparc/upload', '/hisparc/statuses', '/hisparc/STATUS', *BYPASSES]
)
def test_other_paths_reach_the_upload_endpoint_which_answers_a_bare_get_400(make_config, path):
    # (paths outside /hisparc reach it too under uWSGI: test_monitoring_uwsgi.py)
    reply = app_for(make_config()).get(path)
    assert (reply.status_int, reply.content_type, reply.text) == (200, 'text/plain', '400')


def test_mounted_at_hisparc_it_answers_the_same_paths_only(make_config):
    # uWSGI's manage-script-name: SCRIPT_NAME is the mount point, PATH_INFO the rest
    app = app_for(make_config())
    mounted = {'SCRIPT_NAME': '/hisparc'}
    assert app.get('/status', extra_environ=mounted).json['queue']['files'] == 0
    for path in ('/status/', '/x/metrics', '/a/health', '/'):
        reply = app.get(path, extra_environ=mounted)
        assert (reply.content_type, reply.text) == ('text/plain', '400'), path


@pytest.mark.slow
def test_the_status_endpoint_does_not_import_pytables():
    code = 'import sys, wsgi.status_app; print("tables" in sys.modules, "numpy" in sys.modules)'
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ['False', 'False']


def test_config_problems_are_those_of_the_file_on_disk(make_config):
    path = make_config()
    config = config_mod.load(path)
    assert status.gather(config)['config_problems'] == []
    with open(path, 'a') as f:
        f.write('batch_files=none\n')
    assert status.gather(config)['config_problems'] == [
        f"{path}: [Writer] batch_files = 'none' is not a valid int"
    ]


def test_the_status_endpoint_serves_the_last_good_config_and_what_is_wrong_with_the_new_one(make_config):
    path = make_config()
    app = app_for(path)
    first = app.get('/hisparc/status').json
    assert first['config_problems'] == []
    config_mod.following(path).watch.check_every = 0
    with open(path, 'a') as f:
        f.write('batch_files=none\n')
    figures = app.get('/hisparc/status').json
    assert figures['data_dir'] == first['data_dir']
    assert figures['config_problems'] == [f"{path}: [Writer] batch_files = 'none' is not a valid int"]
