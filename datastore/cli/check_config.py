"""``hisparc-datastore check-config``: every problem of config.ini and what it names."""

from __future__ import annotations

import argparse
import os
import pathlib

from datastore import config as config_mod
from datastore import datadir, stations

from .common import Command


def writable_dir(path: str) -> str | None:
    """A problem with creating files in directory ``path`` (or its nearest existing parent), or None."""
    probe = pathlib.Path(path)
    while not probe.exists():
        if probe.parent == probe:
            return f'{path}: no existing parent directory'
        probe = probe.parent
    if not probe.is_dir():
        return f'{probe} is not a directory'
    if not os.access(probe, os.W_OK | os.X_OK):
        return f'{probe} is not writable by this user'
    return None


def problems(path: str) -> tuple[list[str], list[str]]:
    """([problems], [warnings]) of the config file at ``path`` and what it names."""
    config, found, warnings = config_mod.read(path)
    if config is None:
        return found, warnings
    log_dir = os.path.dirname(os.path.abspath(config.log))
    if config.log != '-' and (why := writable_dir(log_dir)):
        found.append(f'log = {config.log}: {why}')
    if why := writable_dir(config.data_dir):
        found.append(f'data_dir = {config.data_dir}: {why}')
    data_dir = datadir.DataDir(config.data_dir)
    tmp, incoming = (data_dir.folder(name) for name in (datadir.TMP, datadir.INCOMING))
    if os.path.isdir(tmp) and os.path.isdir(incoming) and os.stat(tmp).st_dev != os.stat(incoming).st_dev:
        found.append(f'{tmp} and {incoming} are on different filesystems; delivery by rename needs one')
    try:
        listed, station_problems = stations.read(config.station_list)
    except OSError as exc:
        found.append(f'station_list = {config.station_list}: cannot read it ({exc.strerror})')
    else:
        found += [f'{config.station_list} line {lineno}: {problem}' for lineno, problem in station_problems]
        if not listed:
            found.append(f'{config.station_list} lists no stations: every upload would get 206')
    return found, warnings


def run(args: argparse.Namespace) -> int:
    found, warnings = problems(args.config)
    for warning in warnings:
        print(f'warning: {warning}')
    for problem in found:
        print(f'problem: {problem}')
    if found:
        print(f'{args.config}: {len(found)} problem(s)')
        return 1
    print(f'{args.config}: OK')
    return 0


COMMANDS = (Command('check-config', 'check config.ini and the station list; exit 1 on any problem', run),)
