"""What makes an event sound: the one rule of the endpoint, the writer and ``requeue``.

A sound event has exactly the fixed shape of the protocol, checked level by
level and never deeper (a hostile batch cannot make this walk long)::

    {'header':   {'datetime': datetime (year >= the minimum year),
                  'eventtype_uploadcode': str, other str keys: scalars},
     'datalist': [{'data_uploadcode': str, 'data': scalar}, ...]}

A scalar is exactly an ``int``, ``float``, ``bool``, ``str`` or ``bytes``: the
types stations send (numpy scalars are unpickled as plain numbers; Python 3
clients may send ``bytes``) and the ones the writer can put in a column or a
blob. ``None``, containers and anything else is not.

Real batches are trees: no event, header, datalist or item appears twice.
An event that shares one with an earlier event (a "shared-reference bomb")
is held, so the events sent on are trees too and this check stays linear in
the size of the pickle.

Events that are not sound are held in ``suspicious/`` for review, with the
reason ``reason`` gives.
"""

from __future__ import annotations

import datetime
from typing import Any

SCALARS = frozenset({int, float, bool, str, bytes})
_HEADER: dict[str, frozenset[type]] = {
    'datetime': frozenset({datetime.datetime}),
    'eventtype_uploadcode': frozenset({str}),
}

Held = tuple[Any, str]  # (event, why it is held)
SHARED = 'shares an object with an earlier event (not a tree)'


def split(event_list: list[Any], minimum_year: int) -> tuple[list[Any], list[Held]]:
    """(sound events, [(held event, reason)]) of ``event_list``, each in upload order."""
    good: list[Any] = []
    held: list[Held] = []
    seen: set[int] = set()
    walked: set[int] = set()
    for event in event_list:
        if _is_sound(event, minimum_year, seen):
            good.append(event)
        else:
            held.append((event, reason(event, minimum_year, walked)))
    return good, held


def _is_sound(event: Any, minimum_year: int, seen: set[int]) -> bool:
    if type(event) is not dict or len(event) != 2:
        return False
    header, datalist = event.get('header'), event.get('datalist')
    if type(header) is not dict or type(datalist) is not list:
        return False
    # Shared objects are not walked again (C-speed set updates, not Python loops)
    before = len(seen)
    seen.update((id(event), id(header), id(datalist)))
    if len(seen) != before + 3:
        return False
    for key, value in header.items():
        if type(key) is not str or type(value) not in _HEADER.get(key, SCALARS):
            return False
    if 'eventtype_uploadcode' not in header or header.get('datetime', datetime.date.min).year < minimum_year:
        return False
    for item in datalist:
        if (
            type(item) is not dict
            or len(item) != 2
            or type(item.get('data_uploadcode')) is not str
            or type(item.get('data')) not in SCALARS
        ):
            return False
    before = len(seen)
    seen.update(map(id, datalist))
    return len(seen) == before + len(datalist)


def reason(event: Any, minimum_year: int, walked: set[int] | None = None) -> str:
    """Why ``event`` is not sound, in a few words (the slow path: held events only).

    ``walked`` collects the headers and datalists already explained, so that
    objects shared by many events are walked once.
    """
    if type(event) is not dict or set(event) != {'header', 'datalist'}:
        return 'malformed event (not a dict of header and datalist)'
    header, datalist = event['header'], event['datalist']
    if type(header) is not dict:
        return 'malformed header (not a dict)'
    if type(datalist) is not list:
        return 'malformed datalist (not a list)'
    if walked is not None:
        if id(header) in walked or id(datalist) in walked:
            return SHARED
        walked.update((id(header), id(datalist)))
    for key, value in header.items():
        if type(key) is not str:
            return f'malformed header key ({type(key).__name__})'
        if type(value) not in _HEADER.get(key, SCALARS):
            return f'malformed header field {key[:40]!r} ({type(value).__name__})'
    if 'eventtype_uploadcode' not in header:
        return 'no event type'
    if 'datetime' not in header:
        return 'no datetime'
    if header['datetime'].year < minimum_year:
        return f'dated {header["datetime"].year}, before the minimum year {minimum_year}'
    for item in datalist:
        if (
            type(item) is not dict
            or len(item) != 2
            or type(item.get('data_uploadcode')) is not str
            or type(item.get('data')) not in SCALARS
        ):
            return 'malformed datalist item'
    return SHARED
