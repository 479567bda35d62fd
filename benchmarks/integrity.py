"""What integrity costs: recovery time against day-file size, and audit time against days audited.

Recovery: a day file of the given size is filled by the writer from real
spool files (12 stations, 100-event batches, 4 traces per CIC event), a
writer is then SIGKILLed inside a pass of its own (frozen first, to be sure),
and ``journal.recover`` is timed: the verified copy of the day file without
the pass's rows (write beside, compare every kept row, fsync, rename).

Audit: a day (and three days) of a 100-station network as the endpoint and the
writer record it: every station a 100-event batch a minute (144,000 batches), each in the
batch record and in the ledger with its rows in the day file. The records are
written directly (storing 14 million events first would take the benchmark's
whole time); the day file has every node at its recorded length (rows
zero-filled, the blobs node a plain array of that many rows), which is all a
non-deep audit reads of it.
"""

import datetime
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

import numpy as np
import tables

from benchmarks.writer import fill, shifted, write_config
from datastore import config as config_mod
from datastore import datadir, factory, ledger, spoolfile
from writer import audit, journal, layout

DAY = datetime.datetime(2024, 5, 17)
STATIONS = 12
MB = 1 << 20


def day_backlog(files, rng, late=False):
    """``files`` spool files of 100 events within DAY, spread over STATIONS stations
    (``late``: all in the day's last minutes)."""
    batches = [factory.batch(DAY, rng) for _ in range(20)]
    per_station = (files + STATIONS - 1) // STATIONS
    for i in range(files):
        station, k = 1000 + i % STATIONS, i // STATIONS
        seconds = 86_000 + k % 300 if late else k * 86_000 // per_station
        yield spoolfile.dumps(station, 'Bench', shifted(batches[i % 20], seconds))


def journal_pid(data_dir):
    try:
        with open(os.path.join(data_dir, 'writer.journal')) as f:
            return json.load(f)['pid']
    except (OSError, ValueError, KeyError):
        return None


