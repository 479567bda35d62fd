"""hisparc-datastore check-config: every problem explained, exit 1 if any."""

import os

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
