"""Debian packages a test needs: installed with apt where missing, when the tests run as root (as CI does)."""

import os
import shutil
import subprocess


def missing(commands, packages):
    """Why ``commands`` cannot run here, or None once they can (``packages`` installed as root)."""
    if all(map(shutil.which, commands)):
        return None
    if os.geteuid() != 0:
        return f'{", ".join(commands)} not installed (apt-get install {" ".join(packages)})'
    environment = {**os.environ, 'DEBIAN_FRONTEND': 'noninteractive'}
    for command in (['apt-get', 'update', '-q'], ['apt-get', 'install', '-q', '-y', *packages]):
        done = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=900)
        if done.returncode != 0:
            return f'{" ".join(command)} failed: {done.stderr.strip()[-500:]}'
    return None if all(map(shutil.which, commands)) else f'apt installed no {", ".join(commands)}'
