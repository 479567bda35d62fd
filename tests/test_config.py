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
