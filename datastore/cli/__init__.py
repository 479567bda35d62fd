"""``hisparc-datastore``: the operator's tools, one module per command.

    serve          run the datastore locally (uWSGI + writer) with a default config under var/
    status         the health verdict, queue, held files, the writer, every station (exit 1: unwell)
    pause/resume   ask the writer to stop storing for a while (data_dir/writer.pause)
    requeue        move reviewed files from suspicious/ back to incoming/
    inspect        what a spool file holds and why it was held or failed
    check-config   explain every problem of config.ini and the station list
    simulate       post realistic station uploads and report the return codes and rates

Commands that need the writer's code (PyTables) come from the installed
``writer`` package through the entry-point group ``hisparc_datastore.commands``
(as Flask finds its ``flask.commands``): this core imports nothing of it.
Bad input ends in one line that says what is wrong (exit 1 or 2), never a
traceback.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import sys
from collections.abc import Iterator, Sequence

from . import check_config, inspect, pause, requeue, serve, simulate, status
from .common import Command, Failure, add_config_argument

MODULES = (serve, status, pause, requeue, inspect, check_config, simulate)
ENTRY_POINTS = 'hisparc_datastore.commands'


def commands() -> Iterator[Command]:
    for module in MODULES:
        yield from module.COMMANDS
    if sys.version_info >= (3, 10):
        found = importlib.metadata.entry_points(group=ENTRY_POINTS)
    else:
        found = importlib.metadata.entry_points().get(ENTRY_POINTS, ())
    for entry in found:
        try:
            module = entry.load()
        except ImportError as exc:  # the endpoint alone: no PyTables
            yield _missing(entry.name, exc)
        else:
            yield from module.COMMANDS


def _missing(name: str, exc: ImportError) -> Command:
    def run(_args: argparse.Namespace) -> int:
        raise Failure(f"needs the writer's packages (pip install '.[writer]'): {exc}")

    return Command(
        name, f"(needs the writer's packages: {exc.name})", run, lambda _parser: None, config=False
    )


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog='hisparc-datastore', description='The HiSPARC datastore: operator tools.'
    )
    sub = top.add_subparsers(dest='command', required=True, metavar='COMMAND')
    for command in commands():
        cmd = sub.add_parser(command.name, help=command.help, description=command.help)
        cmd.set_defaults(run=command.run)
        if command.config:
            add_config_argument(cmd)
        command.arguments(cmd)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except BrokenPipeError:  # piped into `head`: end quietly (as the Python docs advise)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (Failure, OSError) as exc:
        print(f'hisparc-datastore {args.command}: {exc}', file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
