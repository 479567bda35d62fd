"""``hisparc-datastore``: the operator's tools.

    serve          run the datastore locally (uWSGI + writer) with a default config under var/
    status         queue depth, held files, the writer, last upload and stored event per station
    pause/resume   ask the writer to stop storing for a while (data_dir/writer.pause)
    requeue        move reviewed files from suspicious/ back to incoming/
    check-config   explain every problem of config.ini and the station list
    simulate       post realistic station uploads and report the return codes and rates

Bad input ends in one line that says what is wrong (exit 1 or 2), never a traceback.
"""
import argparse
import calendar
import datetime
import http.client
import itertools
import json
import os
import pathlib
import pickle
import random
import shlex
import shutil
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from . import config as config_mod
from . import eventtypes, factory, py2pickle, spool, stations, status, uploadform

DEFAULT_CONFIG = config_mod.default_path()
UPLOAD_PATH, STATUS_PATH = '/hisparc/upload', '/hisparc/status'
ROOT = pathlib.Path(__file__).resolve().parent.parent


class Failure(Exception):
    """Ends the command with this message and exit status 1."""


def load_config(path):
    try:
        return config_mod.load(path)
    except config_mod.ConfigError as exc:
        raise Failure(str(exc)) from None


def ago(seconds):
    """``seconds`` in two units a person reads at a glance."""
    if seconds is None:
        return 'never'
    s = int(seconds)
    if s < 60:
        return f'{s} s'
    if s < 3600:
        return f'{s // 60} min {s % 60} s'
    if s < 86400:
        return f'{s // 3600} h {s % 3600 // 60} min'
    return f'{s // 86400} d {s % 86400 // 3600} h'


def when(timestamp, now):
    if timestamp is None:
        return '-'
    text = datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc)
    delta = now - timestamp     # negative for an event from a station clock that runs ahead
    relative = f'{ago(delta)} ago' if delta >= 0 else f'{ago(-delta)} ahead'
    return f'{text:%Y-%m-%d %H:%M:%S} ({relative})'


# -- status, pause, resume -----------------------------------------------------

def cmd_status(args):
    figures = status.gather(load_config(args.config))
    if args.json:
        print(json.dumps(figures, indent=1))
        return 0
    now, folders, writer = figures['time'], figures['folders'], figures['writer']
    queue = figures['queue']
    print(f"data_dir   {figures['data_dir']}")
    print(f"queue      {queue['files']} file(s) in incoming/"
          + (f", oldest waiting {ago(queue['oldest_age'])}" if queue['files'] else ''))
    print('held       ' + '   '.join(f'{name}/ {folders[name]}'
                                     for name in (spool.SUSPICIOUS, spool.FAILED, spool.PARTIAL)))
    if writer['running']:
        print(f"writer     running (pid {writer['pid']}, {writer['state']}, "
              f"reported {ago(now - writer['updated'])} ago), "
              f"{writer['events_stored']} events stored since it started")
    elif writer['updated'] is None:
        print('writer     not running (it has never written writer.status)')
    else:
        print(f"writer     NOT RUNNING (last report {ago(now - writer['updated'])} ago, pid {writer['pid']})")
    if writer['paused']:
        print(f'           paused: {spool.WRITER_PAUSE} exists (hisparc-datastore resume)')
    if figures['stations']:
        print(f"\n{'station':>7}  {'last upload (UTC)':<36}last stored event (UTC)")
        for number, entry in figures['stations'].items():
            print(f"{number:>7}  {when(entry['last_upload'], now):<36}"
                  f"{when(entry['last_stored_event'], now)}")
    return 0


def cmd_pause(args):
    config = load_config(args.config)
    path = os.path.join(config.data_dir, spool.WRITER_PAUSE)
    if args.resume:
        try:
            os.unlink(path)
        except FileNotFoundError:
            print('the writer was not paused')
            return 0
        print(f'removed {path}: the writer resumes within a second')
    else:
        os.makedirs(config.data_dir, exist_ok=True)
        with open(path, 'a', encoding='utf-8'):
            pass
        print(f'created {path}: the writer pauses after its current pass '
              '(hisparc-datastore resume to undo)')
    return 0


# -- requeue -------------------------------------------------------------------

def parse_date(text):
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r} is not a date (YYYY-MM-DD)') from None


