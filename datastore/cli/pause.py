"""``hisparc-datastore pause`` and ``resume``: keep the writer off the day files for a while.

``pause --wait`` returns once the writer says ``paused`` in a report written
after the pause was asked for: it writes that only with every day file
closed, so publicdb's nightly job may open them then.
"""

from __future__ import annotations

import argparse
import time

from datastore import status
from datastore.datadir import WRITER_PAUSE, DataDir

from .common import Command, Failure, load_config, operator, operator_log, positive_number

POLL = 0.2  # seconds between looks at writer.status


def pause(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    data_dir = DataDir(config.data_dir)
    log = operator_log(config, 'pause')
    asked = data_dir.pause()
    log.info('pause asked for by %s%s', operator(), '' if asked else ' (the writer was paused already)')
    print(
        f'created {data_dir.path(WRITER_PAUSE)}: the writer pauses after its current pass '
        '(hisparc-datastore resume to undo)'
    )
    if not args.wait:
        return 0
    started = time.monotonic()
    requested = data_dir.pause_requested()
    while True:
        writer = status.writer_state(data_dir, config.sleep, time.time())
        if not writer['running']:
            print('no writer is running: no day file is open')
            return 0
        if writer['state'] == 'paused' and requested is not None and writer['updated'] >= requested:
            waited = time.monotonic() - started
            log.info('the writer (pid %s) has paused, %.1f s after it was asked', writer['pid'], waited)
            print(f'the writer (pid {writer["pid"]}) has paused: every day file is closed')
            return 0
        if time.monotonic() - started > args.timeout:
            log.warning('the writer did not pause within %g s (it is %s)', args.timeout, writer['state'])
            raise Failure(
                f'the writer (pid {writer["pid"]}) has not paused within {args.timeout:g} s '
                f'(it says {writer["state"]}); it is still asked to pause'
            )
        time.sleep(POLL)


def resume(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    data_dir = DataDir(config.data_dir)
    log = operator_log(config, 'pause')
    if not data_dir.resume():
        log.info('resume asked for by %s (the writer was not paused)', operator())
        print('the writer was not paused')
        return 0
    log.info('resume asked for by %s', operator())
    print(f'removed {data_dir.path(WRITER_PAUSE)}: the writer resumes within a second')
    return 0


def pause_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        '--wait',
        action='store_true',
        help='return once the writer has closed every day file (at once if no writer runs)',
    )
    parser.add_argument(
        '--timeout',
        type=positive_number,
        default=600.0,
        help='with --wait: give up after this many seconds, exit 1 (default %(default)g)',
    )


COMMANDS = (
    Command('pause', 'pause the writer (creates data_dir/writer.pause)', pause, pause_arguments),
    Command('resume', 'let a paused writer go on', resume),
)
