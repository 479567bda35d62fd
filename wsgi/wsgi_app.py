"""The upload endpoint: every HiSPARC station posts its events here.

Deployments run it under uWSGI as ``wsgi_app.app(configfile)``.

    body -> fields -> station -> password -> checksum -> resend? -> unpickle
         -> screen -> spool (incoming/ | suspicious/) -> record -> 100

Every request is answered HTTP 200, ``text/plain``, with exactly one return
code (see rcodes.py), whatever its path and method. The uWSGI worker imports
neither PyTables nor numpy.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import functools
import hmac
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from datastore import collector, events, received, safepickle, spoolfile
from datastore import config as config_mod
from datastore.datadir import INCOMING, SUSPICIOUS, DataDir, unique_name
from datastore.protocol import Refused
from datastore.stations import Station

from . import clients, form, memory, metrics, rcodes
from .stationlist import StationList

log = logging.getLogger('wsgi.upload')

MINIMUM_YEAR: int = config_mod.default('minimum_year')


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What became of one request: its return code, why, and what the log line says."""

    code: str
    reason: str
    station: int | None = None
    events: int | None = None
    held: int = 0  # of ``events``, held in suspicious/
    client: str = '-'


@dataclasses.dataclass
class Endpoint:
    """What one worker process keeps between requests."""

    config: config_mod.Config
    data_dir: DataDir
    stations: StationList
    record: received.Record  # of acknowledged batches
    repeats: clients.Repeats = dataclasses.field(default_factory=clients.Repeats)


_endpoints: dict[str, Endpoint] = {}


def do_init(configfile: str) -> Endpoint:
    """The endpoint for ``configfile`` in this process, made again when the configuration changes.

    The configuration is the last good version of the file
    (``config.following``): saving a broken file changes nothing here.
    """
    config = config_mod.following(configfile).get()
    endpoint = _endpoints.get(configfile)
    if endpoint is None or endpoint.config is not config:
        config_mod.setup_logging(config, config_mod.ENDPOINT_LOG)
        if endpoint is None:
            memory.keep_freed_memory()
        data_dir = DataDir(config.data_dir)
        endpoint = _endpoints[configfile] = Endpoint(
            config,
            data_dir,
            StationList(config.station_list),
            received.connect(config),
            endpoint.repeats if endpoint else clients.Repeats(),
        )
        log.info('upload endpoint ready (config %s)', configfile)
    return endpoint


def app(configfile: str) -> Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]:
    """The endpoint as uWSGI loads it: ConfigError unless ``configfile`` is usable now.

    uWSGI loads it in its master before it starts any worker, so with
    ``need-app`` a cold start on a broken file stops with the reason.
    """
    config_mod.following(configfile)
    return functools.partial(application, configfile=configfile)


def is_data_suspicious(event_list: list[Any], minimum_year: int = MINIMUM_YEAR) -> bool:
    """True if any event of the list would be held in suspicious/."""
    return bool(events.Rule(minimum_year).split(event_list)[1])


# A wrong password or an unknown station is logged at WARNING (fail2ban reads those)
LOG_LEVELS = {rcodes.WRONG_PASSWORD: logging.WARNING, rcodes.STATION_UNKNOWN: logging.WARNING}


def application(
    environ: dict[str, Any], start_response: Callable[..., Any], configfile: str
) -> Iterable[bytes]:
    started = time.perf_counter()
    with collector.paused():
        outcome = answer(environ, configfile)
    seconds = time.perf_counter() - started
    log.log(
        LOG_LEVELS.get(outcome.code, logging.INFO),
        'upload from %s station %s: %s events, code %s (%s), %.1f ms',
        outcome.client,
        '-' if outcome.station is None else outcome.station,
        '-' if outcome.events is None else outcome.events,
        outcome.code,
        outcome.reason,
        seconds * 1000,
    )
    count(configfile, outcome, seconds)
    body = outcome.code.encode('ascii')
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])
    return [body]


def count(configfile: str, outcome: Outcome, seconds: float) -> None:
    """Count the upload in the metrics; a failure to count never changes the answer."""
    endpoint = _endpoints.get(configfile)
    if endpoint is None:  # no usable configuration: no data_dir to count in
        return
    accepted = outcome.events or 0 if outcome.code == rcodes.OK else 0
    try:
        metrics.uploads(endpoint.data_dir).count(outcome.code, seconds, accepted, outcome.held)
    except Exception:
        log.exception('the upload could not be counted in the metrics')


def answer(environ: dict[str, Any], configfile: str) -> Outcome:
    """The outcome of this request; nothing escapes."""
    client = environ.get('REMOTE_ADDR') or '-'
    try:
        endpoint = do_init(configfile)
        client = clients.client_address(environ, endpoint.config.trusted_proxies)
        outcome = upload(endpoint, environ)
    except Refused as exc:  # before the station is known
        outcome = Outcome(exc.code, str(exc))
    except config_mod.ConfigError as exc:
        log.error('%s', exc)
        outcome = Outcome(rcodes.STORAGE_UNAVAILABLE, 'no usable configuration')
    except Exception:
        log.exception('unexpected error handling an upload')
        outcome = Outcome(rcodes.STORAGE_UNAVAILABLE, 'unexpected error')
    return dataclasses.replace(outcome, client=client)


