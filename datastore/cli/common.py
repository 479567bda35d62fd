"""What the commands share: their description, the config argument, how they fail, argument types."""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import logging
import os
import pwd
import sys
import urllib.parse
from collections.abc import Callable

from datastore import config as config_mod


@dataclasses.dataclass(frozen=True)
class Command:
    """One ``hisparc-datastore`` command: its name, help, arguments and code."""

    name: str
    help: str
    run: Callable[[argparse.Namespace], int]
    arguments: Callable[[argparse.ArgumentParser], None] = lambda _parser: None
    config: bool = True  # takes --config


class Failure(Exception):
    """Ends the command with this message and exit status 1."""


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        '--config',
        '-c',
        default=config_mod.default_path(),
        help='config.ini (default: $HISPARC_DATASTORE_CONFIG or %(default)s)',
    )


def load_config(path: str) -> config_mod.Config:
    try:
        return config_mod.load(path)
    except config_mod.ConfigError as exc:
        raise Failure(str(exc)) from None


def operator_log(config: config_mod.Config, name: str) -> logging.Logger:
    """The logger of an operator's action, writing to ``[General] log`` + ``-tools``.

    The tools never write the services' own logs (a file they made as root
    would lock the service out). A log that cannot be opened is said on
    stderr and the action goes on.
    """
    try:
        config_mod.setup_logging(config, config_mod.TOOLS_LOG)
    except OSError as exc:
        print(f'warning: this action is not logged: {exc}', file=sys.stderr)
    return logging.getLogger(f'tools.{name}')


def operator() -> str:
    """Who runs the command, for the log: the login behind sudo too."""
    try:
        user = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:  # a uid without a name (a container)
        user = f'uid {os.getuid()}'
    behind = os.environ.get('SUDO_USER')
    return f'{user} (sudo by {behind})' if behind and behind != user else user


# -- argument types ------------------------------------------------------------


def date(text: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r} is not a date (YYYY-MM-DD)') from None


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f'{text!r} is not a positive whole number')
    return value


def positive_number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f'{text!r} is not a positive number')
    return value


def http_url(text: str) -> str:
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ('http', 'https') or not parts.hostname:
        raise argparse.ArgumentTypeError(f'{text!r} is not an http:// URL')
    return text
