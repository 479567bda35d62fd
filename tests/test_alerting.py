"""The alerting rules in examples/prometheus: valid, tested with promtool, and about real metrics."""

import pathlib
import re
import subprocess

import pytest
from prometheus_client.parser import text_string_to_metric_families

from datastore import py2pickle
from tests.support import debian, uwsgi_server
from tests.support.pickles import batch
from tests.support.uwsgi_server import upload_body

PROMETHEUS = pathlib.Path(__file__).resolve().parents[1] / 'examples' / 'prometheus'
RULES = PROMETHEUS / 'hisparc-datastore.rules.yml'


@pytest.fixture(scope='module')
def promtool():
    why_not = debian.missing(('promtool',), ('prometheus',))
    if why_not:
        pytest.skip(why_not)
    return 'promtool'


@pytest.mark.parametrize(
    'command',
    [
        ['check', 'rules', RULES.name],
        ['test', 'rules', 'hisparc-datastore.rules.test.yml'],
        ['check', 'config', 'prometheus.yml'],
    ],
)
def test_promtool_accepts_the_rules_their_tests_and_the_scrape_config(promtool, command):
    done = subprocess.run([promtool, *command], cwd=PROMETHEUS, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert 'SUCCESS' in done.stdout + done.stderr


@pytest.mark.slow
def test_every_metric_an_alert_reads_is_one_the_datastore_exposes(make_config):
    with uwsgi_server.running(make_config()) as server:
        assert server.post(upload_body(501, 's3cret', py2pickle.dumps(batch()))) == '100'
        text = server.request('GET', path='/hisparc/metrics')[2]
    exposed = set()
    for family in text_string_to_metric_families(text):
        exposed |= {sample.name for sample in family.samples}
    read = set(re.findall(r'\bhisparc_[a-z_]+', RULES.read_text())) - {'hisparc_datastore'}
    assert read, 'no metric found in the rules'
    assert read <= exposed, read - exposed
