"""``hisparc-datastore status``: the health verdict, the queue, held files, the writer, and every station.

Exits 1 when the datastore is not well (the reasons of ``/hisparc/health``).
"""

from __future__ import annotations

import argparse
import json

from datastore import config as config_mod
from datastore import datadir, health, status
from datastore.readable import ago, when

from .common import Command, load_config


def run(args: argparse.Namespace) -> int:
    # A broken file still shows the figures of the data_dir it names, and what is wrong
    config = config_mod.salvage(args.config) or load_config(args.config)
    figures = status.gather(config)
    reasons = health.health(config, figures, create=False)  # run as another user, perhaps
    if args.json:
        figures['health'] = {'healthy': not reasons, 'reasons': reasons}
        print(json.dumps(figures, indent=1))
        return 1 if reasons else 0
    print('health     ' + ('well' if not reasons else 'UNWELL'))
    for reason in reasons:
        print(f'           - {reason}')
    now, folders, writer = figures['time'], figures['folders'], figures['writer']
    queue = figures['queue']
    print(f'data_dir   {figures["data_dir"]}')
    for problem in figures['config_problems']:
        print(f'config     PROBLEM {problem}')
    if figures['config_problems']:
        print('           the running processes keep their last good configuration until it is mended')
    print(
        f'queue      {queue["files"]} file(s) in incoming/'
        + (f', oldest waiting {ago(queue["oldest_age"])}' if queue['files'] else '')
    )
    print(
        'held       '
        + '   '.join(
            f'{name}/ {folders[name]}' for name in (datadir.SUSPICIOUS, datadir.FAILED, datadir.PARTIAL)
        )
    )
    if writer['running']:
        state = f'{writer["state"]}: {writer["reason"]}' if writer['reason'] else writer['state']
        print(
            f'writer     running (pid {writer["pid"]}, {state}, '
            f'reported {ago(now - writer["updated"])} ago), '
            f'{writer["events_stored"]} events stored since it started'
        )
    elif writer['updated'] is None:
        print('writer     not running (it has never written writer.status)')
    else:
        print(f'writer     NOT RUNNING (last report {ago(now - writer["updated"])} ago, pid {writer["pid"]})')
    if writer['paused']:
        print(f'           paused: {datadir.WRITER_PAUSE} exists (hisparc-datastore resume)')
    for day, reason in figures['damaged_days'].items():
        print(f'damaged    {day}: {reason}')
        print(f'           its events wait; hisparc-datastore rebuild {day}')
    last = figures['audit']
    if last:
        print(
            f'audit      {last["unaccounted"]} of {last["batches"]} batch(es) unaccounted for '
            f'(last audit {ago(now - last["time"])} ago{", deep" if last["deep"] else ""})'
        )
    if figures['stations']:
        print()
        table(
            ('station', 'last upload (UTC)', 'last stored event (UTC)'),
            [
                (number, when(entry['last_upload'], now), when(entry['last_stored_event'], now))
                for number, entry in figures['stations'].items()
            ],
        )
    return 1 if reasons else 0


def table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    """Print columns as wide as their widest cell; the first right-aligned (numbers)."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        cells = [row[0].rjust(widths[0])] + [cell.ljust(width) for cell, width in zip(row[1:], widths[1:])]
        print('  '.join(cells).rstrip())


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--json', action='store_true', help='print the figures as JSON')


COMMANDS = (
    Command(
        'status',
        'show the health verdict, the queue, held files, the writer and every station (exit 1: unwell)',
        run,
        arguments,
    ),
)
