"""Helpers for the writer tests: queue spool files, run the writer, read day files."""

import base64
import calendar
import os
import subprocess
import sys
import zlib

import numpy as np

from datastore import config as config_mod
from datastore import datadir, py2pickle, spoolfile
from tests.support import spec
from writer import layout, writer_app

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def queue(data_dir, events, station_id=501, cluster='Amsterdam', py2=False, name=None):
    """Deliver one spool file to incoming/; return its name."""
    record = {'station_id': station_id, 'cluster': cluster, 'event_list': events}
    payload = py2pickle.dumps(record) if py2 else spoolfile.dumps(station_id, cluster, events)
    name = name or datadir.unique_name(station_id)
    datadir.DataDir(str(data_dir)).deliver(datadir.INCOMING, name, payload)
    return name


def make_writer(config_path):
    return writer_app.Writer(config_mod.load(config_path))


def drain(config_path):
    """Run the writer in this process until the queue is empty."""
    app = make_writer(config_path)
    app.run(once=True)
    return app


def run_once(config_path, timeout=120):
    """Run ``python -m writer CONFIG --once`` in a subprocess."""
    return subprocess.run(
        [sys.executable, '-m', 'writer', config_path, '--once'],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def day_path(data_dir, when):
    return datadir.DataDir(str(data_dir)).day_file(when.year, when.month, when.day)


def station_path(cluster='Amsterdam', station_id=501):
    return layout.station_path(cluster, station_id)


def folder_files(data_dir, name):
    path = os.path.join(data_dir, name)
    return sorted(os.listdir(path)) if os.path.isdir(path) else []


def expected_row(event):
    """What the spec says an event's row holds: column -> value (blobs as bytes).

    The mapping of upload codes to columns is the spec's, not the writer's table.
    """
    code = event['header']['eventtype_uploadcode']
    codes = spec.upload_codes(code)
    when = event['header']['datetime']
    values = {'timestamp': calendar.timegm(when.utctimetuple())}
    if spec.layout()[code].extended_time:
        values['nanoseconds'] = event['header']['nanoseconds']
        values['ext_timestamp'] = values['timestamp'] * 1_000_000_000 + values['nanoseconds']
    for item in event['datalist']:
        column, index, blob = codes[item['data_uploadcode']]
        value = item['data']
        if blob == 'base64':
            value = base64.b64decode(value)
        elif blob:
            value = value if isinstance(value, bytes) else str(value).encode('latin-1')
        if index is None:
            values[column.name] = (blob, value)
        else:
            values.setdefault(column.name, {})[index] = (blob, value)
    return values


def check_row(table, blobs, row, expected):
    """Assert a stored row holds ``expected`` (as built by expected_row)."""
    columns = {c.name: c for c in spec.by_table()[table.name].columns}
    for name, value in expected.items():
        column = columns.get(name)
        if isinstance(value, dict):
            for index, element in value.items():
                check_cell(column, row[name][index], element, blobs)
        else:
            check_cell(column, row[name], value if isinstance(value, tuple) else (None, value), blobs)


def check_cell(column, cell, value, blobs):
    blob, value = value
    if blob:
        assert blobs[int(cell)] == value
    elif column is not None and column.type == 'float32':
        assert cell == np.float32(value)
    elif column is not None and column.type.startswith(('int', 'uint')) and isinstance(value, float):
        assert cell == int(value)
    else:
        assert cell == value


def plain(expected):
    """expected_row's values without the blob markers: column -> value or {index: value}."""
    return {
        name: (
            {i: v for i, (_, v) in value.items()}
            if isinstance(value, dict)
            else value[1]
            if isinstance(value, tuple)
            else value
        )
        for name, value in expected.items()
    }


def trace_samples(blob):
    """How publicdb reads a trace."""
    return zlib.decompress(blob).decode().split(',')


PASSWORDS = {501: 's3cret', 502: 'pa ss'}  # of make_config's default station list


def upload(config_path, events, station=501):
    """Post ``events`` to the endpoint in this process, as a station does; assert the 100."""
    import io

    from datastore import protocol
    from wsgi import wsgi_app

    body = protocol.encode(station, PASSWORDS[station], py2pickle.dumps(events))
    environ = {'CONTENT_LENGTH': str(len(body)), 'wsgi.input': io.BytesIO(body), 'REMOTE_ADDR': '127.0.0.1'}
    reply = b''.join(wsgi_app.application(environ, lambda *args: None, configfile=str(config_path)))
    assert reply == b'100', reply


def contents(path):
    """{node path: its rows as bytes (tables) or list of bytes (blobs)} of a day file."""
    import tables

    with tables.open_file(path) as h5:
        return {
            node._v_pathname: node.read().tobytes()
            if isinstance(node, tables.Table)
            else [bytes(b) for b in node.read()]
            for node in h5.walk_nodes('/', 'Leaf')
        }


def fail_next_commit(db):
    """Make the next COMMIT on the sqlite3 connection ``db`` fail, the transaction left open.

    SQLite's own progress handler interrupts it: COMMIT then fails and the
    transaction stays open, as it does when COMMIT fails busy.
    """
    running, fired = [], []
    db.set_trace_callback(running.append)

    def interrupt():
        if running and running[-1] == 'COMMIT' and not fired:
            fired.append(True)
            return 1
        return 0

    db.set_progress_handler(interrupt, 1)
