"""``hisparc-datastore pause`` and ``resume``: keep the writer off the day files for a while."""

from __future__ import annotations

import argparse

from datastore.datadir import WRITER_PAUSE, DataDir

from .common import Command, load_config


def pause(args: argparse.Namespace) -> int:
    data_dir = DataDir(load_config(args.config).data_dir)
    data_dir.pause()
    print(
        f'created {data_dir.path(WRITER_PAUSE)}: the writer pauses after its current pass '
        '(hisparc-datastore resume to undo)'
    )
    return 0


def resume(args: argparse.Namespace) -> int:
    data_dir = DataDir(load_config(args.config).data_dir)
    if not data_dir.resume():
        print('the writer was not paused')
        return 0
    print(f'removed {data_dir.path(WRITER_PAUSE)}: the writer resumes within a second')
    return 0


COMMANDS = (
    Command('pause', 'pause the writer (creates data_dir/writer.pause)', pause),
    Command('resume', 'let a paused writer go on', resume),
)
