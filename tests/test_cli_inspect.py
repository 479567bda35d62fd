"""hisparc-datastore inspect FILE: what a spool file holds and why it is where it is."""

import datetime
import random

from datastore import cli, factory
from tests.support.endpoint import Endpoint
from tests.support.writer import drain, folder_files, queue


def inspect(capsys, config, path):
    code = cli.main(['inspect', '-c', config, str(path)])
    out, err = capsys.readouterr()
    return code, out + err


def test_a_held_upload_says_its_station_types_dates_and_why_it_was_held(make_config, capsys):
    config = make_config()
    ep = Endpoint(config)
    gps_without_fix = factory.batch(datetime.datetime(2019, 4, 7, 0, 0, 1), random.Random(3))
    assert ep.upload(gps_without_fix) == '100'
    [held] = ep.files('suspicious')
    code, out = inspect(capsys, config, held)
    assert code == 0
    assert 'station    501, cluster Amsterdam' in out
    assert 'events     100: CIC 36, SIN 64' in out
    assert 'dated      2019-04-07 00:00:01 to 2019-04-07 00:01:40 (UTC)' in out
    held = 'dated 2019, before the minimum year 2020 (x100)'
    assert f'held       100 of 100 event(s) by the sound-event rule: {held}' in out
    assert 'failed' not in out


def test_a_file_in_failed_gives_the_reason_the_writers_ledger_records(make_config, capsys, tmp_path):
    config = make_config()
    data_dir = tmp_path / 'datastore'
    name = queue(data_dir, factory.batch(datetime.datetime(2024, 5, 17), random.Random(6)), cluster='a/b')
    drain(config)
    assert folder_files(data_dir, 'failed') == [name]
    code, out = inspect(capsys, config, data_dir / 'failed' / name)
    assert code == 0
    assert 'station    501, cluster a/b' in out and 'held       0 of 100 event(s)' in out
    failed = next(line for line in out.splitlines() if line.startswith('failed'))
    assert 'cluster name' in failed


def test_a_file_that_is_no_spool_file_is_said_so_with_exit_1(make_config, capsys, tmp_path):
    junk = tmp_path / 'junk'
    junk.write_bytes(b'not a pickle')
    code, out = inspect(capsys, make_config(), junk)
    assert code == 1 and f'file       {junk}' in out and 'unreadable ' in out
    code, out = inspect(capsys, make_config(), tmp_path / 'absent')
    assert code == 1 and 'is not a file' in out
