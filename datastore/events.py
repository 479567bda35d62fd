"""What makes an event sound: the one rule of the endpoint, the writer and ``requeue``.

A sound event has exactly the fixed shape of the protocol, checked level by
level and never deeper (a hostile batch cannot make this walk long)::

    {'header':   {'datetime': datetime, 'eventtype_uploadcode': str,
                  'nanoseconds': int (optional), other str keys: scalars},
     'datalist': [{'data_uploadcode': str, 'data': scalar}, ...]}

and a real time: the datetime is one (``safepickle`` turns a state such as
``2024-02-31 25:60:60`` into an ``ImpossibleTime``), in ``[General]
minimum_year`` or later, at most ``[General] max_future`` days after the
server's clock; ``nanoseconds`` from 0 to 999,999,999.

A scalar is exactly an ``int``, ``float``, ``bool``, ``str`` or ``bytes``: the
types stations send (numpy scalars are unpickled as plain numbers; Python 3
clients may send ``bytes``) and the ones the writer can put in a column or a
blob. ``None``, containers and anything else is not.

Real batches are trees: no event, header or datalist appears twice. An
event that shares one with an earlier event (a "shared-reference bomb": a
million events of one datalist of a million items) is held, so the events
sent on are trees too and this check stays linear in the size of the pickle.
A datalist item may be shared: each reference to it takes bytes of the
pickle, and it stands for nothing but the copies it saves.

A value may be shared (a pickle's memo makes one string of many references),
but the writer decodes every reference: 5,000 events whose traces are one
1 MB string are a 1.5 MB pickle that stands for 5 GB. Every distinct str or
bytes value takes at least its length in the pickle, so a batch whose sound
events' datalists reference more than ``AMPLIFICATION`` times the length of
their distinct text values (plus ``AMPLIFICATION_MARGIN``) is held whole, or
refused.

Events that are not sound are held in ``suspicious/`` for review, with the
reason ``Rule.reason`` gives.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import operator
from typing import Any

from .safepickle import ImpossibleTime, PickleRefused

SCALARS = frozenset({int, float, bool, str, bytes})
_HEADER: dict[str, frozenset[type]] = {
    'datetime': frozenset({datetime.datetime}),
    'eventtype_uploadcode': frozenset({str}),
    'nanoseconds': frozenset({int}),
}
NS_PER_S = 1_000_000_000

Held = tuple[Any, str]  # (event, why it is held)
SHARED = 'shares an object with an earlier event (not a tree)'

AMPLIFICATION = 4  # real batches reference their text about once (py2event: a trace twice)
AMPLIFICATION_MARGIN = 1 << 20  # characters: what any batch may reference, shared or not
_TEXT = frozenset({str, bytes})
_DATA = operator.itemgetter('data')


class Amplified(PickleRefused):
    """A batch whose shared values stand for far more than its pickle (an upload's ``208``)."""


@dataclasses.dataclass(frozen=True)
class Rule:
    """The rule with its bounds: ``minimum_year`` and ``max_future`` (days) of ``[General]``."""

    minimum_year: int
    max_future: float = 1.0

    def split(
        self, event_list: list[Any], now: datetime.datetime | None = None, *, refuse_amplified: bool = False
    ) -> tuple[list[Any], list[Held]]:
        """(sound events, [(held event, reason)]) of ``event_list``, each in upload order.

        ``now``: the server's clock as naive UTC (default: now). A batch whose
        shared values stand for far more than its pickle is held whole, or with
        ``refuse_amplified`` (the endpoint) refused: Amplified.
        """
        now = now or datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
        latest = now + datetime.timedelta(days=self.max_future)
        earliest = datetime.datetime(self.minimum_year, 1, 1)
        good: list[Any] = []
        held: list[Held] = []
        seen: set[int] = set()
        walked: set[int] = set()
        referenced = 0  # characters of text the sound events' datalists reference
        for event in event_list:
            text = _sound_text(event, earliest, latest, seen)
            if text < 0:
                held.append((event, self.reason(event, latest, walked)))
            else:
                good.append(event)
                referenced += text
        why = amplification(good, referenced)
        if why is None:
            return good, held
        if refuse_amplified:
            raise Amplified(why)
        return [], [(event, why) for event in event_list]

    def reason(self, event: Any, latest: datetime.datetime, walked: set[int] | None = None) -> str:
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
        when = header.get('datetime')
        if isinstance(when, ImpossibleTime):
            return f'impossible datetime {when}'
        for key, value in header.items():
            if type(key) is not str:
                return f'malformed header key ({type(key).__name__})'
            if type(value) not in _HEADER.get(key, SCALARS):
                return f'malformed header field {key[:40]!r} ({type(value).__name__})'
        if 'eventtype_uploadcode' not in header:
            return 'no event type'
        if when is None:
            return 'no datetime'
        if when.year < self.minimum_year:
            return f'dated {when.year}, before the minimum year {self.minimum_year}'
        if when > latest:
            return f"dated {when}, more than {self.max_future:g} day(s) after the server's clock"
        nanoseconds = header.get('nanoseconds', 0)
        if not 0 <= nanoseconds < NS_PER_S:
            return f'nanoseconds {readable(nanoseconds)} outside 0 to 999,999,999'
        for item in datalist:
            if (
                type(item) is not dict
                or len(item) != 2
                or type(item.get('data_uploadcode')) is not str
                or type(item.get('data')) not in SCALARS
            ):
                return 'malformed datalist item'
        return SHARED


def _sound_text(event: Any, earliest: datetime.datetime, latest: datetime.datetime, seen: set[int]) -> int:
    """The characters of text the datalist of the sound ``event`` references; -1 if it is not sound.

    The hot path of the screening: one pass, no call per item but ``len``.
    """
    if type(event) is not dict or len(event) != 2:
        return -1
    try:
        header, datalist = event['header'], event['datalist']
    except KeyError:
        return -1
    if type(header) is not dict or type(datalist) is not list:
        return -1
    # Shared objects are not walked again (C-speed set updates, not Python loops)
    before = len(seen)
    seen.update((id(event), id(header), id(datalist)))
    if len(seen) != before + 3:
        return -1
    when = header.get('datetime')
    nanoseconds = header.get('nanoseconds', 0)
    if (
        type(when) is not datetime.datetime
        or type(header.get('eventtype_uploadcode')) is not str
        or type(nanoseconds) is not int
        or not earliest <= when <= latest
        or not 0 <= nanoseconds < NS_PER_S
    ):
        return -1
    for key, value in header.items():  # the three above checked, every other field a scalar
        if type(key) is not str or (type(value) not in SCALARS and key != 'datetime'):
            return -1
    text = 0
    try:
        for item in datalist:
            if type(item) is not dict or len(item) != 2 or type(item['data_uploadcode']) is not str:
                return -1
            data = item['data']
            kind = type(data)
            if kind is int:  # first: most of a real batch's values
                continue
            if kind in _TEXT:
                text += len(data)
            elif kind not in SCALARS:
                return -1
    except KeyError:
        return -1
    return text


def amplification(good: list[Any], referenced: int) -> str | None:
    """Why the text values of the sound events ``good`` stand for far more than their pickle, or None.

    ``referenced``: the characters of text their datalists reference, as
    ``Rule.split`` sums them while it screens (only the datalists count: their
    values are what the writer stores). Only a batch that references more
    than AMPLIFICATION_MARGIN characters has its distinct values counted.
    """
    if referenced <= AMPLIFICATION_MARGIN:
        return None
    texts = {
        id(value): value for event in good for value in map(_DATA, event['datalist']) if type(value) in _TEXT
    }
    distinct = sum(map(len, texts.values()))
    if referenced <= AMPLIFICATION * distinct + AMPLIFICATION_MARGIN:
        return None
    return (
        f'text values shared so that they stand for {referenced:,} characters, '
        f'{referenced / max(distinct, 1):,.0f} times the {distinct:,} the pickle holds'
    )


def readable(number: int) -> str:
    """``number`` as text, shortened to 1.00e+5000 beyond 20 digits (CPython writes at most 4,300)."""
    if -(10**20) < number < 10**20:
        return str(number)
    exponent = math.log10(abs(number))  # exact enough for any int, and linear in its size
    mantissa, whole = round(10 ** (exponent % 1), 2), math.floor(exponent)
    if mantissa >= 10:
        mantissa, whole = mantissa / 10, whole + 1
    return f'{"-" if number < 0 else ""}{mantissa:.2f}e+{whole}'
