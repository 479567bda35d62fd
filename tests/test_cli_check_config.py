"""hisparc-datastore check-config: every problem explained, exit 1 if any."""

import os
import pathlib
import pwd
import shutil
import tempfile

import pytest

from datastore import cli


def check(capsys, path):
    code = cli.main(['check-config', '-c', str(path)])
    return code, capsys.readouterr().out


def test_a_good_config_passes(make_config, capsys):
    code, out = check(capsys, make_config())
    assert code == 0 and out.strip().endswith(': OK')


@pytest.mark.parametrize(
    'text, named',
    [
        ('[General]\nlog=/tmp/x\nstation_list=/tmp/s\n', 'required key [General] data_dir is missing'),
        (
            '[General]\nlog=/tmp/x\nstation_list=/tmp/s\ndata_dir=/tmp/d\n[Writer]\nsleep=soon\n',
            "sleep = 'soon' is not a valid float",
        ),
        (
            '[General]\nlog=/tmp/x\nstation_list=/tmp/s\ndata_dir=/tmp/d\nloglevel=loud\n',
            "loglevel = 'loud' is not one of",
        ),
        ('no section header\n', 'is not valid'),
    ],
)
def test_missing_keys_and_bad_values_are_named(tmp_path, capsys, text, named):
    path = tmp_path / 'config.ini'
    path.write_text(text)
    code, out = check(capsys, path)
    assert code == 1 and named in out


def test_a_missing_config_file_is_named(tmp_path, capsys):
    code, out = check(capsys, tmp_path / 'absent.ini')
    assert code == 1 and 'absent.ini' in out


def test_malformed_and_duplicate_station_lines_are_given_with_line_numbers(make_config, capsys):
    code, out = check(
        capsys,
        make_config(stations='501,Amsterdam,s3cret\n\nfive,Utrecht,pw\n502,Utrecht\n501,Leiden,other\n'),
    )
    assert code == 1
    assert 'line 3: station number' in out
    assert 'line 4: expected number,cluster,password; got 2 fields' in out
    assert 'line 5: station 501 listed again' in out


def test_a_missing_or_empty_station_list_is_a_problem(make_config, tmp_path, capsys):
    path = make_config(stations='')
    code, out = check(capsys, path)
    assert code == 1 and 'lists no stations' in out
    os.unlink(tmp_path / 'station_list.csv')
    code, out = check(capsys, path)
    assert code == 1 and 'cannot read it' in out


def test_a_data_dir_or_log_that_cannot_be_created_is_a_problem(make_config, tmp_path, capsys):
    (tmp_path / 'plainfile').write_text('')
    code, out = check(
        capsys,
        make_config(data_dir=tmp_path / 'plainfile' / 'data', log=tmp_path / 'plainfile' / 'hisparc.log'),
    )
    assert code == 1
    assert 'data_dir = ' in out and 'log = ' in out and 'is not a directory' in out


def test_several_problems_are_all_reported(make_config, tmp_path, capsys):
    (tmp_path / 'plainfile').write_text('')
    code, out = check(capsys, make_config(stations='x,y\n', data_dir=tmp_path / 'plainfile' / 'd'))
    assert code == 1 and out.count('problem:') == 3 and '3 problem(s)' in out
    assert 'line 1: expected' in out and 'lists no stations' in out and 'data_dir = ' in out


def test_an_unknown_key_is_a_warning_only(make_config, capsys):
    path = make_config()
    with open(path, 'a') as f:
        f.write('sleeep=3\n')
    code, out = check(capsys, path)
    assert code == 0 and 'warning: [Writer] sleeep is not a known key' in out


def test_every_problem_of_a_broken_configuration_is_reported_in_one_run(tmp_path, capsys):
    path = tmp_path / 'config.ini'
    path.write_text(
        '[General]\nlog=/proc/nope/hisparc.log\nloglevel=loud\nstation_list=/proc/nope/stations.csv\n'
        'data_dir=/proc/nope\nnot a setting\nloglevel=info\n[Writer]\nsleep=soon\nbatch_files=0\n'
    )
    code, out = check(capsys, path)
    assert code == 1 and '8 problem(s)' in out
    for named in (
        "loglevel = 'loud' is not one of",
        "line 6: 'not a setting' is not `key = value`",
        'line 7: [General] loglevel is set again',
        "sleep = 'soon' is not a valid float",
        "batch_files = '0' must be at least 1",
        'log = /proc/nope/hisparc.log: cannot create /proc/nope',
        'data_dir = /proc/nope: cannot create /proc/nope',
        'station_list = /proc/nope/stations.csv: cannot read it',
    ):
        assert named in out


def test_folders_are_really_tried_and_left_as_they_were(make_config, tmp_path, capsys):
    path = make_config(data_dir=tmp_path / 'new' / 'data', log=tmp_path / 'logs' / 'hisparc.log')
    code, out = check(capsys, path)
    assert code == 0, out
    assert not (tmp_path / 'new').exists() and not (tmp_path / 'logs').exists()


@pytest.fixture
def shared_site():
    """A configuration every user can read, with a data_dir only root may write.

    Not under pytest's folders: those are root's alone.
    """
    if os.geteuid() != 0:
        pytest.skip('--as-user takes another identity: needs root')
    site = pathlib.Path(tempfile.mkdtemp(prefix='check-config-'))
    site.chmod(0o755)
    (site / 'stations.csv').write_text('501,Amsterdam,s3cret\n')
    (site / 'data').mkdir()
    (site / 'log').mkdir(mode=0o777)
    (site / 'log').chmod(0o777)
    path = site / 'config.ini'
    path.write_text(
        f'[General]\nlog={site}/log/hisparc.log\nstation_list={site}/stations.csv\ndata_dir={site}/data\n'
    )
    yield path
    shutil.rmtree(site)


def test_as_user_checks_with_the_identity_of_that_user(shared_site, capsys):
    code, out = check(capsys, shared_site)
    assert code == 0, out  # root may write anything
    code = cli.main(['check-config', '-c', str(shared_site), '--as-user', 'nobody'])
    out = capsys.readouterr().out
    assert code == 1 and '(checked as nobody)' in out
    assert (
        f'data_dir = {shared_site.parent}/data: cannot write in {shared_site.parent}/data: Permission denied'
        in out
    )
    assert out.count('problem:') == 1
    os.chown(shared_site.parent / 'data', pwd.getpwnam('nobody').pw_uid, -1)
    assert cli.main(['check-config', '-c', str(shared_site), '--as-user', 'nobody']) == 0
    made_by_root = shared_site.parent / 'log' / 'hisparc.log-writer'
    made_by_root.write_text('')
    assert cli.main(['check-config', '-c', str(shared_site), '--as-user', 'nobody']) == 1
    assert f'cannot write {made_by_root}: Permission denied' in capsys.readouterr().out


def test_as_user_finds_a_config_file_that_user_cannot_read(make_config, capsys):
    if os.geteuid() != 0:
        pytest.skip('--as-user takes another identity: needs root')
    path = make_config()  # under pytest's own folder, which is root's alone
    code = cli.main(['check-config', '-c', path, '--as-user', 'nobody'])
    out = capsys.readouterr().out
    assert code == 1 and f'cannot read config file {path}' in out and 'Permission denied' in out
