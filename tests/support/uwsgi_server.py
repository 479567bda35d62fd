"""Run an app under a real uWSGI with the production options, and post to it as a station does.

    with uwsgi_server.running(config_path) as server:
        assert server.post(uwsgi_server.upload_body(501, 's3cret', pickled)) == '100'

The server runs ``datastore.uwsgi_ini`` (what ``examples/uwsgi.ini`` is) on a
free 127.0.0.1 port and on a unix socket (``server.socket``, for nginx), with
the example application.wsgi (or another app) as the upload app, without the
attached writer unless asked, and is always killed, with its workers, on
leaving.
"""

import contextlib
import http.client
import os
import pathlib
import signal
import socket
import subprocess
import sys
import tempfile
import time

from datastore import config as config_mod
from datastore import protocol, uwsgi_ini

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / 'examples'
APPLICATION = EXAMPLES / 'application.wsgi'
UWSGI = pathlib.Path(sys.executable).with_name('uwsgi')

upload_body = protocol.encode  # the one encoder, shared with the simulator


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class Server:
    def __init__(self, port, process, log_path, run_dir):
        self.port, self.process, self.log_path = port, process, log_path
        self.url = f'http://127.0.0.1:{port}/hisparc/upload'
        self.run_dir = pathlib.Path(run_dir)  # the socket, pidfile, master FIFO and stats
        self.socket = self.run_dir / 'uwsgi.sock'

    def request(self, method='POST', body=b'', path='/hisparc/upload', timeout=30):
        """(HTTP status, content type, body text) of one request."""
        conn = http.client.HTTPConnection('127.0.0.1', self.port, timeout=timeout)
        try:
            headers = {'Content-Type': 'application/x-www-form-urlencoded'} if body else {}
            conn.request(method, path, body=body or None, headers=headers)
            response = conn.getresponse()
            return response.status, response.getheader('Content-Type'), response.read().decode('latin1')
        finally:
            conn.close()

    def post(self, body, **kwargs):
        """The reply body of a POST; anything but HTTP 200 text/plain fails loudly."""
        status, kind, text = self.request('POST', body, **kwargs)
        if status != 200 or kind != 'text/plain':
            raise AssertionError(f'HTTP {status} {kind}: {text[:200]!r}')
        return text

    def log(self):
        return pathlib.Path(self.log_path).read_text(errors='replace')


def ini(configfile, port, run_dir, processes=2, application=APPLICATION, attach_writer=False):
    """The production ini for ``configfile`` on loopback ``port``."""
    return uwsgi_ini.render(
        {
            'home_dir': str(ROOT),
            'venv': sys.prefix,
            'python': sys.executable,
            'config_file': str(configfile),
            'run_dir': str(run_dir),
            'http_socket': f'127.0.0.1:{port}',
            'processes': str(processes),
            'upload_app': str(application),
            'writer': f'{sys.executable} -m writer',
        },
        attach_writer=attach_writer,
    )


@contextlib.contextmanager
def running(
    configfile,
    *options,
    processes=2,
    application=APPLICATION,
    log_path=None,
    startup_timeout=30.0,
    attach_writer=False,
    env=None,
):
    """A uWSGI serving ``application`` with ``configfile``, on a free loopback port.

    ``options`` are added to uWSGI's command line, after the ini; ``env`` to its environment.
    """
    port = free_port()
    log_path = log_path or f'{configfile}.uwsgi.log'
    with tempfile.TemporaryDirectory(prefix='uwsgi-') as run_dir:
        ini_path = pathlib.Path(run_dir, 'uwsgi.ini')
        ini_path.write_text(ini(configfile, port, run_dir, processes, application, attach_writer))
        command = [str(UWSGI), '--ini', str(ini_path), *options]
        environment = {**os.environ, config_mod.ENVIRONMENT: str(configfile), **(env or {})}
        with open(log_path, 'ab') as log:
            process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        server = Server(port, process, log_path, run_dir)
        try:
            _wait_until_answering(server, startup_timeout)
            yield server
        finally:
            stop(process)


def _wait_until_answering(server, timeout):
    deadline = time.monotonic() + timeout
    while True:
        if server.process.poll() is not None:
            raise RuntimeError(f'uWSGI exited with {server.process.returncode}:\n{server.log()[-3000:]}')
        try:
            server.request('GET', timeout=2)
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f'uWSGI did not answer within {timeout} s:\n{server.log()[-3000:]}'
                ) from None
            time.sleep(0.05)
        else:
            return


def stop(process):
    """SIGTERM the master's process group, then SIGKILL what is left."""
    for sig, grace in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(grace)
            break
        except subprocess.TimeoutExpired:
            continue
    # workers outlive a master killed with SIGKILL: clear the whole group
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
