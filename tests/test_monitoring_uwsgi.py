"""The monitoring URLs under a real uWSGI: metrics summed over workers, verdicts, paths.

Workers are killed with SIGKILL between uploads (the master spawns new
ones), so the counts come from several worker processes, some of them gone
by the scrape.
"""

import json
import os
import signal

import pytest
from prometheus_client.parser import text_string_to_metric_families

from datastore import py2pickle
from tests.support import uwsgi_server
from tests.support.pickles import batch, event_at, state
from tests.support.processes import gone, wait_for
from tests.support.uwsgi_server import upload_body

pytestmark = pytest.mark.slow

STATIONS = '501,Amsterdam,s3cret\n'


def scrape(server):
    status, kind, text = server.request('GET', path='/hisparc/metrics')
    assert (status, kind) == (200, 'text/plain; version=0.0.4; charset=utf-8')
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ','.join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            found[sample.name + (f'{{{labels}}}' if labels else '')] = sample.value
    return found


def workers(server):
    master = server.process.pid
    with open(f'/proc/{master}/task/{master}/children') as f:
        return [int(pid) for pid in f.read().split()]


def kill_workers(server):
    """SIGKILL every worker; return once the master has spawned as many new ones."""
    killed = workers(server)
    for pid in killed:
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: all(map(gone, killed)), what='the workers to die')
    wait_for(lambda: len(set(workers(server)) - set(killed)) == len(killed), what='new workers')


def metrics_folders(data_dir):
    root = data_dir / 'metrics'
    return sorted(root.iterdir()) if root.is_dir() else []


def test_upload_counts_are_summed_over_every_worker_alive_or_gone(make_config, tmp_path):
    configfile, data_dir = make_config(stations=STATIONS), tmp_path / 'datastore'
    good = upload_body(501, 's3cret', py2pickle.dumps(batch(seed=1)))
    held = upload_body(501, 's3cret', py2pickle.dumps([*batch(seed=2)[:9], event_at(state(1999, 1, 1))]))
    wrong = upload_body(501, 'guess', py2pickle.dumps(batch(seed=3)))
    with uwsgi_server.running(configfile, processes=2) as server:
        before = scrape(server)
        replies = [server.post(good), server.post(good)]  # the second is a resend: 100, nothing new
        kill_workers(server)
        replies += [server.post(held), server.post(wrong)]
        kill_workers(server)
        replies += [server.post(wrong) for _ in range(4)]
        after = scrape(server)
        assert replies == ['100', '100', '100'] + ['203'] * 5

        def delta(name):
            return after[name] - before.get(name, 0)

        assert delta('hisparc_uploads_total{code="100"}') == 3
        assert delta('hisparc_uploads_total{code="203"}') == 5
        assert after['hisparc_uploads_total{code="206"}'] == 0  # every code present from the start
        assert delta('hisparc_events_accepted_total') == 100 + 10
        assert delta('hisparc_events_held_total') == 1
        assert delta('hisparc_upload_duration_seconds_count') == 8
        assert 0 < delta('hisparc_upload_duration_seconds_sum') < 8 * 5
        assert after['hisparc_spool_files{folder="incoming"}'] == 2
        assert after['hisparc_spool_files{folder="suspicious"}'] == 1
        assert after['hisparc_queue_oldest_age_seconds'] >= 0
        assert after['hisparc_ready'] == 1 and after['hisparc_healthy'] == 0  # no writer
        (folder,) = metrics_folders(data_dir)
        counted = {name for name in os.listdir(folder) if name.startswith('counter_')}
        assert len(counted) >= 3, counted  # at least one worker of each generation


def test_a_new_uwsgi_master_counts_from_0_in_a_fresh_folder(make_config, tmp_path):
    configfile, data_dir = make_config(stations=STATIONS), tmp_path / 'datastore'
    body = upload_body(501, 'guess', py2pickle.dumps(batch()))
    with uwsgi_server.running(configfile) as server:
        server.post(body)
        assert scrape(server)['hisparc_uploads_total{code="203"}'] == 1
        (first,) = metrics_folders(data_dir)
    with uwsgi_server.running(configfile) as server:
        assert scrape(server)['hisparc_uploads_total{code="203"}'] == 0
        (second,) = metrics_folders(data_dir)  # the gone master's folder is removed
    assert first != second


def test_the_monitoring_urls_and_every_other_path_under_uwsgi(make_config):
    with uwsgi_server.running(make_config(stations=STATIONS)) as server:
        status, kind, text = server.request('GET', path='/hisparc/ready')
        assert (status, kind, json.loads(text)) == (200, 'application/json', {'ready': True, 'reasons': []})
        status, _, text = server.request('GET', path='/hisparc/health')
        assert (status, json.loads(text)['reasons']) == (503, ['the writer is not running'])
        status, kind, text = server.request('GET', path='/hisparc/status')
        assert (status, kind) == (200, 'application/json')
        assert json.loads(text)['health']['healthy'] is False
        # the upload URL, and every other path, answer a bare GET as the upload endpoint does
        # (those near a monitoring URL too: the nginx site limits the exact ones only)
        for path in (
            *('/hisparc/upload', '/health', '/', '/hisparc/', '/hisparc/other'),
            *('/hisparc/status/', '/hisparc/x/metrics', '/hisparc/a/health', '/hisparcstatus'),
        ):
            assert server.request('GET', path=path) == (200, 'text/plain', '400'), path