def day_start(date):
    return calendar.timegm(date.timetuple())


def cmd_requeue(args):
    # The endpoint's screening: the writer holds back at least these events again.
    from wsgi import screening

    config = load_config(args.config)
    if not (args.station or args.since or args.until or args.all):
        raise Failure('say which files: --station, --since/--until, or --all')
    since = day_start(args.since) if args.since else float('-inf')
    until = day_start(args.until) + 86400 if args.until else float('inf')
    incoming = spool.folder(config.data_dir, spool.INCOMING)
    moved = kept = 0
    for path in spool.queued(config.data_dir, spool.SUSPICIOUS):
        name = os.path.basename(path)
        try:
            mtime = os.stat(path).st_mtime
            record = spool.load(path)
        except (OSError, spool.SpoolError) as exc:
            print(f'skip {name}: cannot read it as a spool file ({exc})')
            kept += 1
            continue
        if args.station and record['station_id'] not in args.station:
            continue
        if not since <= mtime < until:
            continue
        good, held = screening.split(record['event_list'], config.minimum_year)
        if not good and not args.force:
            print(f"keep {name}: station {record['station_id']}, all {len(held)} event(s) would be "
                  f'held back again (dated before {config.minimum_year}, undated or malformed)')
            kept += 1
            continue
        target = os.path.join(incoming, name)
        if os.path.exists(target):
            print(f'skip {name}: incoming/ already holds a file of that name')
            kept += 1
            continue
        note = f', {len(held)} of them will be held back again' if held else ''
        print(f"{'would move' if args.dry_run else 'move'} {name}: "
              f"station {record['station_id']}, {len(record['event_list'])} event(s){note}")
        if not args.dry_run:
            os.makedirs(incoming, exist_ok=True)
            os.rename(path, target)
        moved += 1
    if moved and not args.dry_run:
        spool.fsync_dir(incoming)
        spool.fsync_dir(spool.folder(config.data_dir, spool.SUSPICIOUS))
    print(f"{moved} file(s) {'would be ' if args.dry_run else ''}moved to incoming/, {kept} kept")
    return 0


# -- check-config --------------------------------------------------------------

def writable_dir(path):
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


def check(path):
    """([problems], [warnings]) of the config file at ``path`` and what it names."""
    import configparser

    problems, warnings = [], []
    parser = configparser.ConfigParser(inline_comment_prefixes=('#', ';'), interpolation=None)
    try:
        parser.read(path, encoding='utf-8')
    except configparser.Error:
        pass                            # config.load below explains it
    known = {(section, key) for section, key, _, _ in config_mod.KEYS}
    for section in parser.sections():
        for key in parser[section]:
            if (section, key) not in known:
                warnings.append(f'[{section}] {key} is not a known key; it is ignored')
    try:
        config = config_mod.load(path)
    except config_mod.ConfigError as exc:
        return [str(exc)], warnings
    log_dir = os.path.dirname(os.path.abspath(config.log))
    if config.log != '-' and (why := writable_dir(log_dir)):
        problems.append(f'log = {config.log}: {why}')
    if (why := writable_dir(config.data_dir)):
        problems.append(f'data_dir = {config.data_dir}: {why}')
    tmp, incoming = (spool.folder(config.data_dir, name) for name in (spool.TMP, spool.INCOMING))
    if os.path.isdir(tmp) and os.path.isdir(incoming) \
            and os.stat(tmp).st_dev != os.stat(incoming).st_dev:
        problems.append(f'{tmp} and {incoming} are on different filesystems; '
                        'delivery by rename needs one')
    try:
        listed, station_problems = stations.read(config.station_list)
    except OSError as exc:
        problems.append(f'station_list = {config.station_list}: cannot read it ({exc.strerror})')
    else:
        problems += [f'{config.station_list} line {lineno}: {problem}'
                     for lineno, problem in station_problems]
        if not listed:
            problems.append(f'{config.station_list} lists no stations: every upload would get 206')
    return problems, warnings


def cmd_check_config(args):
    problems, warnings = check(args.config)
    for warning in warnings:
        print(f'warning: {warning}')
    for problem in problems:
        print(f'problem: {problem}')
    if problems:
        print(f'{args.config}: {len(problems)} problem(s)')
        return 1
    print(f'{args.config}: OK')
    return 0


