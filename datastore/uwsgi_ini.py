"""The uWSGI options of the datastore, in one place.

``examples/uwsgi.ini`` (production), ``hisparc-datastore serve`` and the tests'
uWSGI server are all this table rendered with their own placeholder values;
a test checks that ``examples/uwsgi.ini`` is exactly ``render()``. Every
option is named as in the uWSGI documentation, and ``strict`` makes uWSGI
refuse any it does not know.
"""

from __future__ import annotations

from collections.abc import Mapping

# Name -> its production value (examples/uwsgi.ini). The names in PLACEHOLDERS
# stay uWSGI placeholders, for the operator to adapt at the top of the file;
# the others are written into the options.
PLACEHOLDERS = ('home_dir', 'config_file', 'run_dir')
PRODUCTION = {
    'home_dir': '/srv/hisparc-datastore',
    'venv': '%(home_dir)/.venv',
    'python': '%(venv)/bin/python',
    'config_file': '/etc/hisparc/datastore.ini',
    'run_dir': '/run/hisparc',
    'http_socket': '127.0.0.1:8080',
    'processes': '4',
    'upload_app': '%(home_dir)/examples/application.wsgi',
    'status_app': '%(home_dir)/examples/status.wsgi',
    'writer': '%(venv)/bin/hisparc-writer',
}

# Groups of options, each after its comment (blank: none), in the file's order
# fmt: off
GROUPS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ('', (
        ('strict', 'true'),
        ('virtualenv', '%(venv)'),
        ('env', 'HISPARC_DATASTORE_CONFIG=%(config_file)'),
    )),
    ('', (
        ('master', 'true'),
        ('processes', '%(processes)'),
        ('threads', '1'),
        ('need-app', 'true'),
        ('die-on-term', 'true'),
        ('vacuum', 'true'),
    )),
    ("""\
nginx (examples/nginx/) passes uploads to the unix socket; the loopback HTTP
socket is for checks on the host itself. The unix socket is open to every
local user (nginx runs as another), as the loopback socket is anyway.""", (
        ('socket', '%(run_dir)/uwsgi.sock'),
        ('chmod-socket', '666'),
        ('http-socket', '%(http_socket)'),
    )),
    ("""\
The master's pid, its FIFO (`echo r > master.fifo` reloads gracefully, as
SIGHUP does: `systemctl reload`, which checks config.ini first), its stats.
A reload starts the master anew from the virtualenv's Python (uWSGI of
pyuwsgi runs inside Python; a uWSGI built as its own program: drop
binary-path). config.ini needs no reload: the processes follow the file and
take up a new version only if it has no problem.""", (
        ('pidfile', '%(run_dir)/uwsgi.pid'),
        ('master-fifo', '%(run_dir)/master.fifo'),
        ('stats', '%(run_dir)/stats.sock'),
        ('binary-path', '%(python)'),
    )),
    ("""\
Both apps in one interpreter. The first mount is the default app: every path
reaches the upload endpoint (which ignores path and method) but the monitoring
ones, /hisparc/ready, /hisparc/health, /hisparc/status and /hisparc/metrics.""", (
        ('single-interpreter', 'true'),
        ('manage-script-name', 'true'),
        ('mount', '/hisparc/upload=%(upload_app)'),
        ('mount', '/hisparc=%(status_app)'),
    )),
    ("""\
Bodies: the app reads exactly Content-Length bytes itself, answers a body
that breaks off, or one over [General] max_upload_bytes, with 400 (it reads
and drops up to twice the limit first, so the sender reads the 400), and
uWSGI buffers nothing. A slow sender holds a worker while it sends: put a
buffering proxy (nginx, examples/nginx/) in front. A sender silent this long
gets its 400 (the body could not be read).""", (
        ('socket-timeout', '60'),
    )),
    ("""\
A request still running after this long kills its worker (a new one is
spawned); well within the Windows client's 600 s read timeout, so the
station soon retries.""", (
        ('harakiri', '300'),
    )),
    ("""\
A worker whose resident memory passes this many MB is killed and replaced,
even mid-request (the master looks every few seconds): behind the bound the
upload endpoint sets itself (32 times the pickle plus 50 MB, which it can set
only while the worker runs one thread). A worker holds about 30 MB, 160 MB
while it takes a 12 MB upload; the largest upload the default [General]
max_upload_bytes lets in (16 MiB) may need 650.""", (
        ('evil-reload-on-rss', '1024'),
    )),
)

WRITER = ("""\
The writer: started with uWSGI, restarted if it dies, stopped by SIGTERM
(it finishes its pass first). Or run it on its own: hisparc-writer.service.""", (
    ('attach-daemon2', 'cmd=exec %(writer) %(config_file),stopsignal=15'),
))
# fmt: on

HEADER = """\
; uWSGI for the HiSPARC datastore in production: the upload endpoint, the
; monitoring endpoint and the writer, under one master.
;
;   uwsgi --ini /srv/hisparc-datastore/examples/uwsgi.ini
;
; Every option is named as in the uWSGI documentation; `strict` rejects any
; other. Adapt the placeholders below to the installation.
"""

FOOTER = """
; run as the datastore's user
;uid = hisparc
;gid = hisparc
"""


def _comment(text: str) -> str:
    return ''.join(f'; {line}\n' for line in text.splitlines())


def _substitute(text: str, values: Mapping[str, str]) -> str:
    for name, value in values.items():
        if name not in PLACEHOLDERS:
            text = text.replace(f'%({name})', value)
    return text


def render(values: Mapping[str, str] | None = None, attach_writer: bool = True, header: str = HEADER) -> str:
    """The ini file for ``values`` (production values where not given)."""
    values = {**PRODUCTION, **(values or {})}
    unknown = set(values) - set(PRODUCTION)
    if unknown:
        raise ValueError(f'unknown names: {", ".join(sorted(unknown))}')
    for _ in values:  # values may name each other
        values = {name: _substitute(value, values) for name, value in values.items()}
    lines = [header, '[uwsgi]\n']
    lines += [f'set-placeholder = {name}={values[name]}\n' for name in PLACEHOLDERS]
    for comment, options in GROUPS + ((WRITER,) if attach_writer else ()):
        lines.append('\n' + _comment(comment))
        lines += [f'{option} = {_substitute(value, values)}\n' for option, value in options]
    lines.append(FOOTER)
    return ''.join(lines)
