"""Nothing acknowledged is destroyed, and the datastore can prove it: ledger, archive, audit, rebuild.

Real uploads through the endpoint, real day files, real damage; the writer
runs in this process (the fault tests with real processes, a tmpfs and
SIGKILL are in test_writer_faults.py).
"""

import base64
import datetime
import hashlib
import logging
import os
import random
import shutil
import threading

import pytest
import tables

from datastore import config as config_mod
from datastore import datadir, factory, ledger, received, spoolfile, status
from datastore.cli import main as cli_main
from tests.support.backlog import wait_for, writer_config
from tests.support.writer import (
    contents,
    day_path,
    drain,
    expected_row,
    fail_next_commit,
    folder_files,
    queue,
    station_path,
    upload,
)
from writer import audit, dayfile, journal, rebuild, storepass, writer_app

WHEN = datetime.datetime(2024, 5, 17, 12, 0, 0)
DAY = '2024-05-17'


@pytest.fixture
def site(make_config):
    """(config path, Config, DataDir) of a fresh installation."""
    path = make_config()
    config = config_mod.load(path)
    return path, config, datadir.DataDir(config.data_dir)


def store_batches(path, count=3, when=WHEN, station=501, seed=1):
    """Upload ``count`` realistic batches through the endpoint, then drain; return their events."""
    rng = random.Random(seed)
    sent = []
    for i in range(count):
        events = factory.batch(when + datetime.timedelta(minutes=i), rng)
        upload(path, events, station)
        sent.append(events)
    drain(path)
    return sent


def digest(path):
    return hashlib.sha256(open(path, 'rb').read()).hexdigest()


def run_audit(capsys, path, *args):
    code = cli_main(['audit', '-c', path, *args])
    return code, capsys.readouterr().out


# -- the ledger and the archive ------------------------------------------------


def test_the_ledger_records_every_node_and_the_rows_each_spool_file_became(site):
    path, config, data_dir = site
    store_batches(path, 3)
    book = ledger.Ledger(data_dir)
    day_file = day_path(config.data_dir, WHEN)
    with tables.open_file(day_file) as h5:
        actual = {
            n._v_pathname: -1 if isinstance(n, tables.Group) else n.nrows
            for n in h5.walk_nodes('/')
            if n is not h5.root
        }
        assert book.nodes(DAY) == actual
        entries = book.entries_of_day(DAY)
        assert len(entries) == 3
        for entry in entries:
            assert entry.events == 100 and entry.rows == 100 and entry.held == 0
            for day, node, first, count in entry.segments:
                assert day == DAY and first + count <= h5.get_node(node).nrows
        events = sorted(
            (first, count)
            for e in entries
            for _, node, first, count in e.segments
            if node.endswith('/events')
        )
        assert [first for first, _ in events] == [0, events[0][1], events[0][1] + events[1][1]]


def test_stored_spool_files_are_archived_byte_for_byte(site):
    path, config, data_dir = site
    rng = random.Random(2)
    names = [queue(config.data_dir, factory.batch(WHEN, rng)) for _ in range(2)]
    payloads = {name: open(os.path.join(config.data_dir, 'incoming', name), 'rb').read() for name in names}
    drain(path)
    book = ledger.Ledger(data_dir)
    for name in names:
        archived = book.entry(name).archived
        assert archived.startswith(data_dir.archive_root)
        assert open(archived, 'rb').read() == payloads[name]
    assert folder_files(config.data_dir, 'partial') == folder_files(config.data_dir, 'incoming') == []


def test_archive_days_0_deletes_stored_spool_files(make_config):
    path = make_config()
    with open(path, 'a') as f:
        f.write('archive_days = 0\n')
    config = config_mod.load(path)
    name = queue(config.data_dir, factory.batch(WHEN, random.Random(3)))
    drain(path)
    book = ledger.Ledger(datadir.DataDir(config.data_dir))
    assert book.entry(name).archived is None and book.entry(name).rows == 100
    assert not os.path.exists(os.path.join(config.data_dir, 'archive'))


