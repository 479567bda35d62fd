"""The monitoring endpoint beside the upload URL (``/hisparc/status``).

Answers the figures of ``hisparc-datastore status`` as JSON, or in the
Prometheus text format with ``?format=prometheus`` or an ``Accept`` header
asking for ``text/plain`` / OpenMetrics. Deployments run it under uWSGI as
``status_app.app(configfile)``. It serves the figures of the configuration
the upload endpoint uses (the last good version of the file), with what is
wrong with the file on disk (``config_problems``). No PyTables here.
"""

from __future__ import annotations

import functools
import json
import logging
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any

from datastore import config as config_mod
from datastore import status

log = logging.getLogger('wsgi.status')

JSON = 'application/json'
PROMETHEUS = 'text/plain; version=0.0.4; charset=utf-8'


def wants_prometheus(environ: dict[str, Any]) -> bool:
    query = urllib.parse.parse_qs(environ.get('QUERY_STRING', ''))
    if 'format' in query:
        return query['format'][-1] == 'prometheus'
    accept = environ.get('HTTP_ACCEPT', '')
    return 'openmetrics' in accept or accept.startswith('text/plain')


def application(
    environ: dict[str, Any], start_response: Callable[..., Any], configfile: str
) -> Iterable[bytes]:
    try:
        figures = status.gather(config_mod.following(configfile).get())
    except config_mod.ConfigError as exc:
        log.error('status unavailable: %s', exc)
        body = json.dumps({'error': str(exc)}).encode()
        start_response(
            '503 Service Unavailable', [('Content-Type', JSON), ('Content-Length', str(len(body)))]
        )
        return [body]
    if wants_prometheus(environ):
        content_type, body = PROMETHEUS, status.prometheus(figures).encode()
    else:
        content_type, body = JSON, json.dumps(figures, indent=1).encode()
    start_response(
        '200 OK',
        [('Content-Type', content_type), ('Content-Length', str(len(body))), ('Cache-Control', 'no-store')],
    )
    return [body]


def app(configfile: str) -> Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]:
    """The endpoint as uWSGI loads it: ConfigError unless ``configfile`` is usable now."""
    config_mod.following(configfile)
    return functools.partial(application, configfile=configfile)
