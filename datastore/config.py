"""config.ini: the one configuration file of the endpoint, the writer and the tools.

The seed keys (``[General] log, loglevel, station_list, data_dir`` and
``[Writer] sleep``) keep their meaning; every key added since is optional and
has its default here. ``config.ini.example`` documents them all.
"""
import configparser
import ctypes
import dataclasses
import logging
import logging.handlers
import os
import sys

DAY = 24 * 3600
ENVIRONMENT = 'HISPARC_DATASTORE_CONFIG'     # where the processes find config.ini
DEFAULT_PATH = '/etc/hisparc/datastore.ini'

# (section, key, type, default); default None means required.
KEYS = (
    ('General', 'log', str, None),
    ('General', 'loglevel', str, 'info'),
    ('General', 'station_list', str, None),
    ('General', 'data_dir', str, None),
    ('General', 'minimum_year', int, 2020),
    ('General', 'max_upload_bytes', int, 64 * 1024 * 1024),
    ('General', 'resend_window', float, 7.0),
    ('Writer', 'sleep', float, 5.0),
    ('Writer', 'batch_files', int, 100),
)

LOGLEVELS = ('debug', 'info', 'warning', 'error', 'critical')


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
    resend_window: float        # days
    sleep: float                # seconds
    batch_files: int            # spool files the writer stores per pass

    @property
    def resend_window_seconds(self):
        return self.resend_window * DAY


def default_path():
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


def load(path):
    """Read and check ``path``; raise ConfigError naming what is wrong."""
    parser = configparser.ConfigParser(inline_comment_prefixes=('#', ';'),
                                       interpolation=None)
    try:
        with open(path, encoding='utf-8') as f:
            parser.read_file(f)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f'cannot read config file {path}: {exc}') from None
    except configparser.Error as exc:
        raise ConfigError(f'config file {path} is not valid: {exc}') from None

    values = {'path': path}
    for section, key, kind, default in KEYS:
        raw = parser.get(section, key, fallback=None)
        if raw is None or raw.strip() == '':
            if default is None:
                raise ConfigError(f'{path}: required key [{section}] {key} is missing')
            values[key] = default
            continue
        try:
            values[key] = kind(raw.strip())
        except ValueError:
            raise ConfigError(f'{path}: [{section}] {key} = {raw!r} is not '
                              f'a valid {kind.__name__}') from None
    if values['loglevel'].lower() not in LOGLEVELS:
        raise ConfigError(f"{path}: [General] loglevel = {values['loglevel']!r}"
                          f" is not one of {', '.join(LOGLEVELS)}")
    values['loglevel'] = values['loglevel'].lower()
    for key in ('max_upload_bytes', 'resend_window', 'sleep'):
        if values[key] < 0:
            raise ConfigError(f'{path}: {key} = {values[key]} must not be negative')
    if values['batch_files'] < 1:
        raise ConfigError(f"{path}: [Writer] batch_files = {values['batch_files']} must be at least 1")
    return Config(**values)


def setup_logging(config, suffix):
    """Log to ``config.log`` + ``suffix`` (``-`` logs to stderr).

    Each process kind has its own file (``hisparc.log-wsgi``,
    ``hisparc.log-writer``); a WatchedFileHandler follows logrotate.
    """
    if config.log == '-':
        handler = logging.StreamHandler(sys.stderr)
    else:
        handler = logging.handlers.WatchedFileHandler(config.log + suffix)
    handler.setFormatter(logging.Formatter(
        '%(asctime)s %(process)d %(name)s %(levelname)s %(message)s'))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(config.loglevel.upper())
