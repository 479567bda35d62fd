"""``hisparc-datastore simulate``: post realistic station uploads and report the return codes."""

from __future__ import annotations

import argparse
import datetime
import http.client
import itertools
import pickle
import random
import time
import urllib.error
import urllib.request

from datastore import eventtypes, factory, protocol, py2pickle, stations

from .common import Command, Failure, date, http_url, load_config, positive, positive_number

UPLOAD_PATH = '/hisparc/upload'
MIXES = {
    'real': (('CIC', 36), ('SIN', 64)),  # a real 100-event batch
    'every-type': tuple((code, 1) for code in eventtypes.EVENT_TYPES),
}


def scaled(mix: tuple[tuple[str, int], ...], size: int) -> tuple[tuple[str, int], ...]:
    """The counts of ``mix`` scaled to ``size`` events in all."""
    total = sum(count for _, count in mix)
    counts = [size * count // total for _, count in mix]
    for i in range(size - sum(counts)):  # hand out the remainder in order
        counts[i % len(counts)] += 1
    return tuple((code, n) for (code, _), n in zip(mix, counts) if n)


def post(url: str, body: bytes, timeout: float) -> str:
    """The reply's return code, or what went wrong instead."""
    request = urllib.request.Request(  # noqa: S310 (http_url() allows only http and https)
        url, data=body, headers={'Content-Type': 'application/x-www-form-urlencoded'}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:  # noqa: S310
            return reply.read(64).decode('ascii', 'replace')
    except urllib.error.HTTPError as exc:
        return f'HTTP {exc.code}'
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        return f'error: {getattr(exc, "reason", exc)}'


def simulated_stations(args: argparse.Namespace) -> list[tuple[int, str]]:
    """[(number, password)] of the stations to simulate."""
    listed: dict[int, stations.Station] = {}
    if args.station_list or args.config:
        path = args.station_list or load_config(args.config).station_list
        try:
            listed, _ = stations.read(path)
        except OSError as exc:
            raise Failure(f'cannot read station list {path}: {exc.strerror}') from None
    numbers = args.station or sorted(listed)[: args.stations]
    if not numbers:
        raise Failure(
            'no station to simulate: give --station N (with --password), or --config/--station-list'
        )
    chosen = []
    for number in numbers:
        password = (
            args.password if args.password is not None else getattr(listed.get(number), 'password', None)
        )
        if password is None:
            raise Failure(
                f'no password for station {number}: give --password, or a station list that lists it'
            )
        chosen.append((number, password))
    return chosen


def run(args: argparse.Namespace) -> int:
    chosen = simulated_stations(args)
    mix = scaled(MIXES[args.mix], args.batch_size)
    dump = py2pickle.dumps if args.pickle == 'py2' else pickle.dumps
    rng = random.Random(args.seed)
    first_day = datetime.datetime.combine(args.date, datetime.time()) if args.date else None
    replies: dict[str, int] = {}
    events, accepted, accepted_bytes, latency = 0, 0, 0, 0.0
    began = time.monotonic()
    deadline = began + args.duration if args.duration else float('inf')
    interval = 1.0 / args.rate if args.rate else 0.0
    if args.batches is None and not args.duration:
        args.batches = 1
    sent = 0
    rounds = range(args.batches) if args.batches else itertools.count()
    plan = ((round_, number, password) for round_ in rounds for number, password in chosen)
    for round_, number, password in plan:
        if time.monotonic() >= deadline:
            break
        if first_day:
            start = first_day + datetime.timedelta(seconds=round_ * args.batch_size)
        else:  # the last batch_size seconds, as a station uploads them
            start = datetime.datetime.now(datetime.timezone.utc).replace(
                tzinfo=None, microsecond=0
            ) - datetime.timedelta(seconds=args.batch_size)
        batch = factory.batch(start, rng, mix=mix)
        body = protocol.encode(number, password, dump(batch))
        pause = min(began + sent * interval, deadline) - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        t0 = time.monotonic()
        reply = post(args.url, body, args.timeout)
        latency += time.monotonic() - t0
        sent += 1
        replies[reply] = replies.get(reply, 0) + 1
        if reply == protocol.OK:
            events, accepted, accepted_bytes = events + len(batch), accepted + 1, accepted_bytes + len(body)
    seconds = max(time.monotonic() - began, 1e-9)
    mix_text = '+'.join(f'{n} {code}' for code, n in mix)
    print(
        f'posted {sent} batch(es) of {args.batch_size} events ({mix_text}, {args.pickle} pickles) '
        f'for {which(chosen)} to {args.url}'
    )
    for reply, count in sorted(replies.items()):
        meaning = protocol.MEANING.get(reply, '')
        print(f'  {reply:<5} {meaning:<45} {count}')
    # Accepted (answered 100), not stored: storing is the writer's, later.
    rates = (
        f'{accepted / seconds:.1f} batches/s, {events / seconds:.0f} events/s, '
        f'{accepted_bytes / seconds / 1e6:.2f} MB/s accepted'
        if accepted
        else 'no batch accepted'
    )
    print(f'{seconds:.2f} s: {rates}; mean reply time {1000 * latency / max(sent, 1):.1f} ms')
    return 0 if sent and replies == {protocol.OK: sent} else 1


def which(chosen: list[tuple[int, str]], most: int = 10) -> str:
    """'station(s) 501, 502', or for many a count and the range."""
    numbers = [number for number, _ in chosen]
    if len(numbers) <= most:
        return 'station(s) ' + ', '.join(map(str, numbers))
    return f'{len(numbers)} stations ({min(numbers)} to {max(numbers)})'


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        '--url', type=http_url, default=f'http://127.0.0.1:8080{UPLOAD_PATH}', help='%(default)s'
    )
    parser.add_argument('--station', type=int, action='append', help='station number (repeatable)')
    parser.add_argument(
        '--stations',
        type=positive,
        default=1,
        help='without --station: the first N stations of the list (default 1)',
    )
    parser.add_argument('--password', help='the password of every simulated station')
    source = parser.add_mutually_exclusive_group()
    source.add_argument('--config', '-c', help='take station passwords from its station list')
    source.add_argument('--station-list', help='take station passwords from this list')
    parser.add_argument(
        '--batches', type=positive, help='batches per station (default 1, or no limit with --duration)'
    )
    parser.add_argument('--duration', type=positive_number, help='stop after this many seconds')
    parser.add_argument('--batch-size', type=positive, default=100, help='events per batch (default 100)')
    parser.add_argument(
        '--mix',
        choices=MIXES,
        default='real',
        help="'real': 36%% CIC + 64%% SIN like a real batch; 'every-type': all 14 event types (default real)",
    )
    parser.add_argument(
        '--pickle',
        choices=('py2', 'py3'),
        default='py2',
        help='Python 2 protocol 0 as the stations send, or Python 3 (default py2)',
    )
    parser.add_argument(
        '--rate',
        type=positive_number,
        help='batches per second over all stations (default: as fast as replies come)',
    )
    parser.add_argument(
        '--date', type=date, help='date the events on this day (default now; before 2020 tests suspicious/)'
    )
    parser.add_argument(
        '--timeout', type=positive_number, default=60.0, help='seconds per request (default 60)'
    )
    parser.add_argument('--seed', type=int, help='random seed, for repeatable batches')


COMMANDS = (
    Command(
        'simulate',
        'post realistic station uploads to URL and report return codes and rates',
        run,
        arguments,
        config=False,
    ),
)