def interrupted_pass(config, data_dir):
    """Leave a pass of a SIGKILLed writer to undo."""
    for _ in range(50):
        writer = subprocess.Popen(
            [sys.executable, '-m', 'writer', config, '--once'],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while journal_pid(data_dir) != writer.pid and writer.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        writer.send_signal(signal.SIGSTOP)
        inside = journal_pid(data_dir) == writer.pid
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        if inside:
            return
    raise SystemExit('no kill landed inside a pass')


def recovery(base, size_mb):
    data_dir = os.path.join(base, f'recovery-{size_mb}')
    config = write_config(base, data_dir, os.path.join(base, 'log'), archive_days=0)
    rng = random.Random(size_mb)
    files = size_mb * 15  # about 70 kB of day file per 100-event spool file
    fill(data_dir, day_backlog(files, rng))
    subprocess.run([sys.executable, '-m', 'writer', config, '--once'], check=True)
    fill(data_dir, day_backlog(200, rng, late=True), prefix='late-')
    interrupted_pass(config, data_dir)
    day_file = datadir.DataDir(data_dir).day_file(DAY.year, DAY.month, DAY.day)
    size = os.path.getsize(day_file)
    data = datadir.DataDir(data_dir)
    started = time.perf_counter()
    journal.recover(data, ledger.Ledger(data), archive_days=0)
    seconds = time.perf_counter() - started
    print(
        f'recovery of a {size / MB:,.0f} MB day file: {seconds:.1f} s ({size / MB / seconds:,.0f} MB/s: '
        f'copy without the pass, compare every kept row, fsync, rename)',
        flush=True,
    )
    shutil.rmtree(data_dir, ignore_errors=True)
    return size, seconds


def network_days(base, days=1, stations=100, per_station=1440):
    """Records of ``days`` days of ``stations`` stations sending a batch a minute: (config, data_dir)."""
    data_dir = datadir.DataDir(os.path.join(base, f'network-{days}'))
    data_dir.ensure()
    config = write_config(base, data_dir.root, os.path.join(base, 'log'))
    batches, spools, stored = [], [], []
    for d in range(days):
        when = DAY + datetime.timedelta(days=d)
        day = ledger.day_key(when.year, when.month, when.day)
        start = when.timestamp()
        lengths = {}
        for s in range(stations):
            station = 1000 + s
            path = layout.station_path('Bench', station)
            for k in range(per_station):
                name = f'{int(start) + 60 * k:020d}_{station}_1_{k:08x}'
                batches.append(
                    (
                        station,
                        f'{d:04x}{s:04x}{k:024x}',
                        start + 60 * k,
                        100,
                        json.dumps([['incoming', name, 100]]),
                    )
                )
                spools.append((name, k, station, 'Bench', 100, 100, 0, None, start + 60 * k))
                stored += [
                    (name, day, f'{path}/events', 36 * k, 36),
                    (name, day, f'{path}/singles', 64 * k, 64),
                    (name, day, f'{path}/blobs', 144 * k, 144),
                ]
            lengths[path] = (36 * per_station, 64 * per_station, 144 * per_station)
        day_file(data_dir.day_file(when.year, when.month, when.day), lengths)
    with sqlite3.connect(data_dir.path(datadir.RECEIVED)) as db:
        db.execute(
            'CREATE TABLE batches (id INTEGER PRIMARY KEY, station INTEGER, checksum TEXT, '
            'received REAL, events INTEGER, files TEXT)'
        )
        db.execute('CREATE INDEX batches_time ON batches (received)')
        db.executemany(
            'INSERT INTO batches (station, checksum, received, events, files) VALUES (?, ?, ?, ?, ?)', batches
        )
    book = ledger.Ledger(data_dir)
    with book.transaction() as db:
        db.executemany('INSERT INTO spools VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)', spools)
        db.executemany('INSERT INTO stored VALUES (?, ?, ?, ?, ?)', stored)
    return config_mod.load(config), data_dir


def day_file(path, lengths):
    """A day file with every station's nodes at the given lengths (rows zero-filled)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tables.open_file(path, 'w') as h5:
        for station_path, (events, singles, blobs) in lengths.items():
            group = h5.create_group(
                os.path.dirname(station_path), os.path.basename(station_path), createparents=True
            )
            h5.create_table(group, 'events', layout.description('CIC'), expectedrows=events).append(
                np.zeros(events, layout.dtype('CIC'))
            )
            h5.create_table(group, 'singles', layout.description('SIN'), expectedrows=singles).append(
                np.zeros(singles, layout.dtype('SIN'))
            )
            h5.create_earray(group, 'blobs', tables.UInt8Atom(), (0,), expectedrows=blobs).append(
                np.zeros(blobs, np.uint8)
            )


def audit_days(base, days):
    started = time.perf_counter()
    config, data_dir = network_days(base, days)
    built = time.perf_counter() - started
    started = time.perf_counter()
    result = audit.audit(config, data_dir, ledger.Ledger(data_dir), since=0)
    seconds = time.perf_counter() - started
    if result.batches != 144_000 * days or result.unaccounted:
        raise RuntimeError(f'{result.batches} batches, unaccounted: {result.unaccounted[:3]}')
    print(
        f'audit of {days} day(s) of a 100-station network ({result.batches:,} batches, records built in '
        f'{built:.0f} s): {seconds:.1f} s, {result.batches / seconds:,.0f} batches/s',
        flush=True,
    )
    shutil.rmtree(data_dir.root, ignore_errors=True)
    return seconds


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    base = tempfile.mkdtemp(prefix='hisparc-integrity-bench-')
    try:
        sizes = [100, 300, 1000] if '--quick' not in argv else [100]
        recovered = [recovery(base, size) for size in sizes]
        (small, small_s), (large, large_s) = recovered[0], recovered[-1]
        print(
            f'recovery time, largest / smallest: {large_s / small_s:.1f}x for {large / small:.1f}x the size'
        )
        audited = {days: audit_days(base, days) for days in ((1, 3) if '--quick' not in argv else (1,))}
        if len(audited) > 1:
            print(
                f'audit time, 3 days / 1 day: {audited[3] / audited[1]:.2f}x for 3x the batches', flush=True
            )
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == '__main__':
    main()
