"""How many stations one machine carries: uWSGI and the writer together, under a ramp of stations.

    python -m benchmarks.capacity [--kinds windows,pysparc] [--apps project,deployed-style]
                                  [--step 60] [--hold 300] [--plot benchmarks/capacity.svg]

The datastore runs as in production: uWSGI with the options of
``examples/uwsgi.ini`` (a master, 4 worker processes, 1 thread each) and the
writer attached, on a fresh ``data_dir``. A load generator of several
processes plays N stations, each posting on its own schedule with a new
connection per upload, as the clients do:

- ``windows``: the Windows DAQ client, a batch of 100 events (4 traces each)
  about once a minute;
- ``pysparc``: one event per POST, about 0.7 a second, its pulse heights and
  integrals numpy ``int32`` scalars.

Every body is distinct (a resend would be answered without storing): a few
Python 2 pickles built beforehand, each with a 9-digit nanoseconds value
changed per upload, and the checksum computed for it.

The ramp doubles N every ``--step`` seconds from 140 (the real network) until
a step fails: p99 upload latency over 1 s, any reply but ``100``, the
oldest queued file older than 60 s (the queue stops draining), or the queue
grown by more than 20 s of uploads (it is about to: a writer that falls
behind may take longer than a step to let a file age 60 s). It then
narrows the gap between the largest N that passed and the smallest that
failed to a quarter, a step at a time (after the queue has drained). The
largest N that passed is then held for ``--hold`` seconds on a fresh
datastore, and if it does not hold, 1/sqrt(2) of it; the largest N held is
the machine's capacity for that kind of station. Which part gave out says
where the time went: latency is the endpoint's (or the generator's, when the
uploads were sent late but answered in time), queue age the writer's; each
step reports the CPU each part took (the generator shares the machine). The
same harness runs the deployed-style app (``benchmarks/upload.py``) in place
of the endpoint: the reference.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import datetime
import hashlib
import heapq
import math
import multiprocessing
import os
import pathlib
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

from datastore import config as config_mod
from datastore import datadir, factory, py2pickle
from tests.support import uwsgi_server

from . import svgplot
from . import upload as upload_bench

ROOT = pathlib.Path(__file__).resolve().parent.parent
START = 140  # stations: the real network
MAX_STATIONS = 40_000
P99_LIMIT = 1.0  # seconds
AGE_LIMIT = 60.0  # seconds: the oldest queued file
FINEST = 1.25  # the ramp narrows the gap between passing and failing to this ratio
HOLDS = 2  # numbers tried for the hold, each 1/sqrt(2) of the one before
# seconds of uploads the queue may grow by in a ramp step; more than a writer that keeps up leaves
# queued between two passes (a pass of one-event files can take 10 s)
GROWTH = 20.0
CLIENT_PROCESSES = 2
CLIENT_THREADS = 400  # stations wait for their reply: enough that a slow server never starves them
TEMPLATES = 16
MARK = 987654321  # the nanoseconds of each template's first event, replaced per upload


@dataclasses.dataclass(frozen=True)
class Kind:
    name: str
    events: int  # per upload
    period: float  # seconds between a station's uploads
    types: tuple[tuple[str, int], ...]
    numpy: frozenset[str] = frozenset()  # upload codes sent as numpy int32 scalars


KINDS = {
    'windows': Kind('windows', 100, 60.0, (('CIC', 36), ('SIN', 64))),
    'pysparc': Kind('pysparc', 1, 1 / 0.7, (('CIC', 1),), frozenset({'PH1', 'PH2', 'IN1', 'IN2'})),
}
APPS = ('project', 'deployed-style')


# -- distinct bodies, cheaply -----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Template:
    """A pickle split around its mark: raw and form-encoded halves."""

    raw: tuple[bytes, bytes]
    encoded: tuple[bytes, bytes]


def templates(kind: Kind, day: datetime.datetime) -> list[Template]:
    made = []
    for i in range(TEMPLATES):
        rng = random.Random(i)
        events = factory.batch(day + datetime.timedelta(minutes=i), rng, mix=kind.types)[: kind.events]
        events[0]['header']['nanoseconds'] = MARK
        for event in events:
            for item in event['datalist']:
                if item['data_uploadcode'] in kind.numpy:
                    item['data'] = py2pickle.NumpyScalar(item['data'])
        pickled = py2pickle.dumps(events)
        mark = b'I%d\n' % MARK
        if pickled.count(mark) != 1:
            raise RuntimeError('the mark must occur once in the pickle')
        before, after = pickled.split(mark)
        before, after = before + b'I', b'\n' + after
        quote = urllib.parse.quote_plus
        made.append(
            Template((before, after), tuple(quote(p.decode('latin1')).encode() for p in (before, after)))
        )
    return made


def body(template: Template, station: int, unique: int) -> bytes:
    digits = b'%09d' % unique
    checksum = hashlib.md5(template.raw[0] + digits + template.raw[1]).hexdigest().encode()
    return b'station_id=%d&password=pw-%d&data=%s%s%s&checksum=%s' % (
        station,
        station,
        template.encoded[0],
        digits,
        template.encoded[1],
        checksum,
    )


def post(port: int, payload: bytes) -> str:
    head = (
        f'POST /hisparc/upload HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n'
        f'Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(payload)}\r\n\r\n'
    ).encode()
    try:
        with socket.create_connection(('127.0.0.1', port), timeout=30) as sock:
            sock.sendall(head + payload)
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
    except OSError as exc:
        return f'error: {exc}'
    return b''.join(chunks).rpartition(b'\r\n\r\n')[2].decode('latin1')


# -- the load generator ------------------------------------------------------------------------


def _client(args: tuple) -> list[tuple[float, float, float, str]]:
    """Play ``stations`` for ``seconds``: [(scheduled, lag, latency, reply)]."""
    port, kind, stations, seconds, seed, made, first_unique = args
    rng = random.Random(seed)
    began = time.monotonic()
    due = [(began + rng.uniform(0, kind.period), number) for number in stations]
    heapq.heapify(due)
    results: list[tuple[float, float, float, str]] = []
    unique = first_unique

    def one(scheduled: float, payload: bytes) -> None:
        started = time.monotonic()
        reply = post(port, payload)
        results.append((scheduled - began, started - scheduled, time.monotonic() - started, reply))

    with ThreadPoolExecutor(CLIENT_THREADS) as pool:
        while due and due[0][0] < began + seconds:
            when, number = heapq.heappop(due)
            pause = when - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            pool.submit(one, when, body(made[unique % len(made)], number, unique))
            unique += 1
            heapq.heappush(due, (when + kind.period, number))
    return results


def generate(port: int, kind: Kind, stations: int, seconds: float, made: list[Template], step: int) -> list:
    numbers = list(range(1000, 1000 + stations))
    shares = []
    for p in range(CLIENT_PROCESSES):
        share = step * CLIENT_PROCESSES + p  # < 200: its uploads' marks stay 9 digits
        shares.append(
            (port, kind, numbers[p::CLIENT_PROCESSES], seconds, share, made, 100_000_000 + share * 4_000_000)
        )
    with multiprocessing.get_context('fork').Pool(CLIENT_PROCESSES) as clients:
        return [result for share in clients.map(_client, shares) for result in share]


# -- watching the datastore ------------------------------------------------------------------------


class Watch:
    """Samples the age of the oldest queued file every second, in a thread of its own."""

    def __init__(self, data_dir: str) -> None:
        self.incoming = os.path.join(data_dir, datadir.INCOMING)
        self.samples: list[tuple[float, float, int]] = []  # (time, oldest age, files)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            self.samples.append((time.monotonic(), *self.now()))

    def now(self) -> tuple[float, int]:
        oldest, files = None, 0
        with os.scandir(self.incoming) as entries:
            for entry in entries:
                try:
                    mtime = entry.stat().st_mtime
                except FileNotFoundError:
                    continue
                files += 1
                oldest = mtime if oldest is None else min(oldest, mtime)
        return (0.0 if oldest is None else max(0.0, time.time() - oldest)), files

    def worst(self, since: float) -> tuple[float, int]:
        seen = [(age, files) for t, age, files in self.samples if t >= since]
        return max(seen) if seen else self.now()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = pathlib.Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf('SC_CLK_TCK')


def parts(master: int) -> dict[str, list[int]]:
    """The pids of the endpoint (master and workers) and of the writer."""
    try:
        children = [
            int(p) for p in pathlib.Path(f'/proc/{master}/task/{master}/children').read_text().split()
        ]
    except OSError:
        children = []
    writer = [p for p in children if b'writer' in _cmdline(p)]
    return {'endpoint': [master] + [p for p in children if p not in writer], 'writer': writer}


def _cmdline(pid: int) -> bytes:
    try:
        return pathlib.Path(f'/proc/{pid}/cmdline').read_bytes()
    except OSError:
        return b''


# -- the datastore under test ----------------------------------------------------------------------


class Site:
    """uWSGI (production options, 4 workers) and the attached writer on a fresh data_dir."""

    def __init__(self, base: str, app: str) -> None:
        self.base = base
        self.data_dir = os.path.join(base, 'data')
        stations = os.path.join(base, 'stations.csv')
        with open(stations, 'w') as f:
            f.writelines(f'{n},Bench,pw-{n}\n' for n in range(1000, 1000 + MAX_STATIONS))
        self.configfile = os.path.join(base, 'config.ini')
        with open(self.configfile, 'w') as f:
            f.write(
                f'[General]\nlog={base}/log\nloglevel=warning\nstation_list={stations}\n'
                f'data_dir={self.data_dir}\n'
            )
        application = uwsgi_server.APPLICATION
        if app == 'deployed-style':
            application = pathlib.Path(base, 'deployed_style.wsgi')
            application.write_text(upload_bench.DEPLOYED_STYLE_APP)
        self.port = uwsgi_server.free_port()
        ini = pathlib.Path(base, 'uwsgi.ini')
        production = int(uwsgi_ini_processes())
        ini.write_text(
            uwsgi_server.ini(self.configfile, self.port, base, production, application, attach_writer=True)
        )
        environment = {**os.environ, config_mod.ENVIRONMENT: self.configfile}
        self.log = open(os.path.join(base, 'uwsgi.log'), 'ab')  # noqa: SIM115
        self.process = subprocess.Popen(
            [str(uwsgi_server.UWSGI), '--ini', str(ini)],
            cwd=ROOT,
            env=environment,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while post(self.port, b'') != '400':
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise SystemExit(f'uWSGI did not start: see {base}/uwsgi.log')
            time.sleep(0.2)
        datadir.DataDir(self.data_dir).ensure()
        self.warm()

    def warm(self) -> None:
        """Every worker initialised, the writer's imports done: not a cold start in the first step."""
        with ThreadPoolExecutor(8) as pool:
            # a wrong password (203): the station list read, nothing stored
            wrong = b'station_id=1000&password=warm-up&data=x&checksum=x'
            list(pool.map(lambda _: post(self.port, wrong), range(64)))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            writer = parts(self.process.pid)['writer']
            before = cpu_seconds(writer)
            time.sleep(1.0)
            if writer and cpu_seconds(writer) - before < 0.1:
                return

    def stop(self) -> None:
        uwsgi_server.stop(self.process)
        self.log.close()


