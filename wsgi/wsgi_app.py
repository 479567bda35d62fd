"""The upload endpoint: every HiSPARC station posts its events here.

Deployments run it under uWSGI as
``functools.partial(wsgi_app.application, configfile=...)``.

    body -> fields -> station -> password -> checksum -> resend? -> unpickle
         -> screen -> spool (incoming/ | suspicious/) -> record -> 100

Every request is answered HTTP 200, ``text/plain``, with exactly one return
code (see rcodes.py), whatever its path and method. The uWSGI worker imports
neither PyTables nor numpy.
"""
import contextlib
import dataclasses
import hmac
import logging
import time

from datastore import config as config_mod
from datastore import safepickle, spool
from . import form, memory, rcodes, screening
from .received import Received
from .stationlist import StationList, Unavailable

log = logging.getLogger('wsgi.upload')

MINIMUM_YEAR = next(default for _, key, _, default in config_mod.KEYS if key == 'minimum_year')


class Refused(Exception):
    """The upload is answered ``code`` for the reason in the message."""

    def __init__(self, code, why):
        super().__init__(why)
        self.code = code


# What each kind of failure answers: a station acts on the code.
CODES = (
    (Refused, None),                                    # carries its own code
    (form.FormError, rcodes.INVALID_POST_DATA),
    (Unavailable, rcodes.STORAGE_UNAVAILABLE),
    (safepickle.PickleRefused, rcodes.UNPICKLING_ERROR),
)


@dataclasses.dataclass
class Endpoint:
    """What one worker process keeps between requests."""
    config: config_mod.Config
    stations: StationList
    received: Received


_endpoints = {}


def do_init(configfile):
    """The endpoint for ``configfile``: loaded on first use in each process, then cached."""
    endpoint = _endpoints.get(configfile)
    if endpoint is None:
        config = config_mod.load(configfile)
        config_mod.setup_logging(config, '-wsgi')
        memory.keep_freed_memory()
        endpoint = Endpoint(config, StationList(config.station_list),
                            Received(config.data_dir, config.resend_window_seconds))
        _endpoints[configfile] = endpoint
        log.info('upload endpoint ready (config %s)', configfile)
    return endpoint


def is_data_suspicious(event_list, minimum_year=MINIMUM_YEAR):
    """True if any event of the list would be held in suspicious/."""
    return bool(screening.split(event_list, minimum_year)[1])


@dataclasses.dataclass
class Report:
    """What the one log line of an upload says."""
    station: object = '-'
    events: object = '-'
    outcome: str = ''


def application(environ, start_response, configfile):
    started = time.perf_counter()
    report = Report()
    try:
        endpoint = do_init(configfile)
    except config_mod.ConfigError as exc:
        log.error('%s', exc)
        code, report.outcome = rcodes.STORAGE_UNAVAILABLE, 'no usable configuration'
    except Exception:
        log.exception('cannot set up the endpoint from %s', configfile)
        code, report.outcome = rcodes.STORAGE_UNAVAILABLE, 'no usable configuration'
    else:
        code = answer(endpoint, environ, report)
    log.info('upload station %s: %s events, code %s (%s), %.1f ms', report.station,
             report.events, code, report.outcome, (time.perf_counter() - started) * 1000)
    body = code.encode('ascii')
    start_response('200 OK', [('Content-Type', 'text/plain'),
                              ('Content-Length', str(len(body)))])
    return [body]


def answer(endpoint, environ, report):
    """The return code for this request; nothing escapes."""
    try:
        return upload(endpoint, environ, report)
    except tuple(kind for kind, _ in CODES) as exc:
        report.outcome = str(exc)
        return next(code or exc.code for kind, code in CODES if isinstance(exc, kind))
    except Exception:
        log.exception('unexpected error handling an upload')
        report.outcome = 'unexpected error'
        return rcodes.STORAGE_UNAVAILABLE


def upload(endpoint, environ, report):
    """Check the upload in the protocol's order, then store it; return 100."""
    config = endpoint.config
    fields = form.parse(form.read_body(environ, config.max_upload_bytes))
    report.station = number = form.station_number(fields['station_id'])
    station = endpoint.stations.current().get(number)
    if station is None:
        raise Refused(rcodes.STATION_UNKNOWN, 'station not in the station list')
    if not hmac.compare_digest(fields['password'],
                               station.password.encode('utf-8', 'surrogateescape')):
        raise Refused(rcodes.WRONG_PASSWORD, 'wrong password')
    pickled = form.pickle_bytes(fields['data'], fields['checksum'])
    if pickled is None:
        raise Refused(rcodes.INVALID_INPUT, 'checksum does not match the data')
    checksum = fields['checksum'].decode('ascii').lower()

    received = endpoint.received
    with storage('locking the station'), received.station_lock(number):
        if _seen(received, number, checksum):
            report.outcome = 'a resend of a batch already stored'
            return rcodes.OK
        event_list = safepickle.loads(pickled)
        if type(event_list) is not list:
            raise Refused(rcodes.UNPICKLING_ERROR,
                          f'the pickle is a {type(event_list).__name__}, not a list')
        report.events = len(event_list)
        report.outcome = store(config, station, event_list, pickled)
        _record(received, number, checksum)
    return rcodes.OK


def store(config, station, event_list, pickled):
    """Spool the sound events in incoming/, the others in suspicious/; say where."""
    good, suspicious = screening.split(event_list, config.minimum_year)
    # suspicious/ first: if incoming/ then fails, the resend duplicates only
    # events held for review, never rows in the datastore.
    whole = pickled if not (good and suspicious) else None
    try:
        files = [(folder, _spool_payload(station, events, whole), len(events))
                 for folder, events in ((spool.SUSPICIOUS, suspicious), (spool.INCOMING, good))
                 if events]
    except Exception as exc:            # RecursionError for a deeply nested value
        raise Refused(rcodes.UNPICKLING_ERROR,
                      f'the events cannot be spooled: {type(exc).__name__}: {exc}') from None
    with storage('spooling'):
        for folder, payload, _ in files:
            spool.deliver(config.data_dir, folder, spool.unique_name(station.number), payload)
    return 'stored: ' + (', '.join(f'{n} in {folder}/' for folder, _, n in files) or 'nothing')


def _spool_payload(station, events, pickled):
    """A batch spooled whole (``pickled`` given) keeps the station's own
    protocol-0 bytes; anything else is pickled anew."""
    return ((pickled is not None and spool.splice(station.number, station.cluster, pickled))
            or spool.dumps(station.number, station.cluster, events))


@contextlib.contextmanager
def storage(what):
    """Turn an OSError into a 404, logged at ERROR with what failed."""
    try:
        yield
    except OSError as exc:
        log.error('storage unavailable: %s failed', what, exc_info=exc)
        raise Refused(rcodes.STORAGE_UNAVAILABLE, f'{what} failed: {exc}') from None


# The resend record only saves work and duplicates: if it fails, the upload
# is still checked and stored, and the failure is logged.
def _seen(received, number, checksum):
    try:
        return received.seen(number, checksum)
    except Exception:
        log.exception('resend record unavailable; treating the batch as new')
        return False


def _record(received, number, checksum):
    try:
        received.record(number, checksum)
    except Exception:
        log.exception('resend record unavailable; the batch is stored but not recorded')
