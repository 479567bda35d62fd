"""config.ini: the one configuration file of the endpoint, the writer and the tools.

The seed keys (``[General] log, loglevel, station_list, data_dir`` and
``[Writer] sleep``) keep their meaning; every key added since is optional and
has its default here. ``config.ini.example`` documents them all.
"""

from __future__ import annotations

import configparser
import ctypes
import dataclasses
import logging
import logging.handlers
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from . import events
from .watch import Watch

log = logging.getLogger(__name__)

DAY = 24 * 3600
ENVIRONMENT = 'HISPARC_DATASTORE_CONFIG'  # where the processes find config.ini
DEFAULT_PATH = '/etc/hisparc/datastore.ini'


def addresses(text: str) -> frozenset[str]:
    """A list of addresses, separated by spaces or commas."""
    return frozenset(text.replace(',', ' ').split())


# (section, key, type, default); default None means required.
KEYS: tuple[tuple[str, str, Callable[[str], Any], Any], ...] = (
    ('General', 'log', str, None),
    ('General', 'loglevel', str, 'info'),
    ('General', 'station_list', str, None),
    ('General', 'data_dir', str, None),
    ('General', 'minimum_year', int, 2020),
    ('General', 'max_upload_bytes', int, 16 * 1024 * 1024),
    ('General', 'resend_window', float, 7.0),
    ('General', 'max_future', float, 1.0),
    ('General', 'trusted_proxies', addresses, frozenset()),
    ('General', 'audit_days', float, 30.0),
    ('General', 'max_queue_age', float, 600.0),
    ('General', 'max_pause', float, 4 * 3600.0),
    ('General', 'resend_database', str, ''),
    ('Writer', 'sleep', float, 5.0),
    ('Writer', 'batch_files', int, 10_000),
    ('Writer', 'batch_bytes', int, 16 * 1024 * 1024),
    ('Writer', 'archive_days', float, 7.0),
    ('Writer', 'archive_dir', str, ''),
)

# What each kind of process adds to [General] log: its own file
ENDPOINT_LOG, WRITER_LOG, TOOLS_LOG = '-wsgi', '-writer', '-tools'

LOGLEVELS = ('debug', 'info', 'warning', 'error', 'critical')
LOG_HANDLER = 'hisparc-datastore'
NOT_NEGATIVE = (
    'max_upload_bytes',
    'resend_window',
    'max_future',
    'sleep',
    'audit_days',
    'archive_days',
    'max_queue_age',
    'max_pause',
)


class ConfigError(Exception):
    """The configuration cannot be used; the message names the file or key."""


@dataclasses.dataclass(frozen=True)
class Config:
    path: str
    log: str
    loglevel: str
    station_list: str
    data_dir: str
    minimum_year: int
    max_upload_bytes: int
    resend_window: float  # days
    max_future: float  # days an event may be dated after the server's clock
    trusted_proxies: frozenset[str]  # addresses whose X-Forwarded-For names the client
    audit_days: float  # days the batch record and the ledger keep a batch
    max_queue_age: float  # seconds the oldest queued file may wait before the datastore is unwell
    max_pause: float  # seconds the writer may be paused before the datastore is unwell
    resend_database: str  # PostgreSQL URL of the batch record (empty: data_dir/received.sqlite)
    sleep: float  # seconds
    batch_files: int  # spool files the writer stores per pass, at most
    batch_bytes: int  # and their bytes, at most (a pass takes at least one file)
    archive_days: float  # days stored spool files are kept after their day files' last write
    archive_dir: str  # '' : data_dir/archive

    @property
    def resend_window_seconds(self) -> float:
        return self.resend_window * DAY

    @property
    def rule(self) -> events.Rule:
        """The sound-event rule with this configuration's bounds."""
        return events.Rule(self.minimum_year, self.max_future)


def default(key: str) -> Any:
    """The default of ``key`` (as ``KEYS`` gives it)."""
    return next(default for _, name, _, default in KEYS if name == key)