def uwsgi_ini_processes() -> str:
    from datastore import uwsgi_ini  # noqa: PLC0415

    return uwsgi_ini.PRODUCTION['processes']


# -- the ramp ------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Step:
    stations: int
    seconds: float
    offered: float  # uploads/s the stations send
    done: float  # uploads/s answered
    p50: float
    p99: float
    reply99: float  # p99 from sending to the reply: the datastore's share of p99
    lag99: float
    refused: dict[str, int]  # reply (or client error) -> uploads not answered 100
    age: float  # worst oldest-queued age during the step
    backlog: int  # files queued at that moment
    grew: int  # files queued at the end, less those at the start
    growth_limit: float | None  # files the queue may grow by in a ramp step (None: a hold)
    cpu: dict[str, float]  # part -> cores used

    @property
    def cause(self) -> str | None:
        """Why the step failed (None: it held)."""
        if self.refused:
            return 'not answered 100: ' + ', '.join(f'{n} x {reply}' for reply, n in self.refused.items())
        if self.p99 > P99_LIMIT:
            if self.reply99 <= P99_LIMIT / 2:  # late in the sending, not in the answering
                return f'p99 latency {self.p99:.2f} s, {self.lag99:.2f} s of it late sent (the generator)'
            return f'p99 latency {self.p99:.2f} s (the endpoint)'
        if self.age > AGE_LIMIT:
            return f'oldest queued file {self.age:.0f} s old (the writer)'
        if self.growth_limit is not None and self.grew > self.growth_limit:
            return f'the queue grew by {self.grew} files (the writer falls behind)'
        return None

    def row(self) -> str:
        cpu = ' '.join(f'{part} {cores:.2f}' for part, cores in self.cpu.items())
        return (
            f'{self.stations:7,d} stations {self.offered:7.1f}/s offered {self.done:7.1f}/s answered  '
            f'p50 {self.p50 * 1000:6.1f} ms p99 {self.p99 * 1000:7.1f} ms (sent late {self.lag99:.2f} s)  '
            f'queue {self.age:5.0f} s ({self.backlog:5d} files, {self.grew:+d})  cores: {cpu}  '
            + (self.cause or 'held')
        )


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def run_step(
    site: Site, watch: Watch, kind: Kind, stations: int, seconds: float, made, index: int, hold: bool = False
) -> Step:
    """``stations`` for ``seconds``. A ramp step (not ``hold``) also fails when the queue grows by more
    than ``GROWTH`` seconds of uploads: a writer that falls behind, which a minute may not yet show in
    the oldest file's age."""
    queued = watch.now()[1]
    before = {part: cpu_seconds(pids) for part, pids in parts(site.process.pid).items()}
    generator_before = os.times()
    started = time.monotonic()
    results = generate(site.port, kind, stations, seconds, made, index)
    elapsed = time.monotonic() - started
    generator = os.times()
    after = {part: cpu_seconds(pids) for part, pids in parts(site.process.pid).items()}
    cpu = {part: max(0.0, after[part] - before.get(part, 0.0)) / elapsed for part in after}
    cpu['generator'] = (
        generator.children_user
        + generator.children_system
        - generator_before.children_user
        - generator_before.children_system
    ) / elapsed
    age, backlog = watch.worst(started)
    grew = watch.now()[1] - queued
    # what a station sees: from when it meant to send (a station waiting for a free
    # connection waits in the generator) until the reply
    latencies = [lag + latency for _, lag, latency, _ in results]
    return Step(
        stations=stations,
        seconds=elapsed,
        offered=stations / kind.period,
        done=len(results) / elapsed,
        p50=percentile(latencies, 0.5),
        p99=percentile(latencies, 0.99),
        reply99=percentile([latency for _, _, latency, _ in results], 0.99),
        lag99=percentile([lag for _, lag, _, _ in results], 0.99),
        refused=dict(
            collections.Counter(reply[:60] for *_, reply in results if reply != '100').most_common(3)
        ),
        age=age,
        backlog=backlog,
        grew=grew,
        growth_limit=None if hold else GROWTH * stations / kind.period,
        cpu=cpu,
    )


