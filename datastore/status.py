"""The figures an operator looks at: one function, read by ``hisparc-datastore
status`` and by the monitoring endpoint alike.

Sources, all under ``data_dir`` and all read-only:

- the spool folders: how many files wait in each, and the age of the oldest
  file in ``incoming/``;
- ``received.sqlite`` (written by the upload endpoint): the last upload per
  station;
- ``writer.status`` (written atomically by the writer): its pid, state, the
  time of its last update, the last stored event per station, events stored;
- ``writer.pause``: the operator's request that the writer pause.

Nothing here imports PyTables: the monitoring endpoint runs in the upload
workers.
"""
import json
import os
import sqlite3
import pathlib
import time

from . import spool

MIN_STALE = 30.0        # seconds; the writer updates its status at least every few seconds


def gather(config, now=None):
    """The status of the datastore configured by ``config``, as a plain dict."""
    now = time.time() if now is None else now
    data_dir = config.data_dir
    incoming = spool.queued(data_dir, spool.INCOMING)
    folders = {name: len(incoming) if name == spool.INCOMING else len(spool.queued(data_dir, name))
               for name in spool.FOLDERS}
    oldest = _mtime(incoming[0]) if incoming else None
    writer = _writer(data_dir, config.sleep, now)
    uploads = {str(number): received for number, received in _last_uploads(data_dir).items()}
    stored = writer.pop('stations')
    stored = stored if isinstance(stored, dict) else {}
    numbers = sorted(uploads.keys() | stored.keys(), key=lambda n: (len(n), n))   # 99 before 501
    stations = {n: {'last_upload': uploads.get(n), 'last_stored_event': stored.get(n)}
                for n in numbers}
    return {
        'time': now,
        'data_dir': data_dir,
        'folders': folders,
        'queue': {'files': folders[spool.INCOMING],
                  'oldest_age': None if oldest is None else max(0.0, now - oldest)},
        'writer': writer,
        'stations': stations,
    }


def _mtime(path):
    try:
        return os.stat(path).st_mtime
    except FileNotFoundError:       # claimed by the writer meanwhile
        return None


def _last_uploads(data_dir):
    """{station: unix time of its last upload}; empty if the endpoint kept no record yet."""
    path = pathlib.Path(data_dir, spool.RECEIVED).resolve()
    if not path.is_file():
        return {}
    try:
        db = sqlite3.connect(f'{path.as_uri()}?mode=ro', uri=True, timeout=5.0)
        try:
            rows = db.execute('SELECT station, MAX(received) FROM received GROUP BY station')
            return {int(station): received for station, received in rows}
        finally:
            db.close()
    except sqlite3.Error:
        return {}


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:         # alive, another user's
        return True
    return True


def _writer(data_dir, sleep, now):
    """What the writer last said of itself, and whether it is running."""
    state = {'running': False, 'state': None, 'pid': None, 'updated': None,
             'events_stored': None, 'stations': None,
             'paused': os.path.exists(os.path.join(data_dir, spool.WRITER_PAUSE))}
    try:
        with open(os.path.join(data_dir, spool.WRITER_STATUS), encoding='utf-8') as f:
            reported = json.load(f)
    except (OSError, ValueError):
        return state
    if not isinstance(reported, dict):
        return state
    for key in ('state', 'pid', 'updated', 'events_stored', 'stations'):
        state[key] = reported.get(key)
    if not isinstance(state['updated'], (int, float)):
        state['updated'] = None
    fresh = state['updated'] is not None and now - state['updated'] <= max(3 * sleep, MIN_STALE)
    state['running'] = bool(fresh and isinstance(state['pid'], int) and _alive(state['pid']))
    return state


# -- Prometheus text exposition ------------------------------------------------

def prometheus(status):
    """``status`` in the Prometheus text format (version 0.0.4)."""
    lines = []

    def metric(name, kind, help_, samples):
        lines.append(f'# HELP {name} {help_}')
        lines.append(f'# TYPE {name} {kind}')
        for labels, value in samples:
            if value is None:
                continue
            label = ','.join(f'{k}="{v}"' for k, v in labels.items())
            lines.append(f'{name}{{{label}}} {float(value)!r}' if label
                         else f'{name} {float(value)!r}')

    writer, stations = status['writer'], status['stations']
    metric('hisparc_spool_files', 'gauge', 'Files in each spool folder.',
           [({'folder': name}, count) for name, count in status['folders'].items()])
    metric('hisparc_queue_oldest_age_seconds', 'gauge',
           'Age of the oldest file waiting in incoming/.', [({}, status['queue']['oldest_age'])])
    metric('hisparc_writer_running', 'gauge', 'Whether the writer is alive and reporting.',
           [({}, writer['running'])])
    metric('hisparc_writer_paused', 'gauge', 'Whether writer.pause exists.',
           [({}, writer['paused'])])
    metric('hisparc_writer_status_updated_timestamp_seconds', 'gauge',
           'When the writer last reported its status.', [({}, writer['updated'])])
    metric('hisparc_writer_events_stored', 'gauge',
           'Events stored by the running writer since it started.', [({}, writer['events_stored'])])
    metric('hisparc_station_last_upload_timestamp_seconds', 'gauge',
           'When each station last delivered a batch.',
           [({'station': n}, s['last_upload']) for n, s in stations.items()])
    metric('hisparc_station_last_stored_event_timestamp_seconds', 'gauge',
           'Timestamp of the last event stored per station.',
           [({'station': n}, s['last_stored_event']) for n, s in stations.items()])
    return '\n'.join(lines) + '\n'