# -- simulate ------------------------------------------------------------------

MIXES = {
    'real': (('CIC', 36), ('SIN', 64)),             # a real 100-event batch
    'every-type': tuple((code, 1) for code in eventtypes.EVENT_TYPES),
}


def scaled(mix, size):
    """The counts of ``mix`` scaled to ``size`` events in all."""
    total = sum(count for _, count in mix)
    counts = [size * count // total for _, count in mix]
    for i in range(size - sum(counts)):             # hand out the remainder in order
        counts[i % len(counts)] += 1
    return tuple((code, n) for (code, _), n in zip(mix, counts) if n)


def post(url, body, timeout):
    """The reply's return code, or what went wrong instead."""
    request = urllib.request.Request(
        url, data=body, headers={'Content-Type': 'application/x-www-form-urlencoded'})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            return reply.read(64).decode('ascii', 'replace')
    except urllib.error.HTTPError as exc:
        return f'HTTP {exc.code}'
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        return f'error: {getattr(exc, "reason", exc)}'


def simulated_stations(args):
    """[(number, password)] of the stations to simulate."""
    listed = {}
    if args.station_list or args.config:
        path = args.station_list or load_config(args.config).station_list
        try:
            listed, _ = stations.read(path)
        except OSError as exc:
            raise Failure(f'cannot read station list {path}: {exc.strerror}') from None
    numbers = args.station or sorted(listed)[:args.stations]
    if not numbers:
        raise Failure('no station to simulate: give --station N (with --password), '
                      'or --config/--station-list')
    chosen = []
    for number in numbers:
        password = args.password if args.password is not None else \
            getattr(listed.get(number), 'password', None)
        if password is None:
            raise Failure(f'no password for station {number}: give --password, '
                          'or a station list that lists it')
        chosen.append((number, password))
    return chosen


def cmd_simulate(args):
    from wsgi import rcodes

    chosen = simulated_stations(args)
    mix = scaled(MIXES[args.mix], args.batch_size)
    dump = py2pickle.dumps if args.pickle == 'py2' else pickle.dumps
    rng = random.Random(args.seed)
    first_day = datetime.datetime.combine(args.date, datetime.time()) if args.date else None
    replies, events, sent_bytes, latency = {}, 0, 0, 0.0
    began = time.monotonic()
    deadline = began + args.duration if args.duration else float('inf')
    interval = 1.0 / args.rate if args.rate else 0.0
    if args.batches is None and not args.duration:
        args.batches = 1
    sent = 0
    rounds = range(args.batches) if args.batches else itertools.count()
    plan = ((round_, number, password) for round_ in rounds
            for number, password in chosen)
    for round_, number, password in plan:
        if time.monotonic() >= deadline:
            break
        if first_day:
            start = first_day + datetime.timedelta(seconds=round_ * args.batch_size)
        else:   # the last batch_size seconds, as a station uploads them
            start = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None, microsecond=0) \
                - datetime.timedelta(seconds=args.batch_size)
        batch = factory.batch(start, rng, mix=mix)
        body = uploadform.encode(number, password, dump(batch))
        pause = min(began + sent * interval, deadline) - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        t0 = time.monotonic()
        reply = post(args.url, body, args.timeout)
        latency += time.monotonic() - t0
        sent += 1
        sent_bytes += len(body)
        replies[reply] = replies.get(reply, 0) + 1
        if reply == rcodes.OK:
            events += len(batch)
    seconds = max(time.monotonic() - began, 1e-9)
    mix_text = '+'.join(f'{n} {code}' for code, n in mix)
    print(f'posted {sent} batch(es) of {args.batch_size} events ({mix_text}, {args.pickle} pickles) '
          f'for station(s) {", ".join(str(n) for n, _ in chosen)} to {args.url}')
    for reply, count in sorted(replies.items()):
        meaning = rcodes.MEANING.get(reply, '')
        print(f'  {reply:<5} {meaning:<45} {count}')
    print(f'{seconds:.2f} s: {sent / seconds:.1f} batches/s, {events / seconds:.0f} events/s stored, '
          f'{sent_bytes / seconds / 1e6:.2f} MB/s, mean reply time '
          f'{1000 * latency / max(sent, 1):.1f} ms')
    return 0 if sent and replies == {rcodes.OK: sent} else 1