@dataclasses.dataclass
class Ramp:
    kind: str
    app: str
    steps: list[Step]
    held: Step | None  # the largest number held for the hold time
    failed: Step | None  # the first step that failed


def ramp(base: str, kind: Kind, app: str, step_seconds: float, hold_seconds: float, most: int) -> Ramp:
    """Double the stations from START while steps pass (halve while they fail), narrow the gap
    between the largest that passed and the smallest that failed to ``FINEST``, then hold."""
    made = templates(kind, datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None, microsecond=0))
    steps: list[Step] = []
    passed: list[int] = []
    with running(os.path.join(base, 'ramp'), app) as (site, watch):
        stations = START
        while 5 <= stations <= most:
            if steps and steps[-1].cause:
                drain(watch)  # a failed step's backlog is not the next step's
            step = run_step(site, watch, kind, stations, step_seconds, made, len(steps))
            steps.append(step)
            print(f'  {kind.name:8} {app:15} {step.row()}', flush=True)
            passed = sorted(s.stations for s in steps if not s.cause)
            failed = [s.stations for s in steps if s.cause]
            if passed and failed:
                if min(failed) <= passed[-1] * FINEST:
                    break
                stations = round(math.sqrt(passed[-1] * min(failed)))
            else:
                stations = stations * 2 if not step.cause else stations // 2
    failed_step = min((s for s in steps if s.cause), key=lambda s: s.stations, default=None)
    held = None
    # the largest number that passed its step, then a little less: each on a fresh datastore
    candidates = [round(passed[-1] / math.sqrt(2) ** k) for k in range(HOLDS)] if passed else []
    for k, number in enumerate(candidates):
        with running(os.path.join(base, f'hold-{number}'), app) as (site, watch):
            step = run_step(site, watch, kind, number, hold_seconds, made, 90 + k, hold=True)
        print(f'  {kind.name:8} {app:15} hold {hold_seconds:.0f} s: {step.row()}', flush=True)
        if not step.cause:
            held = step
            break
    return Ramp(kind.name, app, steps, held, failed_step)


