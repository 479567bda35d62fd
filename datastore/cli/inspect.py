"""``hisparc-datastore inspect FILE``: what a spool file holds, and why it is where it is.

For any spool file (``incoming/``, ``suspicious/``, ``failed/``, the
archive): its station and cluster, its events per type, the dates they
carry, which events today's sound-event rule would hold and why, and for a
file the writer could not store, the reason its ledger records.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import os
import sqlite3
from typing import Any

from datastore import config as config_mod
from datastore import datadir, ledger, spoolfile

from .common import Command, Failure, load_config


def summary(event_list: list[Any]) -> tuple[collections.Counter[str], list[datetime.datetime]]:
    """(events per type, the datetimes they carry), of whatever shape the events are."""
    types: collections.Counter[str] = collections.Counter()
    dates = []
    for event in event_list:
        header = event.get('header') if isinstance(event, dict) else None
        if not isinstance(header, dict):
            types['(malformed)'] += 1
            continue
        code = header.get('eventtype_uploadcode')
        types[code if isinstance(code, str) else '(no type)'] += 1
        when = header.get('datetime')
        if isinstance(when, datetime.datetime):
            dates.append(when)
    return types, dates


def failure(data_dir: datadir.DataDir, name: str) -> str | None:
    """Why the writer's ledger says ``name`` went to failed/, or None."""
    if not os.path.exists(data_dir.path(datadir.LEDGER)):
        return None
    book = ledger.Ledger(data_dir, readonly=True)
    try:
        return book.failure(name)
    except sqlite3.Error as exc:
        return f'(the ledger cannot be read: {exc})'
    finally:
        book.close()


def report(config: config_mod.Config, path: str) -> tuple[list[str], bool]:
    """The lines that describe the spool file at ``path``, and whether it could be read."""
    data_dir = datadir.DataDir(config.data_dir)
    lines = [f'file       {path}']
    try:
        record = spoolfile.load(path)
    except (OSError, spoolfile.SpoolError) as exc:
        lines.append(f'unreadable {exc}')
        record = None
    if record is not None:
        events = record['event_list']
        types, dates = summary(events)
        lines.append(f'station    {record["station_id"]}, cluster {record["cluster"]}')
        lines.append(
            f'events     {len(events)}: ' + ', '.join(f'{code} {n}' for code, n in sorted(types.items()))
        )
        if dates:
            lines.append(f'dated      {min(dates):%Y-%m-%d %H:%M:%S} to {max(dates):%Y-%m-%d %H:%M:%S} (UTC)')
        _, held = config.rule.split(events)
        reasons = collections.Counter(reason for _, reason in held)
        lines.append(
            f'held       {len(held)} of {len(events)} event(s) by the sound-event rule'
            + (': ' + '; '.join(f'{why} (x{n})' for why, n in reasons.most_common()) if held else '')
        )
    in_failed = os.path.dirname(os.path.realpath(path)) == os.path.realpath(data_dir.folder(datadir.FAILED))
    why = failure(data_dir, os.path.basename(path))
    if why or in_failed:
        lines.append(f'failed     {why or "no reason in the ledger (see the writer log)"}')
    return lines, record is not None


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    if not os.path.isfile(args.file):
        raise Failure(f'{args.file} is not a file')
    lines, readable = report(config, args.file)
    print('\n'.join(lines))
    return 0 if readable else 1


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('file', help='a spool file (in incoming/, suspicious/, failed/ or the archive)')


COMMANDS = (
    Command(
        'inspect',
        'summarise a spool file: station, events per type, dates, what the sound-event rule '
        "holds and why, and the writer's reason for a file in failed/",
        run,
        arguments,
    ),
)