def default_path() -> str:
    """``$HISPARC_DATASTORE_CONFIG``, else ``/etc/hisparc/datastore.ini``.

    uWSGI's ``env`` option sets the variable in the C library's environment.
    The uWSGI wheel (pyuwsgi) starts Python before it applies its options, so
    ``os.environ``, Python's copy taken at start-up, lacks it there: the C
    library is asked too.
    """
    path = os.environ.get(ENVIRONMENT)
    if path is None:
        libc = ctypes.CDLL(None)
        libc.getenv.restype = ctypes.c_char_p
        found = libc.getenv(ENVIRONMENT.encode())
        path = os.fsdecode(found) if found else None
    return path or DEFAULT_PATH


def read(path: str) -> tuple[Config | None, list[str], list[str]]:
    """(config or None, problems, warnings) of the file at ``path``: every one, not the first.

    A problem makes the file unusable; a warning (an unknown key, likely a
    typo) does not.
    """
    values, problems, warnings = parse(path)
    if problems:
        return None, problems, warnings
    return _config(path, values), [], warnings


def salvage(path: str) -> Config | None:
    """The file's configuration with defaults for its bad values; None without its required keys.

    For ``status``, which shows the figures and, beside them, what is wrong.
    """
    values, _, _ = parse(path)
    if any(values.get(key) is None for _, key, _, default in KEYS if default is None):
        return None
    return _config(path, values)


def _config(path: str, values: dict[str, Any]) -> Config:
    return Config(path=path, **{**values, 'loglevel': values['loglevel'].lower()})


def parse(path: str) -> tuple[dict[str, Any], list[str], list[str]]:
    """({key: value}, problems, warnings) of the file at ``path``.

    The values are those of the keys that could be read (a key with a
    problem has its default: None if required), so that ``check-config``
    goes on to check what the good ones name. Every problem is listed: bad
    lines, repeated keys, missing keys, bad values.
    """
    try:
        with open(path, encoding='utf-8') as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        return {}, [f'cannot read config file {path}: {exc}'], []
    parser, problems = _parser(text, path)
    if parser is None:
        return {}, [f'config file {path} is not valid: {problem}' for problem in problems], []
    known = {(section, key) for section, key, _, _ in KEYS}
    warnings = [
        f'[{section}] {key} is not a known key; it is ignored'
        for section in parser.sections()
        for key in parser[section]
        if (section, key) not in known
    ]
    values: dict[str, Any] = {}
    for section, key, kind, default in KEYS:
        raw = parser.get(section, key, fallback=None)
        values[key] = default
        if raw is None or raw.strip() == '':
            if default is None:
                problems.append(f'required key [{section}] {key} is missing')
            continue
        try:
            value = kind(raw.strip())
        except ValueError:
            problems.append(f'[{section}] {key} = {raw!r} is not a valid {kind.__name__}')
            continue
        why = _value_problems(key, value)
        problems += [f'[{section}] {key} = {raw.strip()!r} {reason}' for reason in why]
        if not why:
            values[key] = value
    return values, [f'{path}: {problem}' for problem in problems], warnings


def _parser(text: str, path: str) -> tuple[configparser.ConfigParser | None, list[str]]:
    """The parsed file (None if it has no section header) and every line configparser refuses.

    configparser stops at the first repeated key or section: a repeated key
    is reported and its line dropped, a repeated section is reported and
    merged, and the file is read again until nothing stops it.
    """
    lines = text.splitlines(keepends=True)
    problems: list[str] = []
    strict = True
    while True:
        parser = configparser.ConfigParser(
            inline_comment_prefixes=('#', ';'), interpolation=None, strict=strict
        )
        try:
            parser.read_string(''.join(lines), source=path)
        except configparser.DuplicateOptionError as exc:
            problems.append(f'line {exc.lineno}: [{exc.section}] {exc.option} is set again')
            lines[(exc.lineno or 1) - 1] = '\n'  # read_string always names the line
            continue
        except configparser.DuplicateSectionError as exc:
            problems.append(f'line {exc.lineno}: section [{exc.section}] appears again')
            strict = False
            continue
        except configparser.MissingSectionHeaderError as exc:
            return None, [f'line {exc.lineno}: {exc.line.strip()!r} comes before any [section]']
        except configparser.ParsingError as exc:  # every bad line; the good ones are read
            problems += [
                f'line {lineno}: {lines[lineno - 1].strip()!r} is not `key = value`'
                for lineno, _ in exc.errors
            ]
        return parser, problems


