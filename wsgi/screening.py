"""Which events of a batch go to the writer and which are held for review.

An event is sound when it has exactly the fixed shape of the protocol,
checked level by level and never deeper (a hostile batch cannot make this
walk long):

    {'header':   {'datetime': datetime (year >= the minimum year),
                  'eventtype_uploadcode': str, other str keys: scalars},
     'datalist': [{'data_uploadcode': str, 'data': scalar}, ...]}

A scalar is exactly an ``int``, ``float``, ``bool``, ``str`` or ``bytes``: the
types stations send (numpy scalars are unpickled as plain numbers; Python 3
clients may send ``bytes``) and the ones the writer can put in a column or a
blob. ``None``, containers and anything else is not.

Real batches are trees: no event, header, datalist or item appears twice.
An event that shares one with an earlier event (a "shared-reference bomb")
is suspicious, so the events sent on to the writer are trees too and this
check stays linear in the size of the pickle.
"""
import datetime

SCALARS = frozenset({int, float, bool, str, bytes})
_HEADER = {'datetime': {datetime.datetime}, 'eventtype_uploadcode': {str}}


def split(event_list, minimum_year):
    """(sound events, suspicious events) of ``event_list``, each in upload order."""
    good, suspicious, seen = [], [], set()
    for event in event_list:
        (good if _is_sound(event, minimum_year, seen) else suspicious).append(event)
    return good, suspicious


def _is_sound(event, minimum_year, seen):
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
    if ('eventtype_uploadcode' not in header
            or header.get('datetime', datetime.date.min).year < minimum_year):
        return False
    for item in datalist:
        if (type(item) is not dict or len(item) != 2
                or type(item.get('data_uploadcode')) is not str
                or type(item.get('data')) not in SCALARS):
            return False
    before = len(seen)
    seen.update(map(id, datalist))
    return len(seen) == before + len(datalist)
