"""Programs of Debian's packages that tests run for real (nginx, fail2ban, chromium, promtool, PostgreSQL...).

Where one is missing and the tests run as root (as CI does), it is installed
with apt; otherwise the test is skipped, saying why. apt is asked once a test
session: a package it could not install is skipped at once after that, for
the same reason (each attempt may take minutes where no mirror answers).
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

SEARCHED = os.pathsep.join([os.environ.get('PATH', ''), '/usr/sbin', '/sbin'])
APT_ENVIRONMENT = {**os.environ, 'DEBIAN_FRONTEND': 'noninteractive'}
APT_TIMEOUT = 900  # seconds; a first install on a fresh machine downloads a lot

# What apt said this session: packages -> why they cannot be had (None: installed),
# and 'update' -> why the package lists could not be updated (None: updated)
TRIED: dict[tuple[str, ...] | str, str | None] = {}


def _found(commands):
    return all(shutil.which(name, path=SEARCHED) for name in commands)


def _may_install():
    return os.geteuid() == 0 and shutil.which('apt-get') is not None


def _apt(*arguments):
    command = ['apt-get', *arguments]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, env=APT_ENVIRONMENT, timeout=APT_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        return f'{" ".join(command)} did not finish within {APT_TIMEOUT} s'
    return None if done.returncode == 0 else f'{" ".join(command)} failed: {done.stderr.strip()[-500:]}'


def _install(packages):
    """Why apt could not install ``packages`` (None: it did), asking it at most once a session."""
    if packages not in TRIED:
        failed = _apt('install', '-y', '-q', *packages)
        # the package lists of a fresh machine may be empty: update them then, once
        if failed and 'update' not in TRIED:
            TRIED['update'] = _apt('update', '-q')
            failed = TRIED['update'] or _apt('install', '-y', '-q', *packages)
        TRIED[packages] = failed
    return TRIED[packages]


def missing(commands, packages):
    """Why ``commands`` cannot run here, or None once they can (``packages`` installed where root)."""
    if _found(commands):
        return None
    if not _may_install():
        return f'{", ".join(commands)} not installed (apt-get install {" ".join(packages)})'
    failed = _install(tuple(packages))
    if failed:
        return failed
    return None if _found(commands) else f'apt installed no {", ".join(commands)}'


def program(name, package):
    """The path of ``name``; the test is skipped, saying why, where it cannot be had."""
    why_not = missing((name,), (package,))
    if why_not:
        pytest.skip(why_not)
    return shutil.which(name, path=SEARCHED)
