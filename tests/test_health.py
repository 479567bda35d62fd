"""Ready and health, for probes and people: /hisparc/ready, /hisparc/health and `status`'s exit code.

Each failure is made as it happens (a writer that died, a file in failed/, a
queue left behind, a long pause, a disk remounted read-only or full) in an
otherwise well datastore, and the three verdicts are read.
"""

import json
import os
import time

import pytest
import webtest

from datastore import cli, datadir, ledger
from datastore import config as config_mod
from tests.support.disk import Filler, read_only, tmpfs
from wsgi import status_app


def dead_pid():
    with open('/proc/sys/kernel/pid_max') as f:
        return int(f.read()) + 1


class Site:
    """A datastore that is well: a station list, a running writer (this process), nothing waiting."""

    def __init__(self, folder):
        folder.joinpath('stations.csv').write_text('501,Amsterdam,s3cret\n')
        self.data_dir = str(folder / 'datastore')
        values = {
            'log': folder / 'hisparc.log',
            'station_list': folder / 'stations.csv',
            'data_dir': self.data_dir,
        }
        self.configfile = folder / 'config.ini'
        self.configfile.write_text(
            '[General]\n' + ''.join(f'{k}={v}\n' for k, v in values.items()) + '\n[Writer]\nsleep=1\n'
        )
        self.config = config_mod.load(str(self.configfile))
        datadir.DataDir(self.data_dir).ensure()
        self.writer_reports()
        self.app = webtest.TestApp(status_app.app(str(self.configfile)))  # loads the configuration

    def writer_reports(self, **fields):
        report = {'pid': os.getpid(), 'state': 'idle', 'updated': time.time(), 'stations': {}, **fields}
        with open(os.path.join(self.data_dir, datadir.WRITER_STATUS), 'w') as f:
            json.dump(report, f)

    def put(self, folder, age=0.0):
        path = os.path.join(self.data_dir, folder, f'501_{time.time_ns()}')
        with open(path, 'wb') as f:
            f.write(b'x')
        os.utime(path, (time.time() - age,) * 2)

    def verdicts(self, capsys):
        """(ready's HTTP status, health's HTTP status and reasons, status's exit code and output)."""
        ready = self.app.get('/hisparc/ready', expect_errors=True)
        health = self.app.get('/hisparc/health', expect_errors=True)
        assert ready.content_type == health.content_type == 'application/json'
        code = cli.main(['status', '-c', str(self.configfile)])
        return ready.status_int, health.status_int, health.json['reasons'], code, capsys.readouterr().out


@pytest.fixture
def site(tmp_path):
    return Site(tmp_path)


def test_a_well_datastore_is_ready_healthy_and_status_exits_0(site, capsys):
    ready, health, reasons, code, out = site.verdicts(capsys)
    assert (ready, health, reasons, code) == (200, 200, [], 0)
    assert site.app.get('/hisparc/health').json == {'healthy': True, 'reasons': []}
    assert site.app.get('/hisparc/ready').json == {'ready': True, 'reasons': []}
    assert out.startswith('health     well\n')


def writer_died(site):
    site.writer_reports(pid=dead_pid())


def writer_stopped_reporting(site):
    site.writer_reports(updated=time.time() - 600)


def writer_waits(site):
    site.writer_reports(state='waiting', reason='no space left on the day files disk')


def file_failed(site):
    site.put(datadir.FAILED)


def queue_left_behind(site):
    site.put(datadir.INCOMING, age=site.config.max_queue_age + 60)


def paused_too_long(site):
    datadir.DataDir(site.data_dir).pause()
    then = time.time() - site.config.max_pause - 60
    os.utime(os.path.join(site.data_dir, datadir.WRITER_PAUSE), (then, then))


def day_file_damaged(site):
    book = ledger.Ledger(datadir.DataDir(site.data_dir))
    book.mark_damaged('2024-05-17', 'its rows do not match the ledger', hard=True)
    book.close()


def audit_found_a_loss(site):
    book = ledger.Ledger(datadir.DataDir(site.data_dir))
    book.record_audit(time.time() - 86400, 10, [{'station': 501, 'checksum': 'ab'}], deep=False)
    book.close()


def config_saved_broken(site):
    site.configfile.write_text(site.configfile.read_text() + 'batch_files = none\n')  # in [Writer]


@pytest.mark.parametrize(
    'fault, reason',
    [
        (config_saved_broken, 'config.ini on disk not taken up: '),
        (writer_died, 'the writer is not running'),
        (writer_stopped_reporting, 'the writer is not running'),
        (writer_waits, 'the writer waits: no space left on the day files disk'),
        (file_failed, '1 spool file(s) in failed/'),
        (queue_left_behind, 'the oldest queued file waits 66'),
        (paused_too_long, 'the writer is paused for 1446'),
        (day_file_damaged, 'day file 2024-05-17 damaged: its rows do not match the ledger'),
        (audit_found_a_loss, 'the last audit could not account for 1 batch(es)'),
    ],
)
def test_a_fault_beyond_this_host_is_unhealthy_but_ready(site, capsys, fault, reason):
    fault(site)
    ready, health, reasons, code, out = site.verdicts(capsys)
    assert (ready, health, code) == (200, 503, 1)
    assert len(reasons) == 1 and reasons[0].startswith(reason)
    assert 'health     UNWELL' in out and f'- {reasons[0]}' in out


def test_a_short_pause_and_a_young_queue_are_well(site, capsys):
    datadir.DataDir(site.data_dir).pause()
    site.put(datadir.INCOMING, age=site.config.max_queue_age - 60)
    assert site.verdicts(capsys)[:4] == (200, 200, [], 0)


def test_every_reason_is_listed_not_only_the_first(site, capsys):
    writer_died(site)
    file_failed(site)
    queue_left_behind(site)
    assert len(site.verdicts(capsys)[2]) == 3


def test_an_unreadable_station_list_is_not_ready(site, capsys):
    os.unlink(site.config.station_list)
    ready, health, reasons, code, _ = site.verdicts(capsys)
    assert (ready, health, code) == (503, 503, 1)
    assert 'station list' in reasons[0] and 'unreadable' in reasons[0]


def test_a_spool_disk_remounted_read_only_is_not_ready(tmp_path, capsys):
    with tmpfs(tmp_path / 'disk', size='8m') as disk:
        site = Site(disk)
        read_only(disk)
        ready, health, reasons, code, _ = site.verdicts(capsys)
        assert (ready, health, code) == (503, 503, 1)
        assert reasons[0].startswith('spool not writable') and 'Read-only file system' in reasons[0]


def test_a_full_spool_disk_is_not_ready_and_ready_again_once_space_is_freed(tmp_path, capsys):
    with tmpfs(tmp_path / 'disk', size='8m') as disk:
        site = Site(disk)
        filler = Filler(disk)
        filler.fill()
        ready, _, reasons, code, _ = site.verdicts(capsys)
        assert (ready, code) == (503, 1)
        assert 'No space left on device' in reasons[0]
        os.unlink(filler.path)
        assert site.verdicts(capsys)[:4] == (200, 200, [], 0)
        assert os.listdir(os.path.join(site.data_dir, datadir.TMP)) == []  # the probe left nothing


def test_status_does_not_create_the_spool_folders_of_another_user(tmp_path, capsys):
    site = Site(tmp_path)
    os.rmdir(os.path.join(site.data_dir, datadir.TMP))
    assert cli.main(['status', '-c', str(site.configfile)]) == 0
    assert not os.path.exists(os.path.join(site.data_dir, datadir.TMP))
