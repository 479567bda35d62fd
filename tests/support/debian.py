"""Programs of Debian's packages that tests run for real (nginx, fail2ban, systemd-analyze, logrotate)."""

import os
import shutil
import subprocess

import pytest

SEARCHED = os.pathsep.join([os.environ.get('PATH', ''), '/usr/sbin', '/sbin'])


def program(name, package):
    """The path of ``name``; installed from ``package`` where it is missing and the tests run as
    root on Debian, otherwise the test is skipped, saying why."""
    found = shutil.which(name, path=SEARCHED)
    if found is None and os.geteuid() == 0 and shutil.which('apt-get'):
        subprocess.run(
            ['apt-get', 'install', '-y', '-q', package],
            capture_output=True,
            timeout=600,
            env={**os.environ, 'DEBIAN_FRONTEND': 'noninteractive'},
        )
        found = shutil.which(name, path=SEARCHED)
    if found is None:
        pytest.skip(f"{name} is not installed (Debian's {package} package)")
    return found
