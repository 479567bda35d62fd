"""A fresh copy of the checkout installs and runs with no C compiler: `make serve` and `make test`.

The install runs the Makefile's own steps in a new virtualenv, with every
compiler taken off ``PATH`` and ``CC``/``CXX`` set to ``false``: anything that
tried to build from source would fail. uWSGI comes as a binary wheel (pyuwsgi).
"""

import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.support import processes, uwsgi_server

pytestmark = pytest.mark.slow

ROOT = pathlib.Path(__file__).resolve().parent.parent
COMPILER = re.compile(r'(^|-)(gcc|g\+\+|cc|c\+\+|cpp|clang|clang\+\+|tcc)(-[0-9.]+)?$')
NOT_COPIED = shutil.ignore_patterns(
    '.venv',
    'var',
    '.git',
    '*.egg-info',
    '__pycache__',
    '.pytest_cache',
    '.mypy_cache',
    '.ruff_cache',
    'build',
    'dist',
)


def path_without_compilers(tmp_path):
    """A PATH of one folder that links every program on today's PATH but the compilers."""
    farm = tmp_path / 'bin'
    farm.mkdir()
    for folder in os.environ.get('PATH', '').split(os.pathsep):
        if not os.path.isdir(folder) or '.venv' in folder:
            continue
        for entry in os.scandir(folder):
            target = farm / entry.name
            if COMPILER.search(entry.name) or target.exists() or not os.access(entry.path, os.X_OK):
                continue
            target.symlink_to(entry.path)
    return str(farm)


def beside_the_checkout(checkout):
    """Lay ``../shared`` beside the copy as CI lays it beside a fresh clone, where it exists here.

    The copy's own ``make test`` then runs the capture tests on the installed
    wheel too; under CI, where ``../shared`` must exist, they would fail without it.
    """
    shared = ROOT.parent / 'shared'
    if shared.is_dir():
        (checkout.parent / 'shared').symlink_to(shared)


