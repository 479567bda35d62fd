import datetime
import logging
import os
import re
import time

import pytest

from datastore import config as config_mod

SEED = """\
[General]
log=/tmp/hisparc.log          # log file path; each process may add its own suffix
loglevel=debug                # debug | info | warning | error | critical
station_list=/tmp/station_list.csv
data_dir=/tmp/datastore       # the spool folders and the HDF5 tree live here

[Writer]
sleep=5                       # seconds the writer waits when the queue is empty
"""


def test_seed_format_loads_with_inline_comments_and_defaults(tmp_path):
    path = tmp_path / 'config.ini'
    path.write_text(SEED)
    config = config_mod.load(str(path))
    assert config.log == '/tmp/hisparc.log'
    assert config.loglevel == 'debug'
    assert config.station_list == '/tmp/station_list.csv'
    assert config.data_dir == '/tmp/datastore'
    assert config.sleep == 5.0
    assert config.minimum_year == 2020
    assert config.max_upload_bytes == 16 * 1024 * 1024
    assert config.resend_window_seconds == 7 * 24 * 3600


def test_missing_required_key_is_named(tmp_path):
    path = tmp_path / 'config.ini'
    path.write_text(SEED.replace('data_dir=/tmp/datastore', ''))
    with pytest.raises(config_mod.ConfigError, match=r'\[General\] data_dir'):
        config_mod.load(str(path))


def test_unreadable_file_is_named(tmp_path):
    missing = tmp_path / 'nope.ini'
    with pytest.raises(config_mod.ConfigError, match=r'nope\.ini'):
        config_mod.load(str(missing))


@pytest.mark.parametrize(
    'line, key',
    [
        ('minimum_year=soon', 'minimum_year'),
        ('loglevel=chatty', 'loglevel'),
        ('max_upload_bytes=-1', 'max_upload_bytes'),
        ('resend_database=mysql://db/hisparc', 'resend_database.*is not a PostgreSQL URL'),
    ],
)
def test_bad_values_are_named(tmp_path, line, key):
    path = tmp_path / 'config.ini'
    path.write_text(
        SEED.replace('[Writer]', line + '\n\n[Writer]').replace('loglevel=debug', '')
        if key != 'loglevel'
        else SEED.replace('loglevel=debug', line)
    )
    with pytest.raises(config_mod.ConfigError, match=key):
        config_mod.load(str(path))


def test_a_postgresql_url_names_the_batch_record(tmp_path):
    path = tmp_path / 'config.ini'
    path.write_text(
        SEED.replace('[Writer]', 'resend_database = postgresql://hisparc@db/datastore\n\n[Writer]')
    )
    assert config_mod.load(str(path)).resend_database == 'postgresql://hisparc@db/datastore'
    path.write_text(SEED)
    assert config_mod.load(str(path)).resend_database == ''  # SQLite in data_dir


# -- a running process follows the file ------------------------------------------------------


@pytest.fixture
def followed(tmp_path):
    """(path, Current) of a good seed file, looked at on every get()."""
    path = tmp_path / 'config.ini'
    path.write_text(SEED)
    current = config_mod.Current(str(path))
    current.watch.check_every = 0
    return path, current


def test_a_broken_file_saved_over_a_good_one_keeps_the_good_one_and_says_so_once(followed, caplog):
    path, current = followed
    good = current.get()
    path.write_text(SEED.replace('sleep=5', 'sleep=soon').replace('loglevel=debug', 'loglevel=loud'))
    with caplog.at_level('ERROR', logger='datastore.config'):
        assert current.get() is good
        assert current.get() is good
        os.utime(path, ns=(0, 0))  # saved again, as broken as before
        assert current.get() is good
    errors = [r.getMessage() for r in caplog.records if r.levelname == 'ERROR']
    assert len(errors) == 1
    assert 'not taken up (the last good configuration stays)' in errors[0]
    assert "sleep = 'soon'" in errors[0] and "loglevel = 'loud'" in errors[0]


