"""Writer benchmark: drain a backlog of realistic spool files.

Runs the writer (``Writer.run(once=True)``, in this process) and, on an
identical copy of the backlog, a plain bulk-append reference: per spool file
one ``Table.append`` per table and one ``VLArray.append`` per blob, the day
file opened once. Prints events/s of both and the ratio (target >= 1.5).

Then drains 10,000 spool files with ``python -m writer CONFIG --once`` in a
subprocess and reports its peak RSS (target < 200 MB). ``--no-10k`` skips it.
"""

import base64
import calendar
import collections
import datetime
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

import tables

from benchmarks import quiet_disk
from datastore import config as config_mod
from datastore import datadir, factory, spoolfile
from datastore.eventtypes import EVENT_TYPES, all_columns, upload_codes
from writer import layout, writer_app

FILES = 300
DISTINCT = 30  # distinct batches drawn; the others repeat them later in the day
BIG_BACKLOG = 10_000
START = datetime.datetime(2024, 5, 17, 0, 0, 0)


def shifted(events, seconds):
    delta = datetime.timedelta(seconds=seconds)
    return [
        {'header': dict(e['header'], datetime=e['header']['datetime'] + delta), 'datalist': e['datalist']}
        for e in events
    ]


def payloads(count, rng):
    """``count`` pickled spool files of 100 events (36 CIC + 64 SIN), distinct in time."""
    batches = [factory.batch(START + datetime.timedelta(seconds=100 * i), rng) for i in range(DISTINCT)]
    for i in range(count):
        events = shifted(batches[i % DISTINCT], 100 * DISTINCT * (i // DISTINCT))
        yield spoolfile.dumps(501 + i % 3, 'Amsterdam', events)


def fill(data_dir, blobs, prefix=''):
    incoming = os.path.join(data_dir, datadir.INCOMING)
    datadir.DataDir(str(data_dir)).ensure()
    for i, payload in enumerate(blobs):
        path = os.path.join(incoming, f'{prefix}{i:08d}')
        with open(path, 'wb') as f:
            f.write(payload)
        os.utime(path, ns=(i, i))  # oldest first = in order written


def write_config(base, data_dir, log, archive_days=7):
    path = os.path.join(base, 'config.ini')
    with open(path, 'w') as f:
        f.write(
            f'[General]\nlog={log}\nloglevel=info\nstation_list=/dev/null\n'
            f'data_dir={data_dir}\n[Writer]\nsleep=1\narchive_days={archive_days}\n'
        )
    return path


# -- the reference: plain bulk appends, no batching across files ---------------


def reference_row(event_type, codes, event):
    row = {c.name: ([c.default] * c.shape if c.shape > 1 else c.default) for c in all_columns(event_type)}
    header = event['header']
    row['timestamp'] = calendar.timegm(header['datetime'].utctimetuple())
    if event_type.extended_time:
        row['nanoseconds'] = header['nanoseconds']
        row['ext_timestamp'] = row['timestamp'] * 1_000_000_000 + header['nanoseconds']
    blobs = []
    for item in event['datalist']:
        column, index = codes[item['data_uploadcode']]
        value = item['data']
        if column.blob:
            blobs.append(base64.b64decode(value) if column.blob == 'base64' else str(value).encode('latin-1'))
            value = len(blobs) - 1
        if index is None:
            row[column.name] = value
        else:
            row[column.name][index] = value
    return row, blobs


def reference_drain(data_dir):
    """Store every queued spool file: one Table.append per table, one VLArray.append per blob."""
    events = 0
    files = {}
    codes = {code: upload_codes(et) for code, et in EVENT_TYPES.items()}
    for path in datadir.DataDir(str(data_dir)).queued():
        record = spoolfile.load(path)
        per_table = collections.defaultdict(list)
        for event in record['event_list']:
            when = event['header']['datetime']
            per_table[when.year, when.month, when.day, event['header']['eventtype_uploadcode']].append(event)
        for (year, month, day, code), table_events in per_table.items():
            name = datadir.DataDir(data_dir).day_file(year, month, day)
            if name not in files:
                os.makedirs(os.path.dirname(name), exist_ok=True)
                files[name] = tables.open_file(name, 'a')
            h5 = files[name]
            where = layout.station_path(record['cluster'], record['station_id'])
            group = (
                h5.get_node(where)
                if where in h5
                else h5.create_group(os.path.dirname(where), os.path.basename(where), createparents=True)
            )
            event_type = EVENT_TYPES[code]
            table = (
                group._f_get_child(event_type.table)
                if event_type.table in group
                else h5.create_table(group, event_type.table, layout.description(code), event_type.title)
            )
            blobs = (
                group.blobs
                if 'blobs' in group
                else h5.create_vlarray(group, 'blobs', tables.VLStringAtom(), layout.BLOBS_TITLE)
            )
            rows = []
            for event in table_events:
                row, event_blobs = reference_row(event_type, codes[code], event)
                base = blobs.nrows
                for blob in event_blobs:
                    blobs.append(blob)
                for column in event_type.columns:
                    if column.blob:
                        row[column.name] = (
                            [base + i if i >= 0 else i for i in row[column.name]]
                            if column.shape > 1
                            else base + row[column.name]
                        )
                row['event_id'] = table.nrows + len(rows) + 1
                rows.append(tuple(row[c.name] for c in all_columns(event_type)))
            table.append(rows)
            events += len(rows)
        os.unlink(path)
    for h5 in files.values():
        h5.close()
    return events


def count_rows(data_dir):
    total = 0
    for path in sorted(spool_tree(data_dir)):
        with tables.open_file(path) as h5:
            total += sum(t.nrows for t in h5.walk_nodes('/hisparc', 'Table'))
    return total


def spool_tree(data_dir):
    for root, _, names in os.walk(data_dir):
        yield from (os.path.join(root, n) for n in names if n.endswith('.h5'))


ROUNDS = 5  # best of: each drain alternately first, on a fresh copy of the backlog


def drain_writer(base, data_dir, archive_days=7):
    config = config_mod.load(write_config(base, data_dir, os.path.join(base, 'log'), archive_days))
    app = writer_app.Writer(config)
    app.run(once=True)
    return app.events_stored


DRAINS = (
    ('writer', drain_writer),
    ('no archive', lambda base, data_dir: drain_writer(base, data_dir, archive_days=0)),
    ('reference', lambda _base, data_dir: reference_drain(data_dir)),
)


def compare_speed(base):
    backlog = list(payloads(FILES, random.Random(1)))
    best = dict.fromkeys(name for name, _ in DRAINS)
    for round_ in range(ROUNDS):
        order = DRAINS if round_ % 2 == 0 else DRAINS[::-1]
        for name, drain in order:
            data_dir = os.path.join(base, f'{name}-{round_}')
            fill(data_dir, backlog)
            started = time.perf_counter()
            events = drain(base, data_dir)
            seconds = time.perf_counter() - started
            if not events == count_rows(data_dir) == FILES * 100:
                raise RuntimeError(f'{name} stored {events} events, not {FILES * 100}')
            best[name] = min(best[name] or seconds, seconds)
    writer_rate, bare_rate, reference_rate = (FILES * 100 / best[name] for name, _ in DRAINS)
    print(
        f'backlog: {FILES} spool files x 100 events (36 CIC + 64 SIN, 4 traces per CIC); '
        f'best of {ROUNDS} rounds, alternating which drains first'
    )
    print(f'writer:     {writer_rate:10,.0f} events/s ({best["writer"]:.2f} s)  (archive_days = 7)')
    print(f'no archive: {bare_rate:10,.0f} events/s ({best["no archive"]:.2f} s)  (archive_days = 0)')
    print(
        f'reference:  {reference_rate:10,.0f} events/s ({best["reference"]:.2f} s)'
        f'  (one Table.append per table per file, one VLArray.append per blob)'
    )
    print(f'writer / reference:  {writer_rate / reference_rate:5.2f}x  (target >= 1.5x)')
    print(f'archive on / off:    {writer_rate / bare_rate:5.2f}   (target >= 0.90)', flush=True)


# Runs `python -m writer ...` and reports its peak resident memory. VmHWM is
# the peak of this program alone: ru_maxrss would include the high-water
# mark of the (large) benchmark process it was forked from.
MEASURED_WRITER = """
import runpy, sys
sys.argv[0] = 'writer'
try:
    runpy.run_module('writer', run_name='__main__', alter_sys=True)
finally:
    with open('/proc/self/status') as status:
        print(next(line for line in status if line.startswith('VmHWM:')), file=sys.stderr)
"""


def peak_memory(base):
    data_dir = os.path.join(base, 'big')
    rng = random.Random(2)
    started = time.perf_counter()
    fill(data_dir, payloads(BIG_BACKLOG, rng))
    config = write_config(base, data_dir, os.path.join(base, 'log-big'))
    filled = time.perf_counter() - started
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, '-c', MEASURED_WRITER, config, '--once'],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f'writer failed: {done.stderr}')
    peak_kb = int(done.stderr.rpartition('VmHWM:')[2].split()[0])
    left = len(datadir.DataDir(str(data_dir)).queued())
    print(
        f'{BIG_BACKLOG:,} spool files ({BIG_BACKLOG * 100:,} events; queued in {filled:.1f} s): '
        f'drained in {seconds:.1f} s by `python -m writer CONFIG --once`, '
        f'{BIG_BACKLOG * 100 / seconds:,.0f} events/s, {left} left'
    )
    print(f'peak RSS of the writer process: {peak_kb / 1024:.0f} MB (target < 200 MB)', flush=True)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    base = tempfile.mkdtemp(prefix='hisparc-writer-bench-')
    try:
        quiet_disk.wait(base)
        compare_speed(base)
        if '--no-10k' not in argv:
            peak_memory(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == '__main__':
    main()