def _value_problems(key: str, value: Any) -> list[str]:
    if key == 'loglevel' and value.lower() not in LOGLEVELS:
        return [f'is not one of {", ".join(LOGLEVELS)}']
    if key in NOT_NEGATIVE and value < 0:
        return ['must not be negative']
    if key in ('batch_files', 'batch_bytes') and value < 1:
        return ['must be at least 1']
    if key == 'resend_database':
        return _database_problems(value)
    return []


def _database_problems(url: str) -> list[str]:
    if not url.startswith(('postgresql://', 'postgres://')):
        return ['is not a PostgreSQL URL (postgresql://USER@HOST/DATABASE); leave it empty for SQLite']
    try:
        import psycopg  # noqa: F401, PLC0415
    except ImportError:
        return ["needs psycopg: pip install '.[postgresql]'"]
    return []


def load(path: str) -> Config:
    """Read and check ``path``; raise ConfigError naming everything that is wrong."""
    config, problems, _ = read(path)
    if config is None:
        raise ConfigError('; '.join(problems))
    return config


class Current:
    """The configuration a running process uses: the last good version of its file.

    The file is looked at no more than once a second (``datastore.watch``).
    A changed file is taken up only if ``read`` finds no problem in it;
    otherwise its problems are logged at ERROR, once per change, and the
    last good configuration stays. So a broken file saved over a working one
    never stops the endpoint or the writer.
    """

    def __init__(self, path: str, check_every: float = 1.0) -> None:
        self.path = path
        self.watch = Watch(path, check_every)
        try:
            signature = self.watch.changed()
        except OSError:
            signature = None  # load() names the file
        self.config = load(path)  # ConfigError: a cold start refuses a broken file
        self.watch.seen = signature
        self._problem: str | None = None

    def get(self) -> Config:
        with self.watch.lock:
            return self._follow()

    def _follow(self) -> Config:
        try:
            signature = self.watch.changed()
        except OSError as exc:
            self._refuse(f'cannot read it: {exc.strerror or exc}')
            return self.config
        if signature is None:
            return self.config
        self.watch.seen = signature
        config, problems, warnings = read(self.path)
        if config is None:
            self._refuse('; '.join(problems))
            return self.config
        for warning in warnings:
            log.warning('config file %s: %s', self.path, warning)
        if self._problem is not None:
            log.info('config file %s is usable again', self.path)
            self._problem = None
        if config != self.config:
            log.info('config file %s changed: taken up', self.path)
            self.config = config
        return self.config

    def _refuse(self, problem: str) -> None:
        if problem != self._problem:
            log.error(
                'config file %s changed and is not taken up (the last good configuration stays): %s',
                self.path,
                problem,
            )
            self._problem = problem


_following: dict[str, Current] = {}


def following(path: str) -> Current:
    """The process's ``Current`` of ``path``, made on first use (ConfigError if the file is unusable then)."""
    current = _following.get(path)
    if current is None:
        current = _following[path] = Current(path)
    return current


class UTCFormatter(logging.Formatter):
    """Times in UTC, ISO 8601 with their zone (``2026-11-24T02:18:39.123Z``), as ``status`` speaks."""

    converter = time.gmtime  # type: ignore[assignment]  # (typeshed takes its default for none)
    default_time_format = '%Y-%m-%dT%H:%M:%S'
    default_msec_format = '%s.%03dZ'


def setup_logging(config: Config, suffix: str) -> None:
    """Log to ``config.log`` + ``suffix`` (``-`` logs to stderr).

    Each process kind has its own file (``ENDPOINT_LOG``, ``WRITER_LOG``,
    ``TOOLS_LOG``); a WatchedFileHandler follows logrotate.
    """
    if config.log == '-':
        handler: logging.Handler = logging.StreamHandler(sys.stderr)
    else:
        handler = logging.handlers.WatchedFileHandler(config.log + suffix)
    handler.setFormatter(UTCFormatter('%(asctime)s %(process)d %(name)s %(levelname)s %(message)s'))
    handler.set_name(LOG_HANDLER)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == LOG_HANDLER]:  # ours only: set up again
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(config.loglevel.upper())