def drain(watch: Watch, limit: float = 300.0) -> None:
    """Wait (at most ``limit`` seconds) until nothing is queued."""
    deadline = time.monotonic() + limit
    while watch.now()[1] and time.monotonic() < deadline:
        time.sleep(1.0)


@contextlib.contextmanager
def running(base: str, app: str) -> Iterator[tuple[Site, Watch]]:
    os.makedirs(base)
    site = Site(base, app)
    watch = Watch(site.data_dir)
    try:
        yield site, watch
    finally:
        watch.stop()
        site.stop()
        shutil.rmtree(base, ignore_errors=True)


# -- the plot -------------------------------------------------------------------------------------------

COLOURS = {
    ('windows', 'project'): '#1f5fa6',
    ('windows', 'deployed-style'): '#8fb4de',
    ('pysparc', 'project'): '#b8460b',
    ('pysparc', 'deployed-style'): '#f0a37a',
}


def plot(ramps: list[Ramp], path: str) -> None:
    """p99 upload latency and the oldest queued file's age against stations, as SVG."""
    stations = [s.stations for r in ramps for s in r.steps] or [START]
    x_range = (min(stations) / 1.3, max(stations) * 1.3)

    def series(value: Callable[[Step], float]) -> list[svgplot.Series]:
        return [
            (
                f'{r.kind}, {r.app}',
                COLOURS.get((r.kind, r.app), '#444'),
                sorted((s.stations, value(s)) for s in r.steps),  # the ramp's steps by stations
            )
            for r in ramps
        ]

    def latency(offset: float) -> str:
        lines = series(lambda s: s.p99)
        return svgplot.panel(
            offset, 'p99 upload latency (s)', lines, x_range, (0.001, 30), P99_LIMIT, 'stations'
        )

    def age(offset: float) -> str:
        lines = series(lambda s: max(s.age, 1))
        return svgplot.panel(
            offset, 'oldest queued file (s)', lines, x_range, (1, 3000), AGE_LIMIT, 'stations'
        )

    legend = [(f'{r.kind} stations, {r.app}', COLOURS.get((r.kind, r.app), '#444')) for r in ramps]
    pathlib.Path(path).write_text(svgplot.figure([latency, age], legend))


