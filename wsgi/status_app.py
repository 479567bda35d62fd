"""The monitoring endpoints beside the upload URL, mounted at ``/hisparc``.

    /hisparc/ready    200 when this host can take uploads, else 503; JSON with the reasons
    /hisparc/health   200 when the whole datastore is well, else 503; JSON with every reason
    /hisparc/status   the figures: an HTML page for a browser (Accept: text/html),
                      Prometheus text (?format=prometheus, Accept: text/plain or
                      OpenMetrics) or JSON (anything else)
    /hisparc/metrics  Prometheus text: every worker's upload counts and the figures

Only these exact paths: any other (``/hisparc/status/``, ``/hisparc/x/metrics``,
``/health``) reaches the upload endpoint, which ignores paths: a bare GET is
answered ``400`` there, as the stations' diagnostic tool expects. The nginx
site limits exactly these paths to the monitoring hosts, so a page served on
any other path would be open to everyone.

Deployments run it under uWSGI as ``status_app.app(configfile)``. It
answers for the configuration the upload endpoint uses (the last good version
of the file), with what is wrong with the file on disk (``config_problems``,
a reason the datastore is not well). No PyTables here.
"""

from __future__ import annotations

import functools
import json
import logging
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any

from datastore import config as config_mod
from datastore import health, status

from . import metrics, page, wsgi_app

log = logging.getLogger('wsgi.status')

JSON = 'application/json'
HTML = 'text/html; charset=utf-8'

Reply = tuple[str, str, bytes]  # HTTP status, content type, body


def verdict(name: str, reasons: list[str]) -> Reply:
    """200 or 503, with a JSON body that lists ``reasons``."""
    body = json.dumps({name: not reasons, 'reasons': reasons}, indent=1).encode()
    return ('503 Service Unavailable' if reasons else '200 OK', JSON, body)


def ready(config: config_mod.Config, _environ: dict[str, Any]) -> Reply:
    return verdict('ready', health.ready(config))


def healthy(config: config_mod.Config, _environ: dict[str, Any]) -> Reply:
    return verdict('healthy', health.health(config, status.gather(config)))


def prometheus(config: config_mod.Config, _environ: dict[str, Any]) -> Reply:
    figures = status.gather(config)
    not_ready = health.ready(config)
    unwell = not_ready or health.problems(config, figures)
    body = metrics.exposition(config, figures, ready=not not_ready, healthy=not unwell)
    return ('200 OK', metrics.CONTENT_TYPE, body)


def wanted(environ: dict[str, Any]) -> str:
    """The format the client asks for: html, prometheus or json."""
    query = urllib.parse.parse_qs(environ.get('QUERY_STRING', ''))
    if 'format' in query:
        return query['format'][-1]
    accept = environ.get('HTTP_ACCEPT', '')
    if 'text/html' in accept:
        return 'html'
    if 'openmetrics' in accept or accept.startswith('text/plain'):
        return 'prometheus'
    return 'json'


def figures(config: config_mod.Config, environ: dict[str, Any]) -> Reply:
    form = wanted(environ)
    if form == 'prometheus':
        return prometheus(config, environ)
    gathered = status.gather(config)
    reasons = health.health(config, gathered)
    if form == 'html':
        return ('200 OK', HTML, page.render(gathered, reasons).encode())
    gathered['health'] = {'healthy': not reasons, 'reasons': reasons}
    return ('200 OK', JSON, json.dumps(gathered, indent=1).encode())


# Keyed by the whole path, SCRIPT_NAME + PATH_INFO: mounted at /hisparc
# (uWSGI's manage-script-name) that is '/hisparc' + '/status', called as the
# only app '' + '/hisparc/status'; the same path either way.
ROUTES: dict[str, Callable[[config_mod.Config, dict[str, Any]], Reply]] = {
    '/hisparc/ready': ready,
    '/hisparc/health': healthy,
    '/hisparc/status': figures,
    '/hisparc/metrics': prometheus,
}


def application(
    environ: dict[str, Any], start_response: Callable[..., Any], configfile: str
) -> Iterable[bytes]:
    route = ROUTES.get(environ.get('SCRIPT_NAME', '') + environ.get('PATH_INFO', ''))
    if route is None:
        return wsgi_app.application(environ, start_response, configfile)
    try:
        config = config_mod.following(configfile).get()
    except config_mod.ConfigError as exc:
        log.error('monitoring without a configuration: %s', exc)
        reasons = [f'configuration: {exc}']
        body = json.dumps({'ready': False, 'healthy': False, 'reasons': reasons}, indent=1).encode()
        http, content_type = '503 Service Unavailable', JSON
    else:
        http, content_type, body = route(config, environ)
    start_response(
        http,
        [('Content-Type', content_type), ('Content-Length', str(len(body))), ('Cache-Control', 'no-store')],
    )
    return [body]


def app(configfile: str) -> Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]:
    """The monitoring app as uWSGI loads it: ConfigError unless ``configfile`` is usable now."""
    config_mod.following(configfile)
    return functools.partial(application, configfile=configfile)
