"""Waiting for real processes, and talking HTTP to them."""

import pathlib
import time
import urllib.request


def wait_for(condition, timeout=30.0, what='condition'):
    """The first true value of ``condition()``, polled; AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f'timed out waiting for {what}')
        time.sleep(0.1)


def gone(pid):
    """True once ``pid`` has exited (a zombie left for init counts as exited)."""
    try:
        state = pathlib.Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ('Z', 'X')


def get(port, path, timeout=5):
    with urllib.request.urlopen(f'http://127.0.0.1:{port}{path}', timeout=timeout) as reply:
        return reply.read().decode()


def post(port, path, body=b''):
    request = urllib.request.Request(f'http://127.0.0.1:{port}{path}', data=body, method='POST')
    with urllib.request.urlopen(request, timeout=10) as reply:
        return reply.read().decode()


def answers(port, path='/hisparc/status'):
    """The body at ``path`` if something answers on ``port``, else None."""
    try:
        return get(port, path, timeout=1)
    except OSError:
        return None
