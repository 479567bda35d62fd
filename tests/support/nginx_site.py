"""The example nginx site (Debian's nginx) run for real in front of uWSGI instances.

    with nginx_site.running(nginx_site.binary(), [server.socket], folder) as port:
        ...  # http://127.0.0.1:port/ is the site

Several sockets make the site's upstream a group of upload hosts, as a
deployment with several hosts has it.
"""

import contextlib
import os
import subprocess

import pytest

from tests.support import debian, processes, uwsgi_server

SITE = uwsgi_server.EXAMPLES / 'nginx' / 'hisparc-datastore.conf'
UWSGI_PARAMS = '/etc/nginx/uwsgi_params'  # of Debian's nginx package
LIMIT = 16 * 1024 * 1024  # the site's client_max_body_size, [General] max_upload_bytes


def binary():
    """nginx, installed where missing (as root), or the test is skipped."""
    found = debian.program('nginx', 'nginx')
    if not os.path.exists(UWSGI_PARAMS):
        pytest.skip(f'{UWSGI_PARAMS} is missing')
    return found


@contextlib.contextmanager
def running(nginx, sockets, folder):
    """nginx with the example site on a free loopback port, passing to uWSGI's unix ``sockets``."""
    port = uwsgi_server.free_port()
    site = SITE.read_text()
    upstream = ''.join(f'server unix:{path};\n    ' for path in sockets).rstrip()
    for example, here in (
        ('server unix:/run/hisparc/uwsgi.sock;', upstream),
        ('listen 80;', f'listen 127.0.0.1:{port};'),
        ('listen [::]:80;', ''),
        ('include uwsgi_params;', f'include {UWSGI_PARAMS};'),
    ):
        if example not in site:
            raise AssertionError(f'the example site no longer has {example!r}')
        site = site.replace(example, here)
    folder.mkdir()
    temp_paths = ''.join(
        f'{kind}_temp_path {folder}/{kind};' for kind in ('client_body', 'uwsgi', 'proxy', 'fastcgi', 'scgi')
    )
    (folder / 'nginx.conf').write_text(
        # root's tests keep their files in folders of root's alone: nginx's workers run as root too
        ('user root root;\n' if os.geteuid() == 0 else '')
        + f'pid {folder}/nginx.pid;\nerror_log {folder}/error.log;\nevents {{ worker_connections 512; }}\n'
        + f'http {{\naccess_log {folder}/access.log;\n{temp_paths}\n{site}\n}}\n'
    )
    command = [nginx, '-p', str(folder), '-c', str(folder / 'nginx.conf'), '-e', str(folder / 'error.log')]
    process = subprocess.Popen(
        [*command, '-g', 'daemon off;'],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        processes.wait_for(
            lambda: process.poll() is not None or processes.answers(port, '/hisparc/status'),
            what='nginx to answer',
        )
        if process.poll() is not None:
            raise AssertionError((folder / 'error.log').read_text())
        yield port
    finally:
        uwsgi_server.stop(process)
