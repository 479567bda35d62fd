"""Keep the memory an upload frees for the next upload.

Each upload allocates and frees about 600 kB in large buffers (the body, the
decoded pickle, the spool file). glibc hands such memory back to the kernel
after every request, and the next request faults it in again page by page:
about 150 page faults per upload, a tenth of the worker's CPU time. Raising
glibc's trim and mmap thresholds keeps it in the worker's heap instead, up
to ``KEEP`` bytes per process.
"""

from __future__ import annotations

import ctypes

M_TRIM_THRESHOLD = -1  # from glibc's malloc.h
M_MMAP_THRESHOLD = -3
KEEP = 32 * 1024 * 1024  # also glibc's largest mmap threshold on 64-bit


def keep_freed_memory() -> bool:
    """True if set; False where the C library has no ``mallopt`` (not glibc)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return all(mallopt(option, KEEP) == 1 for option in (M_TRIM_THRESHOLD, M_MMAP_THRESHOLD))
