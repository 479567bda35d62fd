"""Programs of Debian's packages that tests run for real (nginx, fail2ban, chromium, promtool, PostgreSQL...).

Where one is missing and the tests run as root (as CI does), it is installed
with apt; otherwise the test is skipped, saying why.
"""

import os
import shutil
import subprocess

import pytest

SEARCHED = os.pathsep.join([os.environ.get('PATH', ''), '/usr/sbin', '/sbin'])
APT_ENVIRONMENT = {**os.environ, 'DEBIAN_FRONTEND': 'noninteractive'}


def _found(commands):
    return all(shutil.which(name, path=SEARCHED) for name in commands)


def _apt(*arguments):
    command = ['apt-get', *arguments]
    done = subprocess.run(command, capture_output=True, text=True, env=APT_ENVIRONMENT, timeout=900)
    return None if done.returncode == 0 else f'{" ".join(command)} failed: {done.stderr.strip()[-500:]}'


def missing(commands, packages):
    """Why ``commands`` cannot run here, or None once they can (``packages`` installed where root)."""
    if _found(commands):
        return None
    if os.geteuid() != 0 or not shutil.which('apt-get'):
        return f'{", ".join(commands)} not installed (apt-get install {" ".join(packages)})'
    # the package lists of a fresh machine may be empty: update them only then
    failed = _apt('install', '-y', '-q', *packages) and (
        _apt('update', '-q') or _apt('install', '-y', '-q', *packages)
    )
    if failed:
        return failed
    return None if _found(commands) else f'apt installed no {", ".join(commands)}'


def program(name, package):
    """The path of ``name``; the test is skipped, saying why, where it cannot be had."""
    why_not = missing((name,), (package,))
    if why_not:
        pytest.skip(why_not)
    return shutil.which(name, path=SEARCHED)
