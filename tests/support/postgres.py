"""A real PostgreSQL for tests: Debian's server, in a cluster of its own, run as a non-root user.

    with postgres.cluster() as server:
        server.url          # postgresql://postgres@127.0.0.1:PORT/postgres
        server.stop(); server.start()

Where the server is missing it is installed with apt when the tests run as
root (as CI does); otherwise the test is skipped with the reason. The
cluster runs as the ``postgres`` user when the tests run as root (the
server refuses root), in a folder of its own under /tmp, on a free port.
"""

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile

import pytest

from tests.support import debian
from tests.support.uwsgi_server import free_port


def _bin():
    found = sorted(glob.glob('/usr/lib/postgresql/*/bin/initdb'))
    return os.path.dirname(found[-1]) if found else None


def available():
    """Why no PostgreSQL can run here, or None."""
    if _bin():
        return None
    why_not = debian.missing(('pg_ctlcluster',), ('postgresql',))
    return why_not or (None if _bin() else 'no initdb under /usr/lib/postgresql')


class Cluster:
    def __init__(self, folder, user):
        self.folder, self.user, self.port = folder, user, free_port()
        self.data = os.path.join(folder, 'data')
        self.url = f'postgresql://postgres@127.0.0.1:{self.port}/postgres'

    def _run(self, *command):
        prefix = ['runuser', '-u', self.user, '--'] if os.geteuid() == 0 else []
        done = subprocess.run([*prefix, *command], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f'{command[0]} failed: {done.stdout}{done.stderr}')

    def init(self):
        self._run(
            os.path.join(_bin(), 'initdb'), '-D', self.data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8'
        )

    def start(self):
        options = f'-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1'
        self._run(
            os.path.join(_bin(), 'pg_ctl'),
            '-D',
            self.data,
            '-o',
            options,
            '-l',
            f'{self.folder}/log',
            '-w',
            'start',
        )

    def stop(self):
        self._run(os.path.join(_bin(), 'pg_ctl'), '-D', self.data, '-m', 'fast', '-w', 'stop')


@contextlib.contextmanager
def cluster():
    why_not = available()
    if why_not:
        pytest.skip(why_not)
    user = 'postgres' if os.geteuid() == 0 else pwd.getpwuid(os.getuid()).pw_name
    folder = tempfile.mkdtemp(prefix='hisparc-pg-')
    if os.geteuid() == 0:
        shutil.chown(folder, user, user)
    server = Cluster(folder, user)
    server.init()
    server.start()
    try:
        yield server
    finally:
        with contextlib.suppress(RuntimeError):
            server.stop()
        shutil.rmtree(folder, ignore_errors=True)
