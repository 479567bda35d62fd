"""The status page as a person sees it: in a real headless chromium, on a phone and a desktop.

The datastore is real: uploads posted to uWSGI, stored by the writer, then
the writer stopped, so the page must say it is unwell and why.
"""

import datetime
import json
import random
import struct
import time

import pytest

from datastore import datadir, factory, py2pickle
from datastore.received import Received
from tests.support import browser, processes, uwsgi_server
from tests.support.writer import run_once

pytestmark = pytest.mark.slow

STATIONS = '501,Amsterdam,s3cret\n502,Utrecht,pa ss\n'


@pytest.fixture(scope='module')
def chromium():
    why_not = browser.available()
    if why_not:
        pytest.skip(why_not)


@pytest.fixture
def site(make_config, tmp_path, chromium):
    """A served datastore: station 501 uploading and stored, 502 silent for 3 hours, no writer running."""
    configfile = make_config(stations=STATIONS)
    data_dir = tmp_path / 'datastore'
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None, microsecond=0)
    with uwsgi_server.running(configfile) as server:
        for i in range(3):
            events = factory.batch(now - datetime.timedelta(minutes=10 - i), random.Random(i))
            assert server.post(uwsgi_server.upload_body(501, 's3cret', py2pickle.dumps(events))) == '100'
        assert run_once(configfile).returncode == 0
        Received(datadir.DataDir(str(data_dir)), 10**9).record(502, 'ab', 0, [], now=time.time() - 3 * 3600)
        yield server, tmp_path


def png_size(png):
    assert png[:8] == b'\x89PNG\r\n\x1a\n'
    return struct.unpack('>II', png[16:24])


def test_on_a_phone_the_verdict_comes_first_and_every_station_is_there(site):
    server, tmp_path = site
    with browser.session(width=390, height=844, phone=True) as page:
        page.open(f'http://127.0.0.1:{server.port}/hisparc/status')
        assert page.script('return document.title') == 'HiSPARC datastore: UNWELL'
        verdict = page.text('#verdict')
        assert verdict.startswith('Unwell') and 'the writer is not running' in verdict
        box = page.script("return document.querySelector('#verdict').getBoundingClientRect().toJSON()")
        assert box['top'] < 844 and box['height'] > 0  # on the first screen, no scrolling
        assert page.script('return document.documentElement.scrollWidth') <= 390  # no sideways page
        rows = page.script(
            "return [...document.querySelectorAll('#stations tbody tr')].map(r => r.innerText)"
        )
        assert [row.split()[0] for row in rows] == ['501', '502']
        assert 'silent' not in rows[0] and 'silent' in rows[1]
        assert rows[1].count('-') >= 1  # nothing stored for 502
        assert 'Stations: 2, 1 silent' in page.text('body')
        assert 'Writer\nnot running' in page.text('dl')
        # the plot: 24 hourly bars, this hour's holding the 300 events just stored
        bars = page.script(
            "return [...document.querySelectorAll('#stored rect.bar')]"
            '.map(b => [b.getBBox().height, b.textContent])'
        )
        assert len(bars) == 24
        assert bars[-1][0] > 0 and bars[-1][1].endswith('UTC: 300 events')
        assert all(height == 0 for height, _ in bars[:-2])  # (the hour before, if it just turned)
        assert page.script("return performance.getEntriesByType('resource').map(r => r.name)") == []
        png = page.screenshot(tmp_path / 'status-phone.png')
        assert png_size(png) == (390, 844) and len(png) > 10_000, tmp_path / 'status-phone.png'


def test_on_a_desktop_the_page_says_unwell_and_its_links_reach_the_json_and_the_metrics(site):
    server, tmp_path = site
    with browser.session(width=1280, height=900) as page:
        page.open(f'http://127.0.0.1:{server.port}/hisparc/status')
        assert 'Unwell' in page.text('#verdict')
        png = page.screenshot(tmp_path / 'status-desktop.png')
        assert png_size(png) == (1280, page.script('return window.innerHeight'))
        links = page.script("return [...document.querySelectorAll('footer a')].map(a => a.href)")
        assert f'http://127.0.0.1:{server.port}/hisparc/status?format=json' in links
        assert f'http://127.0.0.1:{server.port}/hisparc/metrics' in links
    # what they lead to: the monitoring app's answers, not the upload endpoint's 400
    assert json.loads(processes.get(server.port, '/hisparc/status?format=json'))['queue']['files'] == 0
    assert 'hisparc_writer_running 0.0' in processes.get(server.port, '/hisparc/metrics')