def test_the_archive_keeps_a_spool_file_until_archive_days_after_its_last_day_file_write(site):
    path, config, data_dir = site
    old = queue(config.data_dir, factory.batch(WHEN, random.Random(4)))
    other_day = queue(config.data_dir, factory.batch(WHEN + datetime.timedelta(days=1), random.Random(5)))
    drain(path)
    book = ledger.Ledger(data_dir)
    with book.transaction() as db:  # as if both were stored, and their days last written, 10 days ago
        db.execute('UPDATE spools SET stored = stored - 10 * 86400')
        db.execute('UPDATE days SET last_write = last_write - 10 * 86400')
    paths = {name: book.entry(name).archived for name in (old, other_day)}
    queue(config.data_dir, factory.batch(WHEN + datetime.timedelta(hours=1), random.Random(6)))
    drain(path)  # the first day file is written again today: its spool files' clock restarts
    app = writer_app.Writer(config)
    app.housekeeping()
    assert os.path.exists(paths[old])
    assert not os.path.exists(paths[other_day]) and book.entry(other_day).archived is None
    assert book.entry(other_day).rows == 100  # the ledger still knows where its rows are


def test_the_archive_ages_out_and_the_light_audit_runs_while_files_are_still_queued(make_config, monkeypatch):
    path = writer_config(make_config, batch_files=1)
    config = config_mod.load(path)
    data_dir = datadir.DataDir(config.data_dir)
    old = queue(config.data_dir, factory.batch(WHEN + datetime.timedelta(days=1), random.Random(25)))
    drain(path)
    book = ledger.Ledger(data_dir)
    with book.transaction() as db:  # as if stored, and its day file last written, 10 days ago
        db.execute('UPDATE spools SET stored = stored - 10 * 86400')
        db.execute('UPDATE days SET last_write = last_write - 10 * 86400')
    archived = book.entry(old).archived
    rng = random.Random(26)
    for hours in range(4):  # four passes of one file each: a queue that empties only at the end
        queue(config.data_dir, factory.batch(WHEN + datetime.timedelta(hours=hours), rng))
    seen = []
    real = audit.light

    def light(*args, **kwargs):
        seen.append((len(data_dir.queued(datadir.INCOMING)), os.path.exists(archived)))
        return real(*args, **kwargs)

    monkeypatch.setattr(audit, 'light', light)
    app = writer_app.Writer(config)
    thread = threading.Thread(target=app.run)
    thread.start()
    try:
        assert wait_for(lambda: seen and not folder_files(config.data_dir, 'incoming'))
    finally:
        app.request_stop()
        thread.join(timeout=30)
    assert seen[0] == (3, False)  # after the first pass: expired archive gone, three files to go
    assert book.last_audit() is not None


# -- names that cannot break the tree -------------------------------------------------


@pytest.mark.parametrize('cluster', ['..', '.', 'a/b', 'x' * 70_000, '', 'tab\there', 'nul\0', '\udc80'])
def test_a_spool_file_whose_cluster_cannot_be_a_name_goes_to_failed(site, cluster, caplog):
    path, config, data_dir = site
    bad = queue(config.data_dir, factory.batch(WHEN, random.Random(6)), cluster=cluster)
    good = queue(config.data_dir, factory.batch(WHEN, random.Random(7)), station_id=502, cluster='Utrecht')
    with caplog.at_level(logging.ERROR, logger='writer'):
        app = writer_app.Writer(config)
        app.run(once=True)
    assert folder_files(config.data_dir, 'failed') == [bad]
    assert 'cluster name' in ledger.Ledger(data_dir).failure(bad)
    assert any(bad in r.getMessage() and 'failed/' in r.getMessage() for r in caplog.records)
    assert ledger.Ledger(data_dir).entry(good).rows == 100
    with tables.open_file(day_path(config.data_dir, WHEN)) as h5:
        assert [g._v_name for g in h5.root.hisparc] == ['cluster_utrecht']
    assert app.leftovers() == ['1 spool file(s) went to failed/ (see the log)']


@pytest.mark.parametrize('line', ['501,..,pw', '501,.,pw', '501,a/b,pw', '²,Super,pw', '9' * 5000 + ',A,pw'])
def test_a_station_line_whose_number_or_cluster_cannot_be_a_name_is_skipped(make_config, capsys, line):
    path = make_config(stations=f'{line}\n502,Utrecht,pa ss\n')
    code = cli_main(['check-config', '-c', path])
    out = capsys.readouterr().out
    assert code == 1 and 'line 1:' in out
    upload(path, factory.batch(WHEN, random.Random(8)), station=502)  # the other station is fine


# -- damaged day files: kept, marked, their events wait ----------------------------------------


