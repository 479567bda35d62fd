"""Who is asking: the client's address, and whether a refusal repeats one it already had.

The upload log names the client of every refusal, for people and for
fail2ban (``examples/fail2ban/``). A wrong password or an unknown station
that a client sends again, unchanged, is a misconfigured station retrying
(the Windows client every minute, pysparc every 0.4 s), not a new guess: its
log line says ``again``, and fail2ban counts only the new ones.
"""

from __future__ import annotations

import collections
import hashlib
from typing import Any

REMEMBERED = 4096  # refusals remembered per worker


def client_address(environ: dict[str, Any], trusted: frozenset[str]) -> str:
    """REMOTE_ADDR; behind a trusted proxy, the last address it was not itself told by a trusted one."""
    address = environ.get('REMOTE_ADDR') or '-'
    forwarded = environ.get('HTTP_X_FORWARDED_FOR', '')
    if address in trusted and forwarded:
        for hop in reversed([hop.strip() for hop in forwarded.split(',') if hop.strip()]):
            address = hop
            if hop not in trusted:
                break
    return address[:64]


class Repeats:
    """The refusals a worker gave lately, to tell a retry from a new guess."""

    def __init__(self, size: int = REMEMBERED) -> None:
        self.size = size
        self.seen: collections.OrderedDict[bytes, None] = collections.OrderedDict()

    def again(self, client: str, station: int, secret: bytes = b'') -> bool:
        """True if this very refusal was given before (and remember it)."""
        key = hashlib.blake2b(b'%s\0%d\0%s' % (client.encode(), station, secret), digest_size=16).digest()
        if key in self.seen:
            self.seen.move_to_end(key)
            return True
        self.seen[key] = None
        if len(self.seen) > self.size:
            self.seen.popitem(last=False)
        return False