# -- serve ---------------------------------------------------------------------

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


def prepare_var(var):
    """Write var/config.ini and var/station_list.csv unless there; return the config path."""
    var = pathlib.Path(var).resolve()
    (var / 'log').mkdir(parents=True, exist_ok=True)
    path = var / 'config.ini'
    if not path.exists():
        path.write_text(DEFAULT_CONFIG_TEXT.format(var=var), encoding='utf-8')
        station_list = var / 'station_list.csv'
        if not station_list.exists():
            station_list.write_text(DEMO_STATIONS, encoding='utf-8')
    return str(path)


def uwsgi_args(config, configfile, port, processes):
    """The uWSGI command line of ``serve``: the production settings, on loopback."""
    examples = ROOT / 'examples'
    apps = {UPLOAD_PATH: examples / 'application.wsgi', STATUS_PATH: examples / 'status.wsgi'}
    for path in apps.values():
        if not path.is_file():
            raise Failure(f'{path} is missing: serve runs from a source checkout')
    # uWSGI runs the command with /bin/sh -c: exec, so its signals reach the writer.
    writer = f'exec {shlex.quote(sys.executable)} -m writer {shlex.quote(configfile)}'
    return [
        '--strict', '--master', '--need-app', '--die-on-term', '--vacuum',
        '--http-socket', f'127.0.0.1:{port}',
        '--processes', str(processes), '--threads', '1',
        '--virtualenv', sys.prefix,
        # One interpreter for both apps; the first mount is the default app,
        # so every path but the status URL reaches the upload endpoint.
        '--single-interpreter', '--manage-script-name',
        '--mount', f'{UPLOAD_PATH}={apps[UPLOAD_PATH]}',
        '--mount', f'{STATUS_PATH}={apps[STATUS_PATH]}',
        '--limit-post', str(config.max_upload_bytes),
        '--post-buffering', '65536',
        '--harakiri', '300', '--socket-timeout', '60',
        # The writer: started with uWSGI, restarted by the master if it dies,
        # stopped with SIGTERM when uWSGI stops.
        '--attach-daemon2', f'cmd={writer},stopsignal=15',
    ]


def cmd_serve(args):
    configfile = prepare_var(args.var)
    problems, _ = check(configfile)
    if problems:
        raise Failure(f'{configfile} cannot be served:\n  ' + '\n  '.join(problems))
    config = load_config(configfile)
    for name in spool.FOLDERS:
        os.makedirs(spool.folder(config.data_dir, name), exist_ok=True)
    uwsgi = shutil.which('uwsgi', path=f'{os.path.dirname(sys.executable)}{os.pathsep}'
                                        f'{os.environ.get("PATH", "")}')
    if uwsgi is None:
        raise Failure("uWSGI is not installed: pip install -e '.[serve]'")
    command = [uwsgi] + uwsgi_args(config, configfile, args.port, args.processes)
    base = f'http://127.0.0.1:{args.port}'
    command_name = os.path.join(os.path.dirname(sys.argv[0]), 'hisparc-datastore')
    print(f"""\
HiSPARC datastore on {base}
  upload URL    {base}{UPLOAD_PATH}
  status URL    {base}{STATUS_PATH}  (?format=prometheus)
  config        {configfile}
  station list  {config.station_list}
  data          {config.data_dir}  (HDF5 files by date, spool folders)
  logs          {config.log}-wsgi, {config.log}-writer
Send a test upload:
  {command_name} simulate --url {base}{UPLOAD_PATH} --station 99 --password demo --batches 1
Then: {command_name} status --config {configfile}
Ctrl-C stops the server and the writer.
""", flush=True)
    os.environ[config_mod.ENVIRONMENT] = configfile     # for the apps' default_path()
    os.execv(uwsgi, command)


# -- the command line ----------------------------------------------------------