def test_a_good_change_is_taken_up_and_a_save_without_a_change_is_not_news(followed, caplog):
    path, current = followed
    first = current.get()
    path.write_text(SEED)  # a save without a change
    assert current.get() is first
    path.write_text(SEED.replace('sleep=5', 'sleep=2'))
    with caplog.at_level('INFO', logger='datastore.config'):
        assert current.get().sleep == 2.0
    assert 'changed: taken up' in caplog.text


def test_a_file_that_goes_away_is_said_once_and_taken_up_again_when_back(followed, caplog):
    path, current = followed
    good = current.get()
    path.rename(path.with_suffix('.away'))
    with caplog.at_level('INFO', logger='datastore.config'):
        assert current.get() is good and current.get() is good
        path.with_suffix('.away').rename(path)
        assert current.get() is good
    assert caplog.text.count('cannot read it') == 1
    assert 'is usable again' in caplog.text


def test_it_is_looked_at_at_most_once_a_second(tmp_path):
    path = tmp_path / 'config.ini'
    path.write_text(SEED)
    current = config_mod.Current(str(path))
    path.write_text(SEED.replace('sleep=5', 'sleep=2'))
    assert current.get().sleep == 5.0  # not yet
    current.watch.check_every = 0
    assert current.get().sleep == 2.0


def test_a_cold_start_on_a_broken_file_refuses_naming_every_problem(tmp_path):
    path = tmp_path / 'config.ini'
    path.write_text(SEED.replace('sleep=5', 'sleep=soon').replace('data_dir=/tmp/datastore', ''))
    with pytest.raises(config_mod.ConfigError) as refused:
        config_mod.Current(str(path))
    assert 'data_dir is missing' in str(refused.value) and "sleep = 'soon'" in str(refused.value)


def test_every_problem_of_the_file_is_listed_in_one_read(tmp_path):
    path = tmp_path / 'config.ini'
    path.write_text(
        SEED.replace('loglevel=debug', 'loglevel=loud\nnot a setting\nlog=/elsewhere.log').replace(
            'sleep=5', 'sleep=soon\nbatch_files=0\nsleep=6'
        )
    )
    values, problems, _ = config_mod.parse(str(path))
    text = '\n'.join(problems)
    assert len(problems) == 6, text
    for named in (
        "'not a setting' is not `key = value`",
        '[General] log is set again',
        "loglevel = 'loud'",
        '[Writer] sleep is set again',
        "batch_files = '0'",
        "sleep = 'soon'",
    ):
        assert named in text
    assert values['data_dir'] == '/tmp/datastore' and values['log'] == '/tmp/hisparc.log'


@pytest.fixture
def amsterdam_time(monkeypatch):
    """The process's local time zone two hours east of UTC, as a server's in summer."""
    monkeypatch.setenv('TZ', 'CEST-2')
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_log_lines_carry_their_time_in_utc_with_the_zone(make_config, tmp_path, amsterdam_time):
    config = config_mod.load(make_config(log=tmp_path / 'datastore.log'))
    config_mod.setup_logging(config, config_mod.WRITER_LOG)
    try:
        before = time.time()
        logging.getLogger('writer').info('stored')
        after = time.time()
    finally:
        for handler in [h for h in logging.getLogger().handlers if h.get_name() == config_mod.LOG_HANDLER]:
            logging.getLogger().removeHandler(handler)
            handler.close()
    line = (tmp_path / 'datastore.log-writer').read_text()
    stamp, rest = line.split(' ', 1)
    assert rest == f'{os.getpid()} writer INFO stored\n'
    assert re.fullmatch(r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z', stamp), stamp
    logged = datetime.datetime.strptime(stamp, '%Y-%m-%dT%H:%M:%S.%fZ').replace(tzinfo=datetime.UTC)
    assert before - 0.001 <= logged.timestamp() <= after  # UTC, not the local time two hours on