def test_a_fresh_copy_installs_serves_and_tests_without_a_compiler(tmp_path):
    checkout = tmp_path / 'checkout'
    shutil.copytree(ROOT, checkout, ignore=NOT_COPIED)
    beside_the_checkout(checkout)
    env = {**os.environ, 'PATH': path_without_compilers(tmp_path), 'CC': 'false', 'CXX': 'false'}
    # An empty pip cache, and wheels only: a wheel built here earlier from a
    # source package cannot stand in for one that installs without a compiler.
    env |= {'PIP_CACHE_DIR': str(tmp_path / 'pip-cache'), 'PIP_ONLY_BINARY': ':all:'}
    env.pop('VIRTUAL_ENV', None)
    assert shutil.which('gcc', path=env['PATH']) is None
    assert shutil.which('cc', path=env['PATH']) is None
    python = os.path.realpath(sys.executable)  # the interpreter the project's venv came from

    started = time.monotonic()
    install = subprocess.run(
        ['make', '.venv/.installed', f'PYTHON={python}'],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    print(f'install from scratch: {time.monotonic() - started:.0f} s')
    venv_bin = checkout / '.venv' / 'bin'
    version = subprocess.run(
        [venv_bin / 'uwsgi', '--version'], capture_output=True, text=True, env=env, check=True
    )
    assert version.stdout.startswith('2.')

    # make serve: the datastore answers and stores an upload
    port = uwsgi_server.free_port()
    serve = subprocess.Popen(
        ['make', 'serve', f'SERVE_ARGS=--port {port} --var {tmp_path / "var"}'],
        cwd=checkout,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f'http://127.0.0.1:{port}/hisparc/upload', timeout=2) as r:
                    assert r.read() == b'400'
                break
            except OSError:
                assert serve.poll() is None, serve.stdout.read().decode()
                assert time.monotonic() < deadline, 'make serve did not answer'
                time.sleep(0.2)
        simulate = subprocess.run(
            [
                venv_bin / 'hisparc-datastore',
                'simulate',
                '--url',
                f'http://127.0.0.1:{port}/hisparc/upload',
                '--station',
                '99',
                '--password',
                'demo',
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert simulate.returncode == 0, simulate.stdout + simulate.stderr
    finally:
        os.killpg(serve.pid, signal.SIGINT)
        try:
            serve.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(serve.pid, signal.SIGKILL)
            serve.wait(10)

    # make test: the suite's real-uWSGI tests run on the installed wheel
    tests = subprocess.run(
        ['make', 'test', 'PYTEST_ARGS=-q tests/test_wsgi_uwsgi.py'],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-3000:]
    assert ' passed' in tests.stdout


def venv_with(tmp_path, name, requirement, env):
    """A new virtualenv under tmp_path with ``requirement`` installed (not editable)."""
    venv = tmp_path / name
    subprocess.run([os.path.realpath(sys.executable), '-m', 'venv', venv], check=True, env=env)
    result = subprocess.run(
        [venv / 'bin' / 'pip', 'install', '-q', requirement],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return venv / 'bin'


def test_the_endpoint_alone_installs_with_the_standard_library_and_prometheus_client(tmp_path, make_config):
    env = {**os.environ, 'PATH': path_without_compilers(tmp_path), 'CC': 'false'}
    env.pop('VIRTUAL_ENV', None)
    checkout = tmp_path / 'checkout'
    shutil.copytree(ROOT, checkout, ignore=NOT_COPIED)
    bin_ = venv_with(tmp_path, 'endpoint', str(checkout), env)
    script = f"""
import importlib.util, io, sys, datetime
from datastore import protocol, py2pickle
from wsgi import wsgi_app
events = [{{'header': {{'eventtype_uploadcode': 'CIC', 'datetime': datetime.datetime(2024, 1, 1)}},
            'datalist': [{{'data_uploadcode': 'PH1', 'data': 5}}]}}]
body = protocol.encode(501, 's3cret', py2pickle.dumps(events))
environ = {{'CONTENT_LENGTH': str(len(body)), 'wsgi.input': io.BytesIO(body)}}
reply = b''.join(wsgi_app.application(environ, lambda *a: None, configfile={make_config()!r}))
print(reply.decode(), *(importlib.util.find_spec(name) is None for name in ('numpy', 'tables')))
"""
    out = subprocess.run(
        [bin_ / 'python', '-c', script], capture_output=True, text=True, env=env, cwd=tmp_path, check=True
    )
    assert out.stdout.split() == ['100', 'True', 'True']
    listed = subprocess.run(
        [bin_ / 'pip', 'list', '--format=json'], capture_output=True, text=True, env=env, check=True
    )
    installed = {package['name'].lower().replace('_', '-') for package in json.loads(listed.stdout)}
    # the metrics' one pure-Python library, and the tools a new virtualenv comes with
    assert installed - {'pip', 'setuptools', 'wheel'} == {'hisparc-datastore', 'prometheus-client'}


def test_serve_runs_from_an_installed_package(tmp_path):
    env = {**os.environ, 'PATH': path_without_compilers(tmp_path), 'CC': 'false'}
    env.pop('VIRTUAL_ENV', None)
    checkout = tmp_path / 'checkout'
    shutil.copytree(ROOT, checkout, ignore=NOT_COPIED)
    bin_ = venv_with(tmp_path, 'host', f'{checkout}[serve]', env)
    shutil.rmtree(checkout)  # nothing of the source tree is left to lean on
    port = uwsgi_server.free_port()
    serve = subprocess.Popen(
        [bin_ / 'hisparc-datastore', 'serve', '--port', str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        processes.wait_for(
            lambda: serve.poll() is not None or processes.answers(port), what='serve to answer'
        )
        assert serve.poll() is None, serve.stdout.read().decode()
        simulate = subprocess.run(
            [
                bin_ / 'hisparc-datastore',
                'simulate',
                '--url',
                f'http://127.0.0.1:{port}/hisparc/upload',
                '--station',
                '99',
                '--password',
                'demo',
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert simulate.returncode == 0, simulate.stdout + simulate.stderr
        processes.wait_for(lambda: list((tmp_path / 'var' / 'data').glob('*/*/*.h5')), what='the day file')
    finally:
        os.killpg(serve.pid, signal.SIGINT)
        try:
            serve.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(serve.pid, signal.SIGKILL)
            serve.wait(10)
