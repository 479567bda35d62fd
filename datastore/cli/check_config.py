"""``hisparc-datastore check-config``: every problem of config.ini and what it names.

Folders are really tried: each missing one is made (with its missing
parents), a file is written and fsynced in it, and everything made is
removed again. ``--as-user`` tries it all as the service's user, in a child
process that takes that user's identity.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import tempfile

from datastore import config as config_mod
from datastore import datadir, stations

from .common import Command, Failure


def try_folder(path: str) -> str | None:
    """Why files cannot be created in folder ``path``, or None; what it makes to find out, it removes."""
    missing = []
    probe = os.path.abspath(path)
    while not os.path.isdir(probe):
        if os.path.lexists(probe):
            return f'{probe} is not a directory'
        missing.append(probe)
        probe = os.path.dirname(probe)
    made: list[str] = []
    try:
        for folder in reversed(missing):
            try:
                os.mkdir(folder)
            except OSError as exc:
                return f'cannot create {folder}: {exc.strerror}'
            made.append(folder)
        try:
            with tempfile.NamedTemporaryFile(dir=path, prefix='.check-config-') as f:
                f.write(b'check-config')
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            return f'cannot write in {os.path.abspath(path)}: {exc.strerror}'
    finally:
        for folder in reversed(made):
            os.rmdir(folder)
    return None


def try_append(path: str) -> str | None:
    """Why an existing file cannot be appended to, or None (it is opened, never made nor written)."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_APPEND))
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f'cannot write {path}: {exc.strerror}'
    return None


def problems(path: str) -> tuple[list[str], list[str]]:
    """([problems], [warnings]) of the config file at ``path`` and of what it names: every one."""
    values, found, warnings = config_mod.parse(path)
    log = values.get('log')
    if log and log != '-':
        suffixes = (config_mod.ENDPOINT_LOG, config_mod.WRITER_LOG, config_mod.TOOLS_LOG)
        whys = [try_folder(os.path.dirname(os.path.abspath(log))), *(try_append(log + s) for s in suffixes)]
        found += [f'log = {log}: {why}' for why in whys if why]
    if values.get('data_dir'):
        found += data_dir_problems(datadir.DataDir(values['data_dir'], values.get('archive_dir') or None))
    if values.get('station_list'):
        found += station_list_problems(values['station_list'])
    return found, warnings


def data_dir_problems(data_dir: datadir.DataDir) -> list[str]:
    why = try_folder(data_dir.root)
    if why:
        return [f'data_dir = {data_dir.root}: {why}']
    # What exists already must be the user's to write too (made by root, say)
    folders = [data_dir.folder(name) for name in (*datadir.FOLDERS, datadir.LOCKS)] + [data_dir.archive_root]
    files = (datadir.RECEIVED, datadir.LEDGER, datadir.WRITER_STATUS, datadir.WRITER_LOCK)
    whys = [try_folder(folder) for folder in folders if os.path.exists(folder)]
    whys += [try_append(data_dir.path(name)) for name in files]
    found = [f'data_dir = {data_dir.root}: {why}' for why in whys if why]
    tmp, incoming = (data_dir.folder(name) for name in (datadir.TMP, datadir.INCOMING))
    if os.path.isdir(tmp) and os.path.isdir(incoming) and os.stat(tmp).st_dev != os.stat(incoming).st_dev:
        found.append(f'{tmp} and {incoming} are on different filesystems; delivery by rename needs one')
    return found


def station_list_problems(path: str) -> list[str]:
    try:
        listed, station_problems = stations.read(path)
    except OSError as exc:
        return [f'station_list = {path}: cannot read it ({exc.strerror})']
    found = [f'{path} line {lineno}: {problem}' for lineno, problem in station_problems]
    if not listed:
        found.append(f'{path} lists no stations: every upload would get 206')
    return found


def as_user(user: str, path: str) -> tuple[list[str], list[str]]:
    """``problems(path)`` found by a child process with the identity of ``user``."""
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise Failure(f'no user {user!r}') from None
    if entry.pw_uid == os.geteuid():
        return problems(path)
    if os.geteuid() != 0:
        raise Failure(f'--as-user {user} needs root (or run the check as {user})')
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: become the user, check, report, and leave without cleanup
        try:
            os.close(read_end)
            os.setgroups(os.getgrouplist(user, entry.pw_gid))
            os.setgid(entry.pw_gid)
            os.setuid(entry.pw_uid)
            os.environ.update(HOME=entry.pw_dir, USER=user, LOGNAME=user)
            try:
                result = problems(path)
            except Exception as exc:
                result = ([f'the check failed: {type(exc).__name__}: {exc}'], [])
            with os.fdopen(write_end, 'wb') as pipe:
                pipe.write(json.dumps(result).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, 'rb') as pipe:
        reply = pipe.read()
    os.waitpid(pid, 0)
    if not reply:
        raise Failure(f'the check as {user} ended without an answer')
    found, warnings = json.loads(reply)
    return found, warnings


def run(args: argparse.Namespace) -> int:
    if args.as_user:
        found, warnings = as_user(args.as_user, args.config)
    else:
        found, warnings = problems(args.config)
    who = f' (checked as {args.as_user})' if args.as_user else ''
    for warning in warnings:
        print(f'warning: {warning}')
    for problem in found:
        print(f'problem: {problem}')
    if found:
        print(f'{args.config}: {len(found)} problem(s){who}')
        return 1
    print(f'{args.config}: OK{who}')
    return 0


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        '--as-user',
        metavar='USER',
        help="check as this user (the services' user, e.g. hisparc): needs root",
    )


COMMANDS = (
    Command(
        'check-config',
        'check config.ini and what it names (log and data folders really tried, the station list); '
        'exit 1 on any problem',
        run,
        arguments,
    ),
)
