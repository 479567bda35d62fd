"""The worker keeps the memory an upload frees for the next one (glibc only)."""

import platform
import subprocess
import sys

import pytest

# Upload-sized buffers allocated and freed 100 times; the page faults they cost.
FAULTS = """
import resource, sys
from wsgi import memory
if sys.argv[1] == 'keep':
    assert memory.keep_freed_memory()
chunk = b'%%%' * 52000
def upload():
    body = chunk + b'&'
    data = body.replace(b'%', b'=')
    return len(data[1:] + body[1:])
upload()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(100):
    upload()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def faults(mode):
    return int(
        subprocess.run(
            [sys.executable, '-c', FAULTS, mode], check=True, capture_output=True, text=True
        ).stdout
    )


@pytest.mark.skipif(platform.libc_ver()[0] != 'glibc', reason='mallopt is glibc')
def test_freed_upload_buffers_are_reused_without_page_faults():
    assert faults('default') > 1000  # handed back and faulted in, every time
    assert faults('keep') < 50
