"""``hisparc-datastore serve`` (``make serve``): the datastore on loopback, for a trial.

uWSGI with the production options of ``uwsgi_ini`` (the upload and status
apps, the writer attached), on 127.0.0.1, with a configuration under
``--var`` written on first use.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shlex
import shutil
import socket
import sys

from datastore import config as config_mod
from datastore import datadir, uwsgi_ini

from . import check_config
from .common import Command, Failure, load_config, positive

UPLOAD_PATH, STATUS_PATH = '/hisparc/upload', '/hisparc/status'
DEFAULT_CONFIG_TEXT = """\
# Written by `hisparc-datastore serve` for a local trial; see config.ini.example.
[General]
log = {var}/log/hisparc.log
loglevel = info
station_list = {var}/station_list.csv
data_dir = {var}/data

[Writer]
sleep = 1
"""
DEMO_STATIONS = '99,Demo,demo\n'
INI_HEADER = """\
; Written by `hisparc-datastore serve` on each start: the production options
; (examples/uwsgi.ini) on loopback, with the apps of the installed package.
"""


def prepare_var(var: str) -> str:
    """Write var/config.ini and var/station_list.csv unless there; return the config path."""
    folder = pathlib.Path(var).resolve()
    (folder / 'log').mkdir(parents=True, exist_ok=True)
    path = folder / 'config.ini'
    if not path.exists():
        path.write_text(DEFAULT_CONFIG_TEXT.format(var=folder), encoding='utf-8')
        station_list = folder / 'station_list.csv'
        if not station_list.exists():
            station_list.write_text(DEMO_STATIONS, encoding='utf-8')
    return str(path)


def ini(config: config_mod.Config, var: str, port: int, processes: int) -> str:
    """The uWSGI ini of ``serve``: the production settings, on loopback."""
    run_dir = os.path.join(var, 'run')
    os.makedirs(run_dir, exist_ok=True)
    return uwsgi_ini.render(
        {
            'home_dir': var,
            'venv': sys.prefix,
            'python': sys.executable,
            'config_file': config.path,
            'run_dir': run_dir,
            'http_socket': f'127.0.0.1:{port}',
            'processes': str(processes),
            'upload_app': 'wsgi.apps:upload',
            'status_app': 'wsgi.apps:status',
            # exec: uWSGI runs it with /bin/sh -c, and its signals must reach the writer
            'writer': f'{shlex.quote(sys.executable)} -m writer',
        },
        header=INI_HEADER,
    )


def busy(port: int) -> str | None:
    """Why uWSGI could not listen on 127.0.0.1:``port``, or None (asked before the banner, not after)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uWSGI binds
        try:
            probe.bind(('127.0.0.1', port))
        except OSError as exc:
            return f'cannot listen on 127.0.0.1:{port}: {exc.strerror} (choose another with --port)'
    return None


def run(args: argparse.Namespace) -> int:
    configfile = prepare_var(args.var)
    found, _ = check_config.problems(configfile)
    if found:
        raise Failure(f'{configfile} cannot be served:\n  ' + '\n  '.join(found))
    config = load_config(configfile)
    datadir.DataDir(config.data_dir).ensure()
    uwsgi = shutil.which(
        'uwsgi', path=f'{os.path.dirname(sys.executable)}{os.pathsep}{os.environ.get("PATH", "")}'
    )
    if uwsgi is None:
        raise Failure("uWSGI is not installed: pip install '.[serve]'")
    port_problem = busy(args.port)
    if port_problem:
        raise Failure(port_problem)
    var = os.path.dirname(configfile)
    ini_path = os.path.join(var, 'uwsgi.ini')
    pathlib.Path(ini_path).write_text(ini(config, var, args.port, args.processes), encoding='utf-8')
    base = f'http://127.0.0.1:{args.port}'
    command = os.path.join(os.path.dirname(sys.argv[0]), 'hisparc-datastore')
    print(
        f"""\
HiSPARC datastore on {base}
  upload URL    {base}{UPLOAD_PATH}
  status URL    {base}{STATUS_PATH}  (?format=prometheus)
  config        {configfile}
  station list  {config.station_list}
  data          {config.data_dir}  (HDF5 files by date, spool folders)
  logs          {config.log}-wsgi, {config.log}-writer
  uWSGI         {ini_path}
Send a test upload:
  {command} simulate --url {base}{UPLOAD_PATH} --station 99 --password demo --batches 1
Then: {command} status --config {configfile}
Ctrl-C stops the server and the writer.
""",
        flush=True,
    )
    os.environ[config_mod.ENVIRONMENT] = configfile  # for the apps' default_path()
    os.execv(uwsgi, [uwsgi, '--ini', ini_path])  # noqa: S606 (this process becomes uWSGI)
    return 1  # not reached


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--var', default='var', help='folder of config, data and logs (default var/)')
    parser.add_argument('--port', type=int, default=8080, help='port on 127.0.0.1 (default 8080)')
    parser.add_argument('--processes', type=positive, default=2, help='uWSGI workers (default 2)')


COMMANDS = (
    Command(
        'serve',
        'run uWSGI (upload and status apps) and the writer on 127.0.0.1, '
        'with a default configuration under --var',
        run,
        arguments,
        config=False,
    ),
)