def upload(endpoint: Endpoint, environ: dict[str, Any]) -> Outcome:
    """Check the upload in the protocol's order, then store it."""
    fields = form.parse(form.read_body(environ, endpoint.config.max_upload_bytes))
    number = form.station_number(fields['station_id'])
    try:
        return accept(endpoint, number, fields)
    except Refused as exc:
        reason = str(exc)
        if exc.code in LOG_LEVELS:
            client = clients.client_address(environ, endpoint.config.trusted_proxies)
            if endpoint.repeats.again(
                client, number, fields['password'] if exc.code == rcodes.WRONG_PASSWORD else b''
            ):
                reason += ', again'
        return Outcome(exc.code, reason, station=number)


def accept(endpoint: Endpoint, number: int, fields: dict[str, bytes]) -> Outcome:
    """Station, password, checksum, resend, unpickling, then the spool: 100 or Refused."""
    station = endpoint.stations.current().get(number)
    if station is None:
        raise Refused('station not in the station list', rcodes.STATION_UNKNOWN)
    if not hmac.compare_digest(fields['password'], station.password.encode('utf-8', 'surrogateescape')):
        raise Refused('wrong password', rcodes.WRONG_PASSWORD)
    pickled = form.pickle_bytes(fields['data'], fields['checksum'])
    if pickled is None:
        raise Refused('checksum does not match the data', rcodes.INVALID_INPUT)
    checksum = fields['checksum'].decode('ascii').lower()

    record = endpoint.record
    with storage('locking the station'), record.station_lock(number):
        if _seen(record, number, checksum):
            return Outcome(rcodes.OK, 'a resend of a batch already stored', station=number)
        event_list = unpickle(pickled)
        files, held = store(endpoint, station, event_list, pickled)
        try:
            with storage('recording the batch'):
                record.record(number, checksum, len(event_list), files)
        except Refused:  # no 100 without a record: the station sends it again, so no copy may stay
            endpoint.data_dir.withdraw([(folder, name) for folder, name, _ in files])
            raise
    where = (
        ', '.join(
            f'{n} in {folder}/' + (f' ({held})' if folder == SUSPICIOUS else '') for folder, _, n in files
        )
        or 'nothing'
    )
    held_events = sum(n for folder, _, n in files if folder == SUSPICIOUS)
    return Outcome(rcodes.OK, f'stored: {where}', station=number, events=len(event_list), held=held_events)


def unpickle(pickled: bytes) -> list[Any]:
    """The event list of an upload (safepickle.PickleRefused: 208)."""
    event_list = safepickle.loads_upload(pickled)
    if type(event_list) is not list:
        raise safepickle.PickleRefused(f'the pickle is a {type(event_list).__name__}, not a list')
    return event_list


def store(
    endpoint: Endpoint, station: Station, event_list: list[Any], pickled: bytes
) -> tuple[list[tuple[str, str, int]], str]:
    """Spool the sound events in incoming/, the others in suspicious/.

    Returns (folder, name, events) of each spool file, and why events were held.
    """
    good, held = endpoint.config.rule.split(event_list, refuse_amplified=True)
    # suspicious/ first: if incoming/ then fails, the resend duplicates only
    # events held for review, never rows in the datastore.
    whole = pickled if not (good and held) else None
    try:
        files = [
            (folder, _spool_payload(station, batch, whole), len(batch))
            for folder, batch in ((SUSPICIOUS, [event for event, _ in held]), (INCOMING, good))
            if batch
        ]
    except Exception as exc:  # RecursionError for a deeply nested value
        raise safepickle.PickleRefused(f'the events cannot be spooled: {type(exc).__name__}: {exc}') from None
    delivered = []
    with storage('spooling'):
        for folder, payload, count in files:
            name = unique_name(station.number)
            endpoint.data_dir.deliver(folder, name, payload)
            delivered.append((folder, name, count))
    return delivered, _reasons(held)


def _reasons(held: list[events.Held]) -> str:
    """Why events were held, in a few words: each reason once, with how often."""
    if not held:
        return ''
    counts = collections.Counter(reason for _, reason in held)
    return '; '.join(f'{reason} (x{n})' if n > 1 else reason for reason, n in counts.most_common(5))


def _spool_payload(station: Station, batch: list[Any], pickled: bytes | None) -> bytes:
    """The spool file of ``batch``.

    A batch spooled whole (``pickled`` given) keeps the station's own
    protocol-0 bytes; anything else is pickled anew.
    """
    return (
        pickled is not None and spoolfile.splice(station.number, station.cluster, pickled)
    ) or spoolfile.dumps(station.number, station.cluster, batch)


@contextlib.contextmanager
def storage(what: str) -> Iterator[None]:
    """Turn an OSError (or an SQLite error) into a 404, logged at ERROR with what failed."""
    try:
        yield
    except (OSError, sqlite3.Error, received.Unavailable) as exc:
        log.error('storage unavailable: %s failed', what, exc_info=exc)
        raise Refused(f'{what} failed: {exc}', rcodes.STORAGE_UNAVAILABLE) from None


# Looking up a resend only saves work and a duplicate: if it fails, the upload
# is checked and stored as new (recording it then answers 404 if the record
# is truly unavailable), and the failure is logged.
def _seen(record: received.Record, number: int, checksum: str) -> bool:
    try:
        return record.seen(number, checksum)
    except Exception:
        log.exception('batch record unavailable; treating the batch as new')
        return False
