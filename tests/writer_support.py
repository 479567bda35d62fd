"""Helpers for the writer tests: queue spool files, run the writer, read day files."""
import base64
import calendar
import os
import subprocess
import sys
import zlib

import numpy as np

from datastore import config as config_mod
from datastore import py2pickle, spool
from datastore.eventtypes import EVENT_TYPES, upload_codes
from writer import layout, writer_app

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def queue(data_dir, events, station_id=501, cluster='Amsterdam', py2=False, name=None):
    """Deliver one spool file to incoming/; return its name."""
    record = {'station_id': station_id, 'cluster': cluster, 'event_list': events}
    payload = py2pickle.dumps(record) if py2 else spool.dumps(station_id, cluster, events)
    name = name or spool.unique_name(station_id)
    spool.deliver(data_dir, spool.INCOMING, name, payload)
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
    return subprocess.run([sys.executable, '-m', 'writer', config_path, '--once'],
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def day_path(data_dir, when):
    return layout.day_file(data_dir, when.year, when.month, when.day)


def station_path(cluster='Amsterdam', station_id=501):
    return layout.station_path(cluster, station_id)


def folder_files(data_dir, name):
    path = spool.folder(data_dir, name)
    return sorted(os.listdir(path)) if os.path.isdir(path) else []


def expected_row(event):
    """What the layout says an event's row holds: column -> value (blobs as bytes)."""
    event_type = EVENT_TYPES[event['header']['eventtype_uploadcode']]
    codes = upload_codes(event_type)
    when = event['header']['datetime']
    values = {'timestamp': calendar.timegm(when.utctimetuple())}
    if event_type.extended_time:
        values['nanoseconds'] = event['header']['nanoseconds']
        values['ext_timestamp'] = values['timestamp'] * 1_000_000_000 + values['nanoseconds']
    for item in event['datalist']:
        column, index = codes[item['data_uploadcode']]
        value = item['data']
        if column.blob == 'base64':
            value = base64.b64decode(value)
        elif column.blob:
            value = value if isinstance(value, bytes) else str(value).encode('latin-1')
        if index is None:
            values[column.name] = value
        else:
            values.setdefault(column.name, {})[index] = value
    return values


def check_row(table, blobs, row, expected):
    """Assert a stored row holds ``expected`` (as built by expected_row)."""
    columns = {c.name: c for c in EVENT_TYPES_BY_TABLE[table.name].columns}
    for name, value in expected.items():
        column = columns.get(name)
        if isinstance(value, dict):
            for index, element in value.items():
                check_cell(column, row[name][index], element, blobs)
        else:
            check_cell(column, row[name], value, blobs)


def check_cell(column, cell, value, blobs):
    if column is not None and column.blob:
        assert blobs[int(cell)] == value
    elif column is not None and column.type == 'float32':
        assert cell == np.float32(value)
    elif column is not None and column.type.startswith(('int', 'uint')) and isinstance(value, float):
        assert cell == int(value)
    else:
        assert cell == value


EVENT_TYPES_BY_TABLE = {et.table: et for et in EVENT_TYPES.values()}


def trace_samples(blob):
    """How publicdb reads a trace."""
    return zlib.decompress(blob).decode().split(',')
