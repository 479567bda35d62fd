"""Backlogs of spool files, writers run as processes, and the check that every event is stored once."""

import base64
import collections
import datetime
import glob
import os
import random
import subprocess
import sys
import time

import numpy as np
import tables

from datastore import factory
from tests.support import spec
from tests.support.writer import ROOT, expected_row, plain, queue, trace_samples

WHEN = datetime.datetime(2024, 5, 17, 23, 50, 0)
STATIONS = ((501, 'Amsterdam'), (502, 'Utrecht'))


def writer_config(make_config, **writer_keys):
    """A config with extra [Writer] keys (the last section of make_config's file)."""
    config = make_config()
    with open(config, 'a') as f:
        f.writelines(f'{key}={value}\n' for key, value in writer_keys.items())
    return config


def data_dir_of(config):
    return os.path.join(os.path.dirname(config), 'datastore')


def shifted(events, seconds):
    """The same events, ``seconds`` later."""
    return [
        {
            'header': dict(
                e['header'], datetime=e['header']['datetime'] + datetime.timedelta(seconds=seconds)
            ),
            'datalist': e['datalist'],
        }
        for e in events
    ]


def queue_backlog(data_dir, files, seed=0, distinct=20, start_at=0):
    """Spool files of 100 events (a third pickled by Python 2) from two stations,
    around midnight; return (station_id, cluster, event) of every event sent.

    ``distinct`` batches are drawn; later files repeat them at later times.
    ``start_at`` puts the first batch that many batches' time later (another backlog).
    """
    rng = random.Random(seed)
    start = WHEN + datetime.timedelta(seconds=100 * start_at)
    batches = [
        factory.batch(start + datetime.timedelta(seconds=100 * i), rng) for i in range(min(files, distinct))
    ]
    sent = []
    for i in range(files):
        station_id, cluster = STATIONS[i % 2]
        events = shifted(batches[i % distinct], 100 * distinct * (i // distinct))
        queue(data_dir, events, station_id, cluster, py2=(i % 3 == 0))
        sent += [(station_id, cluster, event) for event in events]
    return sent


def identity(table_name, row):
    """What makes a stored row unique: time plus content (all but event_id and blob indexes)."""
    return (
        table_name,
        *(
            tuple(row[name].tolist()) if row[name].shape else row[name].item()
            for name in row.dtype.names
            if name not in ('event_id', 'traces')
        ),
    )


def stored_rows(data_dir):
    """(station_id, identity) -> count, and every CIC row's trace blobs, over all day files."""
    counts = collections.Counter()
    traces = {}
    for path in glob.glob(os.path.join(data_dir, '*', '*', '*.h5')):
        with tables.open_file(path) as h5:
            for table in h5.walk_nodes('/hisparc', 'Table'):
                station_id = int(table._v_parent._v_name.split('_')[1])
                rows = table.read()
                assert list(rows['event_id']) == list(range(1, len(rows) + 1))
                blobs = table._v_parent.blobs
                for row in rows:
                    key = (station_id, identity(table.name, row))
                    counts[key] += 1
                    if table.name == 'events':
                        traces[station_id, int(row['ext_timestamp'])] = [blobs[int(i)] for i in row['traces']]
    return counts, traces


def expected(sent):
    """The same identities, built from the source events (CIC and SIN: no blob columns but traces)."""
    counts = collections.Counter()
    for station_id, _, event in sent:
        spec_type = spec.layout()[event['header']['eventtype_uploadcode']]
        row = np.zeros(
            1,
            dtype=[
                (c.name, _numpy_type(c.type), (c.shape,) if c.shape > 1 else ()) for c in spec_type.columns
            ],
        )[0]
        for column in spec_type.columns:
            row[column.name] = column.default
        for name, value in plain(expected_row(event)).items():
            if name != 'traces':
                row[name] = [value[i] for i in sorted(value)] if isinstance(value, dict) else value
        counts[station_id, identity(spec_type.table, row)] += 1
    return counts


def _numpy_type(spec_type):
    return 'int32' if spec_type == 'time32' else spec_type


def check_exactly_once(data_dir, sent):
    counts, traces = stored_rows(data_dir)
    assert counts == expected(sent)
    assert max(counts.values()) == 1
    cics = [(s, e) for s, _, e in sent if e['header']['eventtype_uploadcode'] == 'CIC']
    assert len(traces) == len(cics)
    for station_id, event in cics:
        source = {d['data_uploadcode']: d['data'] for d in event['datalist']}
        stored = traces[station_id, expected_row(event)['ext_timestamp']]
        for i, blob in enumerate(stored):
            assert trace_samples(blob) == trace_samples(base64.b64decode(source[f'TR{i + 1}']))


def start_writer(config, *args):
    return subprocess.Popen(
        [sys.executable, '-m', 'writer', config, *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(condition, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False