def damage(path, how):
    if how == 'truncated':
        with open(path, 'r+b') as f:
            f.truncate(os.path.getsize(path) // 2)
    elif how == 'garbage':
        with open(path, 'wb') as f:
            f.write(os.urandom(4096))
    elif how == 'metadata':
        with open(path, 'r+b') as f:
            f.seek(512)
            f.write(os.urandom(512))
    elif how == 'deleted':
        os.unlink(path)
    elif how == 'chunk index':  # every chunk B-tree node's keys overwritten
        data = bytearray(open(path, 'rb').read())
        at = data.find(b'TREE\x01')
        while at >= 0:
            data[at + 24 : at + 80] = b'\x7f' * 56
            at = data.find(b'TREE\x01', at + 1)
        with open(path, 'wb') as f:
            f.write(data)


@pytest.mark.parametrize('how', ['truncated', 'garbage', 'metadata', 'deleted'])
def test_a_damaged_day_file_is_kept_marked_and_its_events_wait_while_other_days_flow(site, how):
    path, config, data_dir = site
    store_batches(path, 2)
    day_file = day_path(config.data_dir, WHEN)
    damage(day_file, how)
    before = digest(day_file) if os.path.exists(day_file) else None
    rng = random.Random(9)
    waiting = queue(config.data_dir, factory.batch(WHEN + datetime.timedelta(hours=2), rng))
    other = WHEN + datetime.timedelta(days=1)
    queue(config.data_dir, factory.batch(other, rng))
    app = writer_app.Writer(config)
    app.run(once=True)
    assert (digest(day_file) if os.path.exists(day_file) else None) == before  # not replaced
    assert folder_files(config.data_dir, 'incoming') == [waiting]
    assert any(f'{waiting} waits in incoming/: day file {DAY} damaged' in line for line in app.leftovers())
    with tables.open_file(day_path(config.data_dir, other)) as h5:
        assert h5.get_node(station_path()).events.nrows == 36
    figures = status.gather(config)
    assert list(figures['damaged_days']) == [DAY]


def test_a_day_file_that_grew_outside_the_writer_is_adopted(site, caplog):
    path, config, data_dir = site
    store_batches(path, 1)
    day_file = day_path(config.data_dir, WHEN)
    with tables.open_file(day_file, 'a') as h5:  # the previously deployed writer, switched back to
        h5.get_node(station_path()).singles.append(h5.get_node(station_path()).singles[:2])
    queue(config.data_dir, factory.batch(WHEN + datetime.timedelta(hours=1), random.Random(10)))
    with caplog.at_level(logging.WARNING, logger='writer'):
        drain(path)
    assert 'grew outside this writer' in caplog.text
    assert ledger.Ledger(data_dir).nodes(DAY)[f'{station_path()}/singles'] == 64 + 2 + 64


# -- a pass that fails on its data: found, set aside, the rest flows -----------------------------


def test_a_spool_file_that_makes_its_pass_fail_goes_to_failed_and_the_others_are_stored(site, monkeypatch):
    path, config, data_dir = site
    rng = random.Random(11)
    names = [
        queue(config.data_dir, factory.batch(WHEN + datetime.timedelta(minutes=i), rng)) for i in range(7)
    ]
    jammer = queue(config.data_dir, factory.batch(WHEN, rng), station_id=502, cluster='Utrecht')
    names += [
        queue(config.data_dir, factory.batch(WHEN + datetime.timedelta(hours=1 + i), rng)) for i in range(3)
    ]
    real = storepass.StationRows.append_to

    def append_to(self, day_file, cluster, station_id):  # a fault injected into that file's data
        if station_id == 502:
            raise ValueError('rows of station 502 break the append')
        return real(self, day_file, cluster, station_id)

    monkeypatch.setattr(storepass.StationRows, 'append_to', append_to)
    app = writer_app.Writer(config)
    app.run(once=True)
    assert folder_files(config.data_dir, 'failed') == [jammer]
    assert 'rows of station 502 break the append' in ledger.Ledger(data_dir).failure(jammer)
    assert folder_files(config.data_dir, 'incoming') == folder_files(config.data_dir, 'partial') == []
    book = ledger.Ledger(data_dir)
    assert all(book.entry(name).rows == 100 for name in names)
    with tables.open_file(day_path(config.data_dir, WHEN)) as h5:
        assert h5.get_node(station_path()).events.nrows == 36 * 10
        assert '/hisparc/cluster_utrecht' not in h5


# -- audit -------------------------------------------------------------------------------


def test_audit_accounts_for_every_batch_of_a_healthy_store(site, capsys):
    path, config, data_dir = site
    store_batches(path, 3)
    old = [factory.event('CIC', datetime.datetime(2019, 4, 7), random.Random(1))]
    upload(path, old)  # held in suspicious/ by the endpoint
    upload(path, factory.batch(WHEN + datetime.timedelta(hours=3), random.Random(12)))  # still queued
    code, out = run_audit(capsys, path)
    assert code == 0, out
    assert '5 batch(es) acknowledged' in out and '0 batch(es) unaccounted for' in out
    assert '1 held' in out and '1 queued' in out and '3 stored' in out
    code, out = run_audit(capsys, path, '--deep')
    assert code == 0, out
    assert ledger.Ledger(data_dir).last_audit()['unaccounted'] == 0


@pytest.mark.parametrize('how', ['deleted', 'truncated', 'garbage', 'metadata'])
def test_audit_names_the_batches_of_a_deleted_or_damaged_day_file(site, capsys, how):
    path, config, data_dir = site
    sent = store_batches(path, 2)
    store_batches(path, 1, when=WHEN + datetime.timedelta(days=1), seed=2)
    damage(day_path(config.data_dir, WHEN), how)
    code, out = run_audit(capsys, path)
    assert code == 1
    assert out.count('unaccounted: station 501 batch') == len(sent)
    assert f'day file {DAY} ' + ('is missing' if how == 'deleted' else 'cannot be read') in out, out
    assert '2 batch(es) unaccounted for' in out
    assert status.gather(config)['audit']['unaccounted'] == 2


def test_audit_accounts_for_held_files_wherever_requeue_takes_them(site, capsys):
    path, config, data_dir = site
    upload(path, [factory.event('CIC', datetime.datetime(2019, 4, 7), random.Random(1))])  # held
    (held,) = folder_files(config.data_dir, 'suspicious')
    for name, where in ((held, '1 queued'), (f'{held}-unfit', '1 stored')):
        assert cli_main(['requeue', '-c', path, '--all', '--force']) == 0  # the same name, to incoming/
        capsys.readouterr()
        assert folder_files(config.data_dir, 'incoming') == [name]
        code, out = run_audit(capsys, path)
        assert code == 0 and where in out, out
        drain(path)  # the writer holds it back again, as NAME-unfit in suspicious/
        assert folder_files(config.data_dir, 'suspicious') == [f'{name}-unfit']
        code, out = run_audit(capsys, path, '--deep')
        assert code == 0 and '1 stored' in out, out
    os.unlink(os.path.join(config.data_dir, 'suspicious', f'{held}-unfit-unfit'))
    code, out = run_audit(capsys, path)
    assert code == 1 and 'its 1 events held by the writer are not in suspicious/' in out, out


def test_a_deep_audit_finds_a_row_that_differs_from_its_archived_copy(site, capsys):
    path, config, data_dir = site
    store_batches(path, 1)
    with tables.open_file(day_path(config.data_dir, WHEN), 'a') as h5:
        events = h5.get_node(station_path()).events
        row = events.read(5, 6)
        row['pulseheights'][0, 0] += 1
        events.modify_rows(5, 6, rows=row)
    assert run_audit(capsys, path)[0] == 0  # the light check sees every row present
    code, out = run_audit(capsys, path, '--deep')
    assert code == 1 and 'differ from its archived copy' in out


# -- rebuild -------------------------------------------------------------------------------


def test_rebuilding_a_healthy_day_file_gives_the_same_rows_and_keeps_the_old_one(site, capsys):
    path, config, data_dir = site
    store_batches(path, 3)
    rng = random.Random(13)
    upload(path, factory.every_type(WHEN + datetime.timedelta(hours=1), rng), station=502)
    drain(path)
    day_file = day_path(config.data_dir, WHEN)
    before = contents(day_file)
    assert cli_main(['rebuild', '-c', path, DAY]) == 0
    assert contents(day_file) == before  # rows, order, event ids and blob indexes
    log = open(os.path.join(os.path.dirname(path), 'hisparc.log-tools')).read()
    assert f' tools.rebuild INFO rebuild {DAY} asked for by ' in log and f'{DAY} rebuilt' in log
    kept = [name for name in os.listdir(os.path.dirname(day_file)) if 'before-rebuild' in name]
    assert len(kept) == 1 and not kept[0].endswith('.h5')
    assert contents(os.path.join(os.path.dirname(day_file), kept[0])) == before
    assert run_audit(capsys, path, '--deep')[0] == 0


@pytest.mark.parametrize('how', ['truncated', 'garbage', 'metadata', 'deleted'])
def test_a_damaged_day_file_is_rebuilt_from_the_archive_and_its_waiting_events_flow(site, capsys, how):
    path, config, data_dir = site
    store_batches(path, 3)
    day_file = day_path(config.data_dir, WHEN)
    before = contents(day_file)
    damage(day_file, how)
    waiting = queue(config.data_dir, factory.batch(WHEN + datetime.timedelta(hours=2), random.Random(14)))
    drain(path)
    assert folder_files(config.data_dir, 'incoming') == [waiting]
    assert cli_main(['rebuild', '-c', path, DAY]) == 0
    assert contents(day_file) == before
    assert ledger.Ledger(data_dir).damaged() == {}
    drain(path)
    assert folder_files(config.data_dir, 'incoming') == []
    assert run_audit(capsys, path, '--deep')[0] == 0


def test_rebuild_refuses_what_it_cannot_recover_and_accept_loss_says_what_was_lost(site, capsys, caplog):
    path, config, data_dir = site
    sent = store_batches(path, 3)
    day_file = day_path(config.data_dir, WHEN)
    book = ledger.Ledger(data_dir)
    lost_entry = book.entries_of_day(DAY)[1]
    os.unlink(lost_entry.archived)  # the archive no longer has the middle batch
    damage(day_file, 'garbage')
    before = digest(day_file)
    assert cli_main(['rebuild', '-c', path, DAY]) == 1
    err = capsys.readouterr().err
    assert 'in neither the archive nor the readable file' in err and '/events rows 36-72' in err
    assert digest(day_file) == before
    with caplog.at_level(logging.ERROR):
        assert cli_main(['rebuild', '-c', path, DAY, '--accept-loss']) == 0
    lost = (
        f'{station_path()}/blobs rows 144-288; {station_path()}/events rows 36-72; '
        f'{station_path()}/singles rows 64-128'
    )
    assert f'rebuild of {DAY} loses 244 rows: {lost}' in caplog.text
    with tables.open_file(day_file) as h5:
        station = h5.get_node(station_path())
        assert station.singles.nrows == 128
        assert station.events.nrows == 72 and list(station.events.col('event_id')) == list(range(1, 73))
        assert station.blobs.nrows == 4 * 72
        traces = {
            int(row['ext_timestamp']): [bytes(station.blobs[i]) for i in row['traces']]
            for row in station.events.read()
        }
    kept = [e for e in sent[0] + sent[2] if e['header']['eventtype_uploadcode'] == 'CIC']
    assert sorted(traces) == sorted(expected_row(e)['ext_timestamp'] for e in kept)
    for event in kept:
        source = {d['data_uploadcode']: d['data'] for d in event['datalist']}
        assert traces[expected_row(event)['ext_timestamp']] == [
            base64.b64decode(source[f'TR{i}']) for i in range(1, 5)
        ]


def test_the_writer_keeps_off_a_day_that_is_being_rebuilt(site):
    path, config, data_dir = site
    store_batches(path, 1)
    waiting = queue(config.data_dir, factory.batch(WHEN + datetime.timedelta(hours=1), random.Random(15)))
    with data_dir.day_lock(DAY, wait=True):  # what rebuild holds
        app = writer_app.Writer(config)
        app.run(once=True)
        assert folder_files(config.data_dir, 'incoming') == [waiting]
        assert any('being rebuilt' in line for line in app.leftovers())
    drain(path)
    assert folder_files(config.data_dir, 'incoming') == []


def test_a_day_file_only_the_previous_writer_wrote_is_rebuilt_from_its_readable_rows(site, capsys):
    path, config, data_dir = site
    store_batches(path, 2)
    upload(path, factory.every_type(WHEN + datetime.timedelta(hours=1), random.Random(23)), station=502)
    drain(path)
    day_file = day_path(config.data_dir, WHEN)
    before = contents(day_file)
    for name in os.listdir(config.data_dir):  # no ledger, no archive: as the previous writer left it
        if name.startswith(datadir.LEDGER):
            os.unlink(os.path.join(config.data_dir, name))
    shutil.rmtree(data_dir.archive_root)
    assert ledger.Ledger(data_dir).nodes(DAY) == {}
    assert cli_main(['rebuild', '-c', path, DAY]) == 0
    assert '0 rows from the archive' in capsys.readouterr().out
    assert contents(day_file) == before  # rows, order, event ids and blob indexes
    with tables.open_file(day_file) as h5:
        assert ledger.Ledger(data_dir).nodes(DAY) == {
            n._v_pathname: -1 if isinstance(n, tables.Group) else n.nrows
            for n in h5.walk_nodes('/')
            if n is not h5.root
        }
    queue(config.data_dir, factory.batch(WHEN + datetime.timedelta(hours=2), random.Random(24)))
    drain(path)  # and the writer appends to it
    assert len(contents(day_file)[f'{station_path()}/events']) > len(before[f'{station_path()}/events'])


def test_rebuild_keeps_the_rows_and_stations_the_ledger_does_not_know(site, caplog):
    path, config, data_dir = site
    store_batches(path, 2)
    day_file = day_path(config.data_dir, WHEN)
    with tables.open_file(day_file, 'a') as h5:  # the previously deployed writer, switched back to
        station = h5.get_node(station_path())
        station.singles.append(station.singles[:2])
        h5.copy_node(station, station._v_parent, 'station_599', recursive=True)
    before = contents(day_file)
    known = ledger.Ledger(data_dir).nodes(DAY)
    assert known[f'{station_path()}/singles'] == 128 and not any('station_599' in node for node in known)
    assert cli_main(['rebuild', '-c', path, DAY]) == 0
    assert contents(day_file) == before
    with tables.open_file(day_file, 'a') as h5:  # a table the layout has no place for
        h5.create_table(station_path(), 'notes', {'text': tables.StringCol(8)}).append([(b'x',)])
    rebuilt = digest(day_file)
    assert cli_main(['rebuild', '-c', path, DAY]) == 1
    assert digest(day_file) == rebuilt
    with caplog.at_level(logging.ERROR):
        assert cli_main(['rebuild', '-c', path, DAY, '--accept-loss']) == 0
    assert f'{station_path()}/notes: Table of 1 rows, not of the layout' in caplog.text
    assert contents(day_file) == before


def test_rebuild_refuses_while_an_unfinished_pass_names_the_day(site, capsys):
    path, config, data_dir = site
    store_batches(path, 1)
    day_file = day_path(config.data_dir, WHEN)
    journal.write(
        data_dir,
        {
            'pass': 98,
            'pid': 1,
            'stored': DAY,
            'spool': [],
            'days': {DAY: {'new': False, 'nodes': ledger.Ledger(data_dir).nodes(DAY)}},
        },
    )  # what a writer killed inside a pass leaves
    before = digest(day_file)
    assert cli_main(['rebuild', '-c', path, DAY]) == 1
    assert f'pass 98 of the writer wrote {DAY} and is unfinished' in capsys.readouterr().err
    assert digest(day_file) == before and not os.path.exists(day_file + '.rebuild')
    drain(path)  # the writer undoes the pass
    assert journal.read(data_dir) is None
    assert cli_main(['rebuild', '-c', path, DAY]) == 0


def test_rebuild_of_a_day_the_ledger_does_not_know_says_so(site, capsys):
    path, _, _ = site
    assert cli_main(['rebuild', '-c', path, '2024-01-01']) == 1
    assert 'knows nothing of day 2024-01-01' in capsys.readouterr().err


# -- --once says what it leaves --------------------------------------------------------------


def test_once_exits_0_only_when_everything_is_stored_or_held(site):
    path, config, _ = site
    queue(config.data_dir, factory.batch(WHEN, random.Random(16)))
    app = writer_app.Writer(config)
    app.run(once=True)
    assert app.leftovers() == []


# -- the batch record and the spool agree ---------------------------------------------------------


def test_every_acknowledged_spool_file_is_in_the_batch_record(site):
    path, config, data_dir = site
    store_batches(path, 2)
    batches = received.Received(data_dir, 0).batches_since(0)
    names = {name for b in batches for _, name, _ in b.files}
    assert names == {e.spool for e in ledger.Ledger(data_dir).entries_of_day(DAY)}
    for name in names:
        assert spoolfile.load(ledger.Ledger(data_dir).entry(name).archived)['station_id'] == 501


def test_status_shows_damaged_days_and_the_last_audit(site, capsys):
    path, config, data_dir = site
    store_batches(path, 1)
    ledger.Ledger(data_dir).mark_damaged(DAY, 'test damage', hard=True)
    audit.audit(config, data_dir, ledger.Ledger(data_dir), 0)
    assert cli_main(['status', '-c', path]) in (0, 1)
    out = capsys.readouterr().out
    assert f'damaged    {DAY}: test damage' in out
    assert 'audit' in out
    shutil.rmtree(data_dir.archive_root)
    assert rebuild.CODES['events'] == 'CIC'


# -- what a second look found --------------------------------------------------------------


def test_a_ledger_that_cannot_be_written_is_waited_out_and_sends_nothing_to_failed(site):
    path, config, data_dir = site
    store_batches(path, 1)
    names = [
        queue(config.data_dir, factory.batch(WHEN + datetime.timedelta(hours=i), random.Random(i)))
        for i in range(1, 4)
    ]
    ledger_file = data_dir.path(datadir.LEDGER)
    os.rename(ledger_file, ledger_file + '.aside')
    with open(ledger_file, 'wb') as f:
        f.write(b'not a database' * 100)
    app = writer_app.Writer(config)
    app.run(once=True)
    assert folder_files(config.data_dir, 'failed') == []
    assert (
        sorted(folder_files(config.data_dir, 'partial') + folder_files(config.data_dir, 'incoming')) == names
    )
    assert any('the ledger cannot be written' in line for line in app.leftovers()), app.leftovers()
    os.replace(ledger_file + '.aside', ledger_file)
    drain(path)
    assert folder_files(config.data_dir, 'partial') == folder_files(config.data_dir, 'incoming') == []
    assert all(ledger.Ledger(data_dir).entry(name).rows == 100 for name in names)


def test_a_pass_whose_ledger_commit_fails_is_undone_and_waited_out(site, monkeypatch, capsys):
    path, config, data_dir = site
    store_batches(path, 1)
    day_file = day_path(config.data_dir, WHEN)
    before = contents(day_file)
    rng = random.Random(22)
    for hours in (1, 2):
        upload(path, factory.batch(WHEN + datetime.timedelta(hours=hours), rng))
    names = folder_files(config.data_dir, 'incoming')
    real = ledger.Ledger.commit_pass

    def commit_pass(self, *args, **kwargs):  # this once, SQLite fails the COMMIT and leaves it open
        monkeypatch.setattr(ledger.Ledger, 'commit_pass', real)
        fail_next_commit(self._db())
        return real(self, *args, **kwargs)

    monkeypatch.setattr(ledger.Ledger, 'commit_pass', commit_pass)
    app = writer_app.Writer(config)
    app.run(once=True)
    assert any(line.startswith('waiting: the ledger cannot be written') for line in app.leftovers())
    assert contents(day_file) == before  # the pass was undone, not taken for stored
    assert folder_files(config.data_dir, 'partial') == names
    assert all(ledger.Ledger(data_dir).entry(name) is None for name in names)
    drain(path)
    assert folder_files(config.data_dir, 'partial') == folder_files(config.data_dir, 'incoming') == []
    assert all(ledger.Ledger(data_dir).entry(name).rows == 100 for name in names)
    assert run_audit(capsys, path, '--deep')[0] == 0


def test_a_day_file_that_fails_while_it_is_copied_back_is_marked_damaged_not_fatal(site):
    path, config, data_dir = site
    store_batches(path, 2)
    day_file = day_path(config.data_dir, WHEN)
    book = ledger.Ledger(data_dir)
    entry = {
        'pass': 99,
        'pid': 1,
        'stored': '2024-05-17',
        'spool': [],
        'days': {DAY: {'new': False, 'nodes': book.nodes(DAY)}},
    }
    journal.write(data_dir, entry)
    damage(day_file, 'chunk index')  # it opens and lists its nodes; reading its rows fails
    with tables.open_file(day_file) as h5:
        assert sum(1 for _ in h5.walk_nodes('/')) > 1
    before = digest(day_file)
    app = writer_app.Writer(config)
    app.run(once=True)  # recovers first: the copy fails on the damaged node
    assert digest(day_file) == before
    assert list(book.damaged()) == [DAY]
    assert journal.read(data_dir) is None


def test_rebuild_with_loss_moves_the_ledgers_rows_with_it(site, capsys):
    path, config, data_dir = site
    store_batches(path, 3)
    day_file = day_path(config.data_dir, WHEN)
    book = ledger.Ledger(data_dir)
    lost = book.entries_of_day(DAY)[1]
    os.unlink(lost.archived)
    damage(day_file, 'garbage')
    assert cli_main(['rebuild', '-c', path, DAY, '--accept-loss']) == 0
    code, out = run_audit(capsys, path)
    assert code == 1 and out.count('unaccounted:') == 1  # exactly the batch that was lost
    assert f'{lost.spool}: 100 events sent, the ledger has 100 (0 rows, 0 held)' in out
    rebuilt = contents(day_file)
    assert cli_main(['rebuild', '-c', path, DAY]) == 0  # nothing more is lost, nothing moves
    assert contents(day_file) == rebuilt
    upload(path, factory.batch(WHEN + datetime.timedelta(hours=5), random.Random(20)))
    drain(path)  # and the writer appends after the moved rows
    assert run_audit(capsys, path, '--deep')[1].count('unaccounted:') == 1


def test_a_rebuild_killed_between_its_swap_and_the_ledger_is_finished_by_the_writer(site, monkeypatch):
    path, config, data_dir = site
    store_batches(path, 3)
    book = ledger.Ledger(data_dir)
    os.unlink(book.entries_of_day(DAY)[0].archived)
    damage(day_path(config.data_dir, WHEN), 'garbage')
    real = ledger.Ledger.settle_rebuild
    monkeypatch.setattr(ledger.Ledger, 'settle_rebuild', lambda self, day, path: False)  # killed right there
    assert cli_main(['rebuild', '-c', path, DAY, '--accept-loss']) == 0
    monkeypatch.setattr(ledger.Ledger, 'settle_rebuild', real)
    events = f'{station_path()}/events'
    assert book.nodes(DAY)[events] == 108  # the ledger does not know yet: the file has 72
    queue(config.data_dir, factory.batch(WHEN + datetime.timedelta(hours=5), random.Random(21)))
    drain(path)  # the writer finishes the rebuild's bookkeeping before it writes the day
    assert book.damaged() == {}
    with tables.open_file(day_path(config.data_dir, WHEN)) as h5:
        assert h5.get_node(station_path()).events.nrows == 72 + 36
    assert book.nodes(DAY)[events] == 72 + 36


def test_keeping_a_day_file_aside_never_overwrites_what_was_kept(site):
    path, config, data_dir = site
    store_batches(path, 1)
    day_file = day_path(config.data_dir, WHEN)
    first = data_dir.keep_aside(day_file, 'before-rebuild-20240517T000000Z')
    with open(day_file, 'ab') as f:
        f.write(b'changed')
    os.unlink(day_file)
    shutil.copy(first, day_file)
    second = data_dir.keep_aside(day_file, 'before-rebuild-20240517T000000Z')
    assert second != first and second == first + '.1'
    assert digest(first) == digest(second)


# -- a writer that goes on from its own last pass ------------------------------------------------


@pytest.mark.parametrize('how', ['truncated', 'garbage', 'metadata', 'deleted'])
def test_a_day_file_damaged_between_two_passes_of_one_writer_is_found(site, how):
    path, config, _ = site
    app = writer_app.Writer(config)
    queue(config.data_dir, factory.batch(WHEN, random.Random(31)))
    app.run(once=True)
    day_file = day_path(config.data_dir, WHEN)
    damage(day_file, how)
    before = digest(day_file) if os.path.exists(day_file) else None
    waiting = queue(config.data_dir, factory.batch(WHEN + datetime.timedelta(hours=1), random.Random(32)))
    app.run(once=True)
    assert (digest(day_file) if os.path.exists(day_file) else None) == before
    assert folder_files(config.data_dir, 'incoming') == [waiting]
    assert list(status.gather(config)['damaged_days']) == [DAY]


def test_a_day_file_grown_between_two_passes_of_one_writer_is_looked_at_again(site):
    # Rows added outside the writer to a node the next pass does not touch
    # must be adopted, or undoing that pass would cut them off again.
    path, config, data_dir = site
    app = writer_app.Writer(config)
    queue(config.data_dir, factory.batch(WHEN, random.Random(33)))
    app.run(once=True)
    with tables.open_file(day_path(config.data_dir, WHEN), 'a') as h5:
        singles = h5.get_node(station_path()).singles
        singles.append(singles[:2])
    queue(config.data_dir, factory.batch(WHEN + datetime.timedelta(hours=1), random.Random(34)), 502)
    app.run(once=True)
    assert ledger.Ledger(data_dir).nodes(DAY)[f'{station_path()}/singles'] == 64 + 2


def test_a_day_file_as_the_last_pass_left_it_is_not_walked_again(site, monkeypatch):
    # Loading every node of a day of many stations costs more than the pass:
    # the node map the last pass recorded stands while the file is unchanged.
    path, config, data_dir = site
    app = writer_app.Writer(config)
    for hour, station in enumerate((501, 502, 503)):
        queue(
            config.data_dir,
            factory.batch(WHEN + datetime.timedelta(hours=hour), random.Random(hour)),
            station,
        )
        app.run(once=True)
    walks = []
    monkeypatch.setattr(dayfile, 'node_map', lambda h5: walks.append(h5.filename))
    queue(config.data_dir, factory.batch(WHEN + datetime.timedelta(hours=4), random.Random(35)))
    app.run(once=True)
    assert walks == []
    lengths = ledger.Ledger(data_dir).nodes(DAY)
    with tables.open_file(day_path(config.data_dir, WHEN)) as h5:
        assert lengths == {
            node._v_pathname: dayfile.GROUP if isinstance(node, tables.Group) else node.nrows
            for node in h5.walk_nodes('/')
            if node is not h5.root
        }