# -- main ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog='python -m benchmarks.capacity', description=__doc__.split('\n')[0])
    parser.add_argument('--kinds', default='windows,pysparc')
    parser.add_argument('--apps', default=','.join(APPS))
    parser.add_argument('--step', type=float, default=60.0, help='seconds per ramp step (%(default)s)')
    parser.add_argument('--hold', type=float, default=300.0, help='seconds a number must hold (%(default)s)')
    parser.add_argument('--plot', default=str(ROOT / 'benchmarks' / 'capacity.svg'))
    parser.add_argument(
        '--most', type=int, default=MAX_STATIONS, help='stations the ramp stops at (%(default)s)'
    )
    args = parser.parse_args(argv)
    print(
        f'{os.cpu_count()} cores; uWSGI with {uwsgi_ini_processes()} workers and the writer attached; '
        f'{CLIENT_PROCESSES} generator processes x {CLIENT_THREADS} threads; steps of {args.step:.0f} s, '
        f'hold {args.hold:.0f} s; limits: p99 {P99_LIMIT:g} s, oldest queued {AGE_LIMIT:g} s',
        flush=True,
    )
    ramps = []
    for kind in args.kinds.split(','):
        for app in args.apps.split(','):
            base = tempfile.mkdtemp(prefix=f'hisparc-capacity-{kind}-{app}-')
            try:
                ramps.append(ramp(base, KINDS[kind], app, args.step, args.hold, min(args.most, MAX_STATIONS)))
            finally:
                shutil.rmtree(base, ignore_errors=True)
    print('\ncapacity (the largest number of stations held for the hold time):')
    for r in ramps:
        held = f'{r.held.stations:,}' if r.held else 'none'
        gave_out = f'; at {r.failed.stations:,}: {r.failed.cause}' if r.failed else ''
        print(f'  {r.kind:8} {r.app:15} {held} stations{gave_out}')
    by = {(r.kind, r.app): r for r in ramps}
    for kind in args.kinds.split(','):
        project, reference = by.get((kind, 'project')), by.get((kind, 'deployed-style'))
        if project and reference and project.held and reference.held:
            print(
                f'  {kind}: project / deployed-style = {project.held.stations / reference.held.stations:.1f}x'
            )
    plot(ramps, args.plot)
    print(f'plot: {args.plot}')


if __name__ == '__main__':
    main(sys.argv[1:])
