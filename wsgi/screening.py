"""Which events of a batch go to the writer and which are held for review.

An event is sound when it has the fixed shape of the protocol, checked level
by level and never deeper (a hostile batch cannot make this walk long):

    {'header':   {'datetime': datetime (year >= the minimum year),
                  'eventtype_uploadcode': str, other keys: scalars},
     'datalist': [{'data_uploadcode': str, 'data': scalar, other keys: scalars}, ...],
     other keys: scalars}

Every key is a ``str``. A scalar is exactly an ``int``, ``float``, ``bool``,
``str`` or ``bytes``: the types stations send (numpy scalars are unpickled as
plain numbers, Python 3 clients may send ``bytes``) and the ones the writer
can put in a column or a blob. ``None``, containers and anything else is not.

Real batches are trees: no event, header, datalist or item appears twice.
A batch that shares one (a "shared-reference bomb") is suspicious, which also
keeps this check linear in the size of the pickle.
"""
import datetime

SCALARS = frozenset({int, float, bool, str, bytes})


def split(event_list, minimum_year):
    """(sound events, suspicious events) of ``event_list``, each in upload order."""
    good, suspicious, seen = [], [], set()
    for event in event_list:
        (good if _is_sound(event, minimum_year, seen) else suspicious).append(event)
    return good, suspicious


def _first_sight(seen, obj):
    if id(obj) in seen:
        return False
    seen.add(id(obj))
    return True


def _plain(mapping, required):
    """Every key is text; the ``required`` keys are present with one of their
    types; every other value is a scalar."""
    for key, value in mapping.items():
        if type(key) is not str or type(value) not in required.get(key, SCALARS):
            return False
    return all(key in mapping for key in required)


# key -> the types its value may have (all required)
_EVENT = {'header': {dict}, 'datalist': {list}}
_HEADER = {'datetime': {datetime.datetime}, 'eventtype_uploadcode': {str}}
_ITEM = {'data_uploadcode': {str}, 'data': SCALARS}


def _is_sound(event, minimum_year, seen):
    if type(event) is not dict or not _plain(event, _EVENT):
        return False
    header, datalist = event['header'], event['datalist']
    if not (_first_sight(seen, event) and _first_sight(seen, header)
            and _first_sight(seen, datalist)):
        return False
    if not _plain(header, _HEADER) or header['datetime'].year < minimum_year:
        return False
    for item in datalist:
        if type(item) is not dict or not _first_sight(seen, item):
            return False
        if not _plain(item, _ITEM):
            return False
    return True
