"""hisparc-datastore requeue: reviewed files from suspicious/ back to incoming/."""

import calendar
import datetime
import os
import random
import subprocess
import sys

import pytest
import tables

from datastore import cli, datadir, factory, spoolfile
from datastore import config as config_mod

GOOD = datetime.datetime(2024, 5, 1, 12, 0, 0)
COLD_GPS = datetime.datetime(2019, 4, 7, 0, 0, 0)  # a GPS receiver without a fix


def held(data_dir, name, station, events, held_on):
    """A file in suspicious/, held back at the UTC date ``held_on``."""
    path = datadir.DataDir(str(data_dir)).deliver(
        datadir.SUSPICIOUS, name, spoolfile.dumps(station, 'Amsterdam', events)
    )
    when = calendar.timegm(held_on.timetuple()) + 3600
    os.utime(path, (when, when))
    return path


def events(when, n=3):
    return factory.batch(when, random.Random(1), mix=(('CIC', n),))


def files(data_dir, folder):
    path = os.path.join(data_dir, folder)
    return sorted(os.listdir(path)) if os.path.isdir(path) else []


@pytest.fixture
def site(make_config):
    path = make_config()
    data_dir = config_mod.load(path).data_dir
    held(data_dir, 'a501', 501, events(GOOD), datetime.date(2026, 3, 1))
    held(data_dir, 'b502', 502, events(GOOD), datetime.date(2026, 3, 2))
    held(data_dir, 'c501', 501, events(GOOD) + events(COLD_GPS), datetime.date(2026, 3, 3))
    held(data_dir, 'd501', 501, events(COLD_GPS), datetime.date(2026, 3, 3))
    return path, data_dir


def requeue(capsys, path, *argv):
    code = cli.main(['requeue', '-c', path, *argv])
    return code, capsys.readouterr().out


def test_dry_run_says_what_would_move_and_moves_nothing(site, capsys):
    path, data_dir = site
    code, out = requeue(capsys, path, '--all', '--dry-run')
    assert code == 0
    assert 'would move a501' in out and 'would move b502' in out
    assert files(data_dir, datadir.SUSPICIOUS) == ['a501', 'b502', 'c501', 'd501']
    assert files(data_dir, datadir.INCOMING) == []


def test_station_filter_moves_only_that_stations_files_intact(site, capsys):
    path, data_dir = site
    before = open(os.path.join(data_dir, datadir.SUSPICIOUS, 'b502'), 'rb').read()
    code, _out = requeue(capsys, path, '--station', '502')
    assert code == 0
    assert files(data_dir, datadir.INCOMING) == ['b502']
    assert open(os.path.join(data_dir, datadir.INCOMING, 'b502'), 'rb').read() == before
    assert files(data_dir, datadir.SUSPICIOUS) == ['a501', 'c501', 'd501']
    log = open(os.path.join(os.path.dirname(path), 'hisparc.log-tools')).read()
    assert ' tools.requeue INFO requeued b502 (station 502, 3 event(s)) by ' in log


def test_date_filter_is_the_utc_day_the_file_was_held_back(site, capsys):
    path, data_dir = site
    requeue(capsys, path, '--since', '2026-03-02', '--until', '2026-03-02')
    assert files(data_dir, datadir.INCOMING) == ['b502']
    requeue(capsys, path, '--since', '2026-03-03')
    assert files(data_dir, datadir.INCOMING) == ['b502', 'c501']


def test_files_whose_events_would_all_be_held_again_stay_unless_forced(site, capsys):
    path, data_dir = site
    _code, out = requeue(capsys, path, '--station', '501')
    assert 'keep d501' in out and 'before the minimum year 2020' in out
    assert '3 of them will be held back again' in out  # c501: half good, half not
    assert files(data_dir, datadir.INCOMING) == ['a501', 'c501']
    requeue(capsys, path, '--station', '501', '--force')
    assert files(data_dir, datadir.INCOMING) == ['a501', 'c501', 'd501']


def test_requeue_without_a_filter_is_refused(site, capsys):
    path, data_dir = site
    assert cli.main(['requeue', '-c', path]) == 1
    assert '--all' in capsys.readouterr().err
    assert files(data_dir, datadir.INCOMING) == []


def test_an_unreadable_file_is_reported_and_left_alone(site, capsys):
    path, data_dir = site
    with open(os.path.join(data_dir, datadir.SUSPICIOUS, 'zzz'), 'wb') as f:
        f.write(b'garbage')
    code, out = requeue(capsys, path, '--all')
    assert code == 0 and 'skip zzz: cannot read it as a spool file' in out
    assert 'zzz' in files(data_dir, datadir.SUSPICIOUS)


def test_a_bad_date_is_explained(site, capsys):
    with pytest.raises(SystemExit):
        cli.main(['requeue', '-c', site[0], '--since', '3 March'])
    assert "'3 March' is not a date (YYYY-MM-DD)" in capsys.readouterr().err


@pytest.mark.slow
def test_after_lowering_minimum_year_requeued_events_are_stored_by_the_writer(make_config, capsys):
    path = make_config(minimum_year=2019)
    data_dir = config_mod.load(path).data_dir
    held(data_dir, 'cold', 501, events(COLD_GPS, n=5), datetime.date(2026, 3, 3))
    assert cli.main(['requeue', '-c', path, '--all']) == 0
    writer = subprocess.run(
        [sys.executable, '-m', 'writer', path, '--once'], capture_output=True, text=True, timeout=120
    )
    assert writer.returncode == 0, writer.stderr
    assert files(data_dir, datadir.INCOMING) == files(data_dir, datadir.SUSPICIOUS) == []
    with tables.open_file(os.path.join(data_dir, '2019', '4', '2019_4_7.h5')) as h5:
        assert h5.get_node('/hisparc/cluster_amsterdam/station_501/events').nrows == 5