def parser():
    top = argparse.ArgumentParser(prog='hisparc-datastore',
                                  description='The HiSPARC datastore: operator tools.')
    sub = top.add_subparsers(dest='command', required=True, metavar='COMMAND')

    def command(name, func, help_):
        cmd = sub.add_parser(name, help=help_, description=help_)
        cmd.set_defaults(func=func)
        return cmd

    def with_config(cmd):
        cmd.add_argument('--config', '-c', default=DEFAULT_CONFIG,
                         help='config.ini (default: $HISPARC_DATASTORE_CONFIG or %(default)s)')
        return cmd

    cmd = with_config(command('status', cmd_status, 'show the queue, held files, the writer and '
                                                    'the last upload and stored event per station'))
    cmd.add_argument('--json', action='store_true', help='print the figures as JSON')

    with_config(command('pause', cmd_pause, 'pause the writer (creates data_dir/writer.pause)'))
    with_config(command('resume', cmd_pause, 'let a paused writer go on')).set_defaults(resume=True)
    sub.choices['pause'].set_defaults(resume=False)

    cmd = with_config(command(
        'requeue', cmd_requeue,
        'move reviewed files from suspicious/ back to incoming/ for the writer; '
        'a file is chosen by its station and the UTC date it was held back (its mtime)'))
    cmd.add_argument('--station', type=int, action='append', help='only this station (repeatable)')
    cmd.add_argument('--since', type=parse_date, help='held back on or after this date (YYYY-MM-DD)')
    cmd.add_argument('--until', type=parse_date, help='held back on or before this date (YYYY-MM-DD)')
    cmd.add_argument('--all', action='store_true', help='every file in suspicious/')
    cmd.add_argument('--dry-run', '-n', action='store_true', help='say what would move, move nothing')
    cmd.add_argument('--force', action='store_true',
                     help='move files whose events would all be held back again, too')

    with_config(command('check-config', cmd_check_config,
                        'check config.ini and the station list; exit 1 on any problem'))

    cmd = command('simulate', cmd_simulate,
                  'post realistic station uploads to URL and report return codes and rates')
    cmd.add_argument('--url', type=http_url, default=f'http://127.0.0.1:8080{UPLOAD_PATH}',
                     help='%(default)s')
    cmd.add_argument('--station', type=int, action='append', help='station number (repeatable)')
    cmd.add_argument('--stations', type=positive, default=1,
                     help='without --station: the first N stations of the list (default 1)')
    cmd.add_argument('--password', help='the password of every simulated station')
    source = cmd.add_mutually_exclusive_group()
    source.add_argument('--config', '-c', help='take station passwords from its station list')
    source.add_argument('--station-list', help='take station passwords from this list')
    cmd.add_argument('--batches', type=positive,
                     help='batches per station (default 1, or no limit with --duration)')
    cmd.add_argument('--duration', type=positive_number, help='stop after this many seconds')
    cmd.add_argument('--batch-size', type=positive, default=100, help='events per batch (default 100)')
    cmd.add_argument('--mix', choices=MIXES, default='real',
                     help="'real': 36%% CIC + 64%% SIN like a real batch; "
                          "'every-type': all 14 event types (default real)")
    cmd.add_argument('--pickle', choices=('py2', 'py3'), default='py2',
                     help='Python 2 protocol 0 as the stations send, or Python 3 (default py2)')
    cmd.add_argument('--rate', type=positive_number,
                     help='batches per second over all stations (default: as fast as replies come)')
    cmd.add_argument('--date', type=parse_date,
                     help='date the events on this day (default now; before 2020 tests suspicious/)')
    cmd.add_argument('--timeout', type=positive_number, default=60.0, help='seconds per request (default 60)')
    cmd.add_argument('--seed', type=int, help='random seed, for repeatable batches')

    cmd = command('serve', cmd_serve, 'run uWSGI (upload and status apps) and the writer on '
                                      '127.0.0.1, with a default configuration under --var')
    cmd.add_argument('--var', default='var', help='folder of config, data and logs (default var/)')
    cmd.add_argument('--port', type=int, default=8080, help='port on 127.0.0.1 (default 8080)')
    cmd.add_argument('--processes', type=positive, default=2, help='uWSGI workers (default 2)')
    return top


def positive(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f'{text!r} is not a positive whole number')
    return value


def positive_number(text):
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f'{text!r} is not a positive number')
    return value


def http_url(text):
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ('http', 'https') or not parts.hostname:
        raise argparse.ArgumentTypeError(f'{text!r} is not an http:// URL')
    return text


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except Failure as exc:
        print(f'hisparc-datastore {args.command}: {exc}', file=sys.stderr)
        return 1
    except OSError as exc:
        print(f'hisparc-datastore {args.command}: {exc}', file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == '__main__':
    raise SystemExit(main())
