"""How the writer's cost grows with the shape of the work, and how far it is from the floor.

    python -m benchmarks shape [--full-mb 1000]

- Files: the same 10,000 events as 10,000 one-event spool files (pysparc
  stations post one event at a time) and as 100 hundred-event files.
- A full day: 300 hundred-event spool files appended to a day file that
  already holds a day of 140 stations (``--full-mb`` of it, filled by the
  writer itself beforehand), against the same files into an empty one.
- The floor: the cheapest PyTables can do with the same rows and blobs,
  already converted, appended in one call per node of the day file, a pass as
  the writer bounds it; and the writer's own time per step on the same files
  (unpickling, the rule and converting, finding the nodes and building the
  arrays, appending, and the rest: claiming, journal, ledger, fsyncs and
  archiving), in the same process.

Each figure is a ratio against its reference measured in the same run.
"""

from __future__ import annotations

import datetime
import gc
import os
import random
import shutil
import sys
import tempfile
import time

from benchmarks.writer import count_rows, drain_writer, fill, payloads, shifted
from datastore import config as config_mod
from datastore import datadir, events, factory, spoolfile
from writer import dayfile, storepass

DAY = datetime.datetime(2024, 5, 17)
NETWORK = 140  # stations of the real network
ROUNDS = 3


def one_event_files(count: int, rng: random.Random):
    """``count`` spool files of one event each, from 20 stations, distinct in time."""
    batches = [factory.batch(DAY, rng) for _ in range(count // 100)]
    for i in range(count):
        event = batches[i // 100][i % 100]
        yield spoolfile.dumps(501 + i % 20, 'Amsterdam', shifted([event], i))


def hundred_event_files(count: int, rng: random.Random):
    batches = [factory.batch(DAY, rng) for _ in range(count)]
    for i, batch in enumerate(batches):
        yield spoolfile.dumps(501 + i % 20, 'Amsterdam', shifted(batch, 100 * i))


def timed_drain(
    base: str, name: str, backlog: list[bytes], expected: int, data_dir: str | None = None
) -> float:
    data_dir = data_dir or os.path.join(base, name)
    fill(data_dir, backlog, prefix=f'{name}-')
    started = time.perf_counter()
    stored = drain_writer(base, data_dir)
    seconds = time.perf_counter() - started
    if stored != expected:
        raise RuntimeError(f'{name}: stored {stored} events, not {expected}')
    return seconds


def best_of(base: str, runs: dict[str, tuple[list[bytes], int]]) -> dict[str, float]:
    """Best time of each drain over ROUNDS rounds, alternating which goes first."""
    best: dict[str, float] = {}
    names = list(runs)
    for round_ in range(ROUNDS):
        for name in names if round_ % 2 == 0 else names[::-1]:
            backlog, expected = runs[name]
            seconds = timed_drain(base, f'{name}-{round_}', backlog, expected)
            best[name] = min(best.get(name, seconds), seconds)
            shutil.rmtree(os.path.join(base, f'{name}-{round_}'), ignore_errors=True)
    return best


def files_shape(base: str) -> None:
    rng = random.Random(1)
    runs = {
        'one-event': (list(one_event_files(10_000, rng)), 10_000),
        'hundred-event': (list(hundred_event_files(100, rng)), 10_000),
    }
    best = best_of(base, runs)
    one, hundred = (10_000 / best[name] for name in runs)
    print('10,000 events, best of 3 rounds, the writer with its archive (archive_days = 7):')
    print(f'  10,000 one-event spool files: {one:9,.0f} events/s ({best["one-event"]:.2f} s)')
    print(f'  100 hundred-event files:      {hundred:9,.0f} events/s ({best["hundred-event"]:.2f} s)')
    print(f'  one-event / hundred-event:    {one / hundred:9.3f}', flush=True)


def network_day_file(data_dir: str, size_mb: int) -> int:
    """Fill ``data_dir``'s day file of DAY with a day of NETWORK stations, about ``size_mb`` MB."""
    rng = random.Random(size_mb)
    files = size_mb * 15  # about 70 kB of day file per 100-event spool file
    batches = [factory.batch(DAY, rng) for _ in range(20)]
    per_station = max(files // NETWORK, 1)
    backlog = (
        spoolfile.dumps(1000 + s, 'Network', shifted(batches[(s + k) % 20], k * 86_000 // per_station))
        for k in range(per_station)
        for s in range(NETWORK)
    )
    fill(data_dir, backlog, prefix='day-')
    drain_writer(os.path.dirname(data_dir), data_dir, archive_days=0)
    return os.path.getsize(datadir.DataDir(data_dir).day_file(DAY.year, DAY.month, DAY.day))


def full_day(base: str, size_mb: int) -> None:
    rng = random.Random(2)
    late = [
        spoolfile.dumps(1000 + i % NETWORK, 'Network', shifted(factory.batch(DAY, rng), 86_100))
        for i in range(300)
    ]
    full_dir = os.path.join(base, 'full')
    started = time.perf_counter()
    size = network_day_file(full_dir, size_mb)
    filled = time.perf_counter() - started
    full = empty = float('inf')
    for round_ in range(ROUNDS):
        # the full day grows by 300 files a round: a few MB on top of its size
        full = min(full, timed_drain(base, f'late-{round_}', late, 30_000, data_dir=full_dir))
        empty_dir = os.path.join(base, f'empty-{round_}')
        empty = min(empty, timed_drain(base, f'late-{round_}', late, 30_000, data_dir=empty_dir))
        shutil.rmtree(empty_dir, ignore_errors=True)
    print(
        f'300 hundred-event files appended to a day of {NETWORK} stations ({size / 2**20:,.0f} MB, '
        f'filled in {filled:.0f} s) and to an empty day, best of {ROUNDS}:'
    )
    print(f'  into the full day:  {30_000 / full:9,.0f} events/s ({full:.2f} s)')
    print(f'  into an empty day:  {30_000 / empty:9,.0f} events/s ({empty:.2f} s)')
    print(f'  full / empty:       {empty / full:9.3f}', flush=True)
    shutil.rmtree(full_dir, ignore_errors=True)


# a pass as the writer's defaults bound it
BATCH = (config_mod.default('batch_files'), config_mod.default('batch_bytes'))


def writer_steps(folder: str, backlog: list[bytes]) -> dict[str, float]:
    """The writer's steps on ``backlog``, a pass at a time, done one after another here.

    As in the writer, the cyclic garbage collector is off during a pass (with
    it on, unpickling 10^4 events scans them again and again). The last step,
    appending the finished arrays (one call per node) and closing the day
    file, is the floor.
    """
    fill(folder, backlog)
    queued = datadir.DataDir(folder).queued()
    rule = events.Rule(minimum_year=2020, max_future=36_500)
    took = dict.fromkeys(
        ('unpickle', 'the rule and converting', 'building the arrays', 'appending (the floor)'), 0.0
    )
    while queued:
        chosen = storepass.first_within(queued, *BATCH)
        del queued[: len(chosen)]
        gc.disable()
        try:
            _pass_steps(folder, chosen, rule, took)
        finally:
            gc.enable()
    if count_rows(folder) != len(backlog) * 100:
        raise RuntimeError('the floor did not store every row')
    shutil.rmtree(folder, ignore_errors=True)
    return took


def _pass_steps(folder: str, chosen: list[str], rule: events.Rule, took: dict[str, float]) -> None:
    """One pass of the writer's steps on the spool files ``chosen``, each timed into ``took``."""
    files = []
    for path in chosen:  # each record let go once converted, as the writer does
        started = time.perf_counter()
        record = spoolfile.load(path)
        loaded = time.perf_counter()
        files.append(storepass.SpoolFile(path, record, rule, set()))
        took['unpickle'] += loaded - started
        took['the rule and converting'] += time.perf_counter() - loaded
    started = time.perf_counter()
    day_file = dayfile.DayFile(os.path.join(folder, 'floor.h5'))
    arrays = []
    for (_, cluster, station), rows in storepass.Passes.group(files).items():
        group = day_file.station(cluster, station)
        blobs = day_file.blobs(group)
        base = int(blobs.nrows)
        tables_ = {}
        for code in rows.rows:
            table = day_file.table(group, code)
            tables_[table] = rows.table_rows(code, int(table.nrows), base)
        arrays.append((blobs, rows.blobs, tables_))
    took['building the arrays'] += time.perf_counter() - started
    started = time.perf_counter()
    for blobs, blob_list, tables_ in arrays:
        dayfile.append_blobs(blobs, blob_list)
        for table, array in tables_.items():
            table.append(array)
    day_file.close()
    took['appending (the floor)'] += time.perf_counter() - started


def floor(base: str) -> None:
    """The writer on 300 hundred-event files, against its own steps and the floor, round by round."""
    backlog = list(payloads(300, random.Random(3)))
    rounds = []
    for round_ in range(ROUNDS):
        writer_seconds = timed_drain(base, f'writer-{round_}', backlog, 30_000)
        rounds.append((writer_seconds, writer_steps(os.path.join(base, f'floor-{round_}'), backlog)))
    writer_seconds, steps = min(rounds, key=lambda pair: pair[0])  # the quietest round, both of it
    append = steps['appending (the floor)']
    alone = sum(steps.values())
    print(f'300 hundred-event files (30,000 events), the round of {ROUNDS} where the writer was fastest:')
    print(f'  the floor (finished arrays, one append per node, close and fsync): {append:.3f} s')
    print(f'  the writer (archive_days = 7):                                    {writer_seconds:.3f} s')
    print(f"  writer / floor: {writer_seconds / append:.2f}x; the writer's steps done one by one here:")
    for name, seconds in steps.items():
        print(f'    {name:44s} {seconds:6.3f} s  {seconds / alone:6.1%}')
    # what is left of the writer's time for claiming, the journal, the ledger, archiving and fsyncs
    print(f'  the steps alone: {alone:.3f} s, the whole writer {writer_seconds - alone:+.3f} s')
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    size_mb = int(argv[argv.index('--full-mb') + 1]) if '--full-mb' in argv else 1000
    base = tempfile.mkdtemp(prefix='hisparc-shape-bench-')
    try:
        files_shape(base)
        floor(base)
        full_day(base, size_mb)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == '__main__':
    main()
