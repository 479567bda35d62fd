"""Is the datastore well? The verdicts of ``/hisparc/ready``, ``/hisparc/health`` and ``status``.

- **Ready**: this host can take uploads: its configuration is good, its
  station list readable and not empty, its batch record reachable (a
  PostgreSQL ``resend_database``), its spool writable (a file is
  created and removed in ``tmp/``).
- **Healthy**: ready, and the whole datastore is well: the writer running
  and not waiting, nothing in ``failed/``, no damaged day file, no batch the
  last audit could not account for, the oldest queued file younger than
  ``[General] max_queue_age``, the writer paused no longer than
  ``[General] max_pause``.

Each verdict is a list of reasons, every one that applies; empty means well.
"""

from __future__ import annotations

import os
from typing import Any

from . import received, stations
from .config import Config
from .datadir import FAILED, TMP, DataDir


def ready(config: Config, create: bool = True) -> list[str]:
    """Why this host cannot take uploads now (empty: it can).

    ``create``: make tmp/ where missing, as the first upload would; the
    endpoint's probe does, a command run by another user must not.
    """
    reasons = []
    try:
        listed, _ = stations.read(config.station_list)
    except OSError as exc:
        reasons.append(f'station list {config.station_list} unreadable: {exc.strerror or exc}')
    else:
        if not listed:
            reasons.append(f'station list {config.station_list} lists no station')
    try:
        received.connect(config).check()
    except received.Unavailable as exc:
        reasons.append(f'batch record unreachable: {exc}')
    try:
        _probe(DataDir(config.data_dir), create)
    except OSError as exc:
        reasons.append(f'spool not writable: {exc.filename}: {exc.strerror or exc}')
    return reasons


def _probe(data_dir: DataDir, create: bool) -> None:
    """Create and remove a file where uploads are written first: tmp/.

    Without ``create``, a missing tmp/ is probed in its nearest existing
    parent folder, where the first upload would create it.
    """
    folder = data_dir.folder(TMP)
    if create:
        data_dir.ensure(TMP)
    while not os.path.isdir(folder) and os.path.dirname(folder) != folder:
        folder = os.path.dirname(folder)
    probe = os.path.join(folder, f'.ready-{os.getpid()}')
    fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, b'ready')
    finally:
        os.close(fd)
        os.unlink(probe)


def health(config: Config, figures: dict[str, Any], create: bool = True) -> list[str]:
    """Why the datastore is not well: this host's ``ready`` reasons, then the ``problems`` of the figures."""
    return ready(config, create) + problems(config, figures)


def problems(config: Config, figures: dict[str, Any]) -> list[str]:
    """What is wrong beyond this host's readiness, in the figures of ``status.gather``."""
    reasons = [
        f'config.ini on disk not taken up: {problem}' for problem in figures.get('config_problems') or []
    ]
    writer, queue = figures['writer'], figures['queue']
    if not writer['running']:
        reasons.append('the writer is not running')
    elif writer['state'] == 'waiting':
        reasons.append(f'the writer waits: {writer["reason"]}')
    if figures['folders'][FAILED]:
        reasons.append(f'{figures["folders"][FAILED]} spool file(s) in failed/')
    reasons += [f'day file {day} damaged: {why}' for day, why in figures['damaged_days'].items()]
    last = figures['audit']
    if last and last['unaccounted']:
        reasons.append(f'the last audit could not account for {last["unaccounted"]} batch(es)')
    age = queue['oldest_age'] or 0
    if age > config.max_queue_age:
        reasons.append(f'the oldest queued file waits {age:.0f} s (more than {config.max_queue_age:g})')
    paused = writer.get('paused_since')
    if paused is not None and figures['time'] - paused > config.max_pause:
        reasons.append(
            f'the writer is paused for {figures["time"] - paused:.0f} s (more than {config.max_pause:g})'
        )
    return reasons
