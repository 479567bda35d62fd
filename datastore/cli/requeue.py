"""``hisparc-datastore requeue``: move reviewed files from suspicious/ back to incoming/."""

from __future__ import annotations

import argparse
import calendar
import datetime
import os

from datastore import datadir, spoolfile

from .common import Command, Failure, date, load_config, operator, operator_log


def day_start(day: datetime.date) -> int:
    return calendar.timegm(day.timetuple())


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    if not (args.station or args.since or args.until or args.all):
        raise Failure('say which files: --station, --since/--until, or --all')
    since = day_start(args.since) if args.since else float('-inf')
    until = day_start(args.until) + 86400 if args.until else float('inf')
    data_dir = datadir.DataDir(config.data_dir)
    log = None if args.dry_run else operator_log(config, 'requeue')
    incoming = data_dir.folder(datadir.INCOMING)
    moved = kept = 0
    for path in data_dir.queued(datadir.SUSPICIOUS):
        name = os.path.basename(path)
        try:
            mtime = os.stat(path).st_mtime
            record = spoolfile.load(path)
        except (OSError, spoolfile.SpoolError) as exc:
            print(f'skip {name}: cannot read it as a spool file ({exc})')
            kept += 1
            continue
        if args.station and record['station_id'] not in args.station:
            continue
        if not since <= mtime < until:
            continue
        # The writer holds back at least these events again: it applies the same rule.
        good, held = config.rule.split(record['event_list'])
        if not good and not args.force:
            print(
                f'keep {name}: station {record["station_id"]}, all {len(held)} event(s) would be '
                f'held back again ({held[0][1]})'
            )
            kept += 1
            continue
        if os.path.exists(os.path.join(incoming, name)):
            print(f'skip {name}: incoming/ already holds a file of that name')
            kept += 1
            continue
        note = f', {len(held)} of them will be held back again' if held else ''
        print(
            f'{"would move" if args.dry_run else "move"} {name}: '
            f'station {record["station_id"]}, {len(record["event_list"])} event(s){note}'
        )
        if log:
            data_dir.requeue(path)
            log.info(
                'requeued %s (station %s, %d event(s)) by %s',
                name,
                record['station_id'],
                len(record['event_list']),
                operator(),
            )
        moved += 1
    print(f'{moved} file(s) {"would be " if args.dry_run else ""}moved to incoming/, {kept} kept')
    return 0


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--station', type=int, action='append', help='only this station (repeatable)')
    parser.add_argument('--since', type=date, help='held back on or after this date (YYYY-MM-DD)')
    parser.add_argument('--until', type=date, help='held back on or before this date (YYYY-MM-DD)')
    parser.add_argument('--all', action='store_true', help='every file in suspicious/')
    parser.add_argument('--dry-run', '-n', action='store_true', help='say what would move, move nothing')
    parser.add_argument(
        '--force', action='store_true', help='move files whose events would all be held back again, too'
    )


COMMANDS = (
    Command(
        'requeue',
        'move reviewed files from suspicious/ back to incoming/ for the writer; a file is '
        'chosen by its station and the UTC date it was held back (its mtime)',
        run,
        arguments,
    ),
)
