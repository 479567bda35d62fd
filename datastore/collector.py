"""Python's cyclic garbage collector, paused while a batch is handled.

An upload or a writer pass unpickles thousands of dicts and lists (events,
their headers and datalists) that all live until it is done: the collector
would walk them again and again, a few per cent of the CPU, and find nothing
to collect, since their reference counts free them when it is done. Any cycle
left behind is collected once the collector runs again, after it.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """The collector off in this block (and left off if it already was)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
