"""The datastore's metrics, exposed with ``prometheus_client`` (``/hisparc/metrics``).

Two kinds:

- **Upload counts**, counted by every uWSGI worker as it answers:
  ``hisparc_uploads_total{code}``, ``hisparc_events_accepted_total``,
  ``hisparc_events_held_total`` and the ``hisparc_upload_duration_seconds``
  histogram. prometheus_client's multiprocess mode keeps them in files in
  ``data_dir/metrics/<host>-<uWSGI master pid>/``; a scrape in any worker
  sums every worker's. A new master starts an empty folder, and removes the
  folders of masters on this host that are gone: counters restart with
  uWSGI, as Prometheus expects of counters.
- **The datastore's figures** (``status.gather``), read at each scrape: the
  spool folders, the age of the oldest queued file (0 when none waits), the
  writer's state and events stored, each station's last upload and stored
  event, damaged day files, the last audit, and the ready and health
  verdicts.

prometheus_client picks its mode when first imported, from
``PROMETHEUS_MULTIPROC_DIR``, so it is imported here on first use in each
worker, once that folder is known.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from datastore import protocol
from datastore.config import Config
from datastore.datadir import DataDir

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

FOLDER = 'metrics'
# seconds; an upload takes milliseconds, a slow disk or a large batch seconds
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'


class Uploads:
    """The upload counters of this process."""

    def __init__(self) -> None:
        import prometheus_client  # noqa: PLC0415 (after PROMETHEUS_MULTIPROC_DIR is set)

        # registry=None: in multiprocess mode a scrape reads the files, not a registry
        self.answered = prometheus_client.Counter(
            'hisparc_uploads', 'Uploads answered, by return code.', ['code'], registry=None
        )
        for code in protocol.MEANING:  # every code present from the start, at 0
            self.answered.labels(code)
        self.accepted = prometheus_client.Counter(
            'hisparc_events_accepted', 'Events in batches answered 100 (resends not counted).', registry=None
        )
        self.held = prometheus_client.Counter(
            'hisparc_events_held', 'Accepted events held in suspicious/ for review.', registry=None
        )
        self.duration = prometheus_client.Histogram(
            'hisparc_upload_duration_seconds', 'Time to answer an upload.', buckets=BUCKETS, registry=None
        )

    def count(self, code: str, seconds: float, accepted: int, held: int) -> None:
        self.answered.labels(code).inc()
        self.duration.observe(seconds)
        if accepted:
            self.accepted.inc(accepted)
        if held:
            self.held.inc(held)


_uploads: dict[int, Uploads] = {}  # pid -> its counters (a forked worker makes its own)


def uploads(data_dir: DataDir) -> Uploads:
    """The counters of this process, counted in its master's folder from the first use on."""
    counters = _uploads.get(os.getpid())
    if counters is None:
        os.environ['PROMETHEUS_MULTIPROC_DIR'] = folder(data_dir)
        counters = _uploads[os.getpid()] = Uploads()
    return counters


def folder(data_dir: DataDir) -> str:
    """The folder of this uWSGI master, created where missing; the folders of masters gone are removed.

    A master is its pid and its start time: a pid used again after a restart
    names another master.
    """
    root = data_dir.path(FOLDER)
    host = socket.gethostname()
    pid = _master_pid()
    mine = os.path.join(root, f'{host}-{pid}-{_started(pid)}')
    if not os.path.isdir(mine):
        os.makedirs(mine, exist_ok=True)
        for name in os.listdir(root):
            owner, pid_text, started = [*name.rsplit('-', 2), '', ''][:3]
            if owner == host and pid_text.isdigit() and started != _started(int(pid_text)):
                shutil.rmtree(os.path.join(root, name), ignore_errors=True)
    return mine


def _master_pid() -> int:
    try:
        import uwsgi  # noqa: PLC0415 (only inside uWSGI)
    except ImportError:
        return os.getpid()
    return int(uwsgi.masterpid()) or os.getpid()


def _started(pid: int) -> str:
    """When process ``pid`` started (clock ticks since boot), or 'gone'."""
    try:
        with open(f'/proc/{pid}/stat', 'rb') as f:
            return f.read().rsplit(b')', 1)[1].split()[19].decode()
    except (OSError, IndexError):
        return 'gone'


