"""A real small disk for faults: a tmpfs of its own, filled up or made read-only."""

import contextlib
import os
import subprocess

import pytest

MB = 1 << 20


@contextlib.contextmanager
def tmpfs(path, size='200m'):
    """Mount a tmpfs of ``size`` at ``path`` (created); skipped where mounting is not allowed."""
    path.mkdir(exist_ok=True)
    done = subprocess.run(
        ['mount', '-t', 'tmpfs', '-o', f'size={size}', 'tmpfs', str(path)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f'cannot mount a tmpfs here (needs root): {done.stderr.strip()}')
    try:
        yield path
    finally:
        subprocess.run(['umount', '-l', str(path)], check=False)


def read_only(path):
    """Remount the tmpfs at ``path`` read-only, as the kernel does a disk after errors."""
    subprocess.run(['mount', '-o', 'remount,ro', str(path)], check=True)


class Filler:
    """Takes the free space of a filesystem, then gives it back a little at a time."""

    def __init__(self, folder):
        self.path = os.path.join(folder, 'filler')

    def free(self):
        st = os.statvfs(os.path.dirname(self.path))
        return st.f_bavail * st.f_frsize

    def fill(self, leave=0):
        with open(self.path, 'ab') as f:
            while self.free() > leave:
                try:
                    f.write(b'\0' * min(MB, max(self.free() - leave, 4096)))
                    f.flush()
                except OSError:
                    break

    def give_back(self, nbytes):
        size = os.path.getsize(self.path)
        os.truncate(self.path, max(0, size - nbytes))
