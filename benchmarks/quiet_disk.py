"""Wait for a quiet disk before timing what creates files.

On a journal-less ext4 (as on the development machine), creating a file in
the minutes after thousands were deleted (an install, a test run, another
benchmark's clean-up) costs up to 0.8 ms of kernel CPU instead of 20 us: the
kernel skips the inodes freed in the last minutes. Every spooling app and
the writer pay for it, a null app or a bare reference less, which would skew
the ratios.
"""

import os
import tempfile
import time

QUIET_MICROSECONDS = 100  # creating a file on a quiet disk: 20 us here
QUIET_PATIENCE = 360.0


def creation_us(folder, count=200):
    """Microseconds to create (and close) an empty file in a new folder under ``folder``."""
    with tempfile.TemporaryDirectory(dir=folder) as probe:
        started = time.perf_counter()
        for i in range(count):
            os.close(os.open(os.path.join(probe, str(i)), os.O_WRONLY | os.O_CREAT, 0o644))
        return (time.perf_counter() - started) / count * 1e6


def wait(folder):
    """Wait (up to QUIET_PATIENCE) until creating a file in ``folder`` is cheap again."""
    started = time.monotonic()
    cost = creation_us(folder)
    print(f'creating a file in {folder}: {cost:.0f} us', end='', flush=True)
    while cost > QUIET_MICROSECONDS and time.monotonic() - started < QUIET_PATIENCE:
        time.sleep(15)
        cost = creation_us(folder)
    waited = time.monotonic() - started
    print(f'; {cost:.0f} us after waiting {waited:.0f} s' if waited > 1 else '', flush=True)