def exposition(config: Config, figures: dict[str, Any], ready: bool, healthy: bool) -> bytes:
    """Every worker's upload counts and the datastore's figures, in the Prometheus text format."""
    data_dir = DataDir(config.data_dir)
    uploads(data_dir)
    import prometheus_client  # noqa: PLC0415 (after PROMETHEUS_MULTIPROC_DIR is set)
    from prometheus_client import multiprocess  # noqa: PLC0415

    registry = prometheus_client.CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=folder(data_dir))
    registry.register(Figures(config, figures, ready, healthy))
    return prometheus_client.generate_latest(registry)


class Figures:
    """A collector of the datastore's figures, as ``status.gather`` read them."""

    def __init__(self, config: Config, figures: dict[str, Any], ready: bool, healthy: bool) -> None:
        self.config, self.figures, self.ready, self.healthy = config, figures, ready, healthy

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily  # noqa: PLC0415

        figures = self.figures
        writer, stations, audit = figures['writer'], figures['stations'], figures['audit'] or {}
        paused = writer.get('paused_since')

        def gauge(name: str, help_: str, value: float | None = None) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, help_, value=value)

        yield gauge('hisparc_ready', 'Whether this host can take uploads (/hisparc/ready).', self.ready)
        yield gauge('hisparc_healthy', 'Whether the whole datastore is well (/hisparc/health).', self.healthy)
        folders = GaugeMetricFamily('hisparc_spool_files', 'Files in each spool folder.', labels=['folder'])
        for name, count in figures['folders'].items():
            folders.add_metric([name], count)
        yield folders
        yield gauge(
            'hisparc_queue_oldest_age_seconds',
            'Age of the oldest file waiting in incoming/ (0 when none waits).',
            figures['queue']['oldest_age'] or 0,
        )
        # the limits of [General], so that alerting rules compare with the configured ones
        yield gauge(
            'hisparc_max_queue_age_seconds',
            'How long the oldest queued file may wait ([General] max_queue_age).',
            self.config.max_queue_age,
        )
        yield gauge(
            'hisparc_max_pause_seconds',
            'How long the writer may be paused ([General] max_pause).',
            self.config.max_pause,
        )
        yield gauge('hisparc_writer_running', 'Whether the writer is alive and reporting.', writer['running'])
        yield gauge(
            'hisparc_writer_waiting',
            'Whether the writer waits (disk full, a locked day file).',
            writer['running'] and writer['state'] == 'waiting',
        )
        yield gauge('hisparc_writer_paused', 'Whether writer.pause exists.', writer['paused'])
        yield gauge(
            'hisparc_writer_paused_seconds',
            'How long the writer has been asked to pause (0 when it is not).',
            0 if paused is None else max(0.0, figures['time'] - paused),
        )
        if writer['updated'] is not None:
            yield gauge(
                'hisparc_writer_status_updated_timestamp_seconds',
                'When the writer last reported its status.',
                writer['updated'],
            )
        yield CounterMetricFamily(
            'hisparc_writer_events_stored',
            'Events stored in day files by the running writer (restarts at 0 with the writer).',
            value=writer['events_stored'] or 0,
        )
        yield gauge('hisparc_damaged_day_files', 'Day files found damaged.', len(figures['damaged_days']))
        yield gauge(
            'hisparc_audit_unaccounted_batches',
            'Acknowledged batches the last audit could not account for.',
            audit.get('unaccounted', 0),
        )
        if audit:
            yield gauge('hisparc_audit_timestamp_seconds', 'When the last audit ran.', audit['time'])
        for name, key, help_ in (
            (
                'hisparc_station_last_upload_timestamp_seconds',
                'last_upload',
                'When each station last delivered.',
            ),
            (
                'hisparc_station_last_stored_event_timestamp_seconds',
                'last_stored_event',
                'Timestamp of the last event stored per station.',
            ),
        ):
            family = GaugeMetricFamily(name, help_, labels=['station'])
            for number, entry in stations.items():
                if entry[key] is not None:
                    family.add_metric([number], entry[key])
            yield family
