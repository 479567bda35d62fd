"""The sound-event rule: which events go to incoming/ and which are held in suspicious/."""

import datetime
import random

import pytest

from datastore import events, factory
from wsgi.wsgi_app import is_data_suspicious

WHEN = datetime.datetime(2024, 5, 1, 12, 0, 0)


def split(event_list, minimum_year):
    """(sound, held) events, without the reasons."""
    good, held = events.Rule(minimum_year).split(event_list)
    return good, [event for event, _ in held]


def _event(**header):
    event = factory.event('CIC', WHEN, random.Random(1))
    event['header'].update(header)
    return event


def test_a_real_batch_is_sound():
    events = factory.batch(WHEN, random.Random(2))
    assert split(events, 2020) == (events, [])
    assert not is_data_suspicious(events)


def test_every_event_type_is_sound():
    events = factory.every_type(WHEN, random.Random(3))
    assert split(events, 2020) == (events, [])


def test_events_before_the_minimum_year_are_suspicious_the_rest_not():
    old = _event(datetime=datetime.datetime(2019, 4, 7, 0, 0, 1))
    new, newer = _event(), _event()
    assert split([new, old, newer], 2020) == ([new, newer], [old])
    assert split([old], 2019) == ([old], [])
    assert is_data_suspicious([new, old])


def _without(mapping, key):
    return {k: v for k, v in mapping.items() if k != key}


def _malformed():
    good = _event()
    header, datalist = good['header'], good['datalist']
    item = datalist[0]
    return {
        'not a dict': ['header', 'datalist'],
        'no header': _without(good, 'header'),
        'no datalist': _without(good, 'datalist'),
        'header not a dict': {'header': list(header.items()), 'datalist': datalist},
        'datalist not a list': {'header': header, 'datalist': tuple(datalist)},
        'no datetime': {'header': _without(header, 'datetime'), 'datalist': datalist},
        'datetime is text': {'header': header | {'datetime': '2024-05-01 12:00:00'}, 'datalist': datalist},
        'datetime is a date': {'header': header | {'datetime': WHEN.date()}, 'datalist': datalist},
        'no event type': {'header': _without(header, 'eventtype_uploadcode'), 'datalist': datalist},
        'nanoseconds a list': {'header': header | {'nanoseconds': [1]}, 'datalist': datalist},
        'item not a dict': {'header': header, 'datalist': [*datalist, ('PH1', 5)]},
        'item without data': {'header': header, 'datalist': [_without(item, 'data')]},
        'upload code not text': {'header': header, 'datalist': [item | {'data_uploadcode': 1}]},
        'data is None': {'header': header, 'datalist': [item | {'data': None}]},
        'data is a list': {'header': header, 'datalist': [item | {'data': [1, 2]}]},
        'data is a dict': {'header': header, 'datalist': [item | {'data': {'a': 1}}]},
        'extra event key': {'header': header, 'datalist': datalist, 'x': 1},
        'extra item key': {'header': header, 'datalist': [item | {'x': 1}]},
        'key not text': {'header': header | {1: 2}, 'datalist': datalist},
        'two event keys, not these': {'header': header, 'data': datalist},
        'two item keys, not these': {'header': header, 'datalist': [_without(item, 'data') | {'x': 1}]},
        'event type not text': {'header': header | {'eventtype_uploadcode': b'CIC'}, 'datalist': datalist},
        'nanoseconds a bool': {'header': header | {'nanoseconds': True}, 'datalist': datalist},
        'nanoseconds a float': {'header': header | {'nanoseconds': 5.0}, 'datalist': datalist},
        'a datetime in another field': {'header': header | {'when': WHEN}, 'datalist': datalist},
        'a field of None': {'header': header | {'date': None}, 'datalist': datalist},
    }


@pytest.mark.parametrize('why', list(_malformed()))
def test_malformed_events_are_suspicious(why):
    bad = _malformed()[why]
    good = _event()
    assert split([good, bad], 2020) == ([good], [bad])


@pytest.mark.parametrize('value', [625, -1, 2.5, True, False, 'eJzT', b'\x80'])
def test_scalars_are_int_float_bool_str_bytes(value):
    event = _event()
    event['datalist'].append({'data_uploadcode': 'PH1', 'data': value})
    assert split([event], 2020) == ([event], [])


def test_shared_objects_are_suspicious():
    first = _event()
    twice = [first, first]
    assert split(twice, 2020) == ([first], [first])
    second = {'header': dict(first['header']), 'datalist': first['datalist']}
    assert split([first, second], 2020) == ([first], [second])
    third = {'header': first['header'], 'datalist': list(first['datalist'])}
    assert split([first, third], 2020) == ([first], [third])


def test_a_shared_datalist_item_is_sound_as_its_copy_would_be():
    # each reference to an item takes bytes of the pickle: sharing one amplifies nothing
    first = _event()
    item = first['datalist'][0]
    again = {'header': dict(first['header']), 'datalist': [item, item]}
    assert split([first, again], 2020) == ([first, again], [])


def test_held_events_come_with_their_reason():
    old = _event(datetime=datetime.datetime(2019, 4, 7, 0, 0, 1))
    undated = {'header': {'eventtype_uploadcode': 'CIC'}, 'datalist': []}
    first = _event()
    _, held = events.Rule(2020).split([old, undated, first, first, 'x'])
    assert [reason for _, reason in held] == [
        'dated 2019, before the minimum year 2020',
        'no datetime',
        'shares an object with an earlier event (not a tree)',
        'malformed event (not a dict of header and datalist)',
    ]


def test_a_shared_reference_bomb_is_not_walked():
    item = {'data_uploadcode': 'PH1', 'data': 1}
    datalist = [item] * 10**6
    events = [{'header': _event()['header'], 'datalist': datalist}] * 10**6
    good, suspicious = split(events, 2020)
    # the first is walked once (its million items are a million references in the pickle); no other
    assert good == events[:1] and len(suspicious) == 10**6 - 1


# -- shared values that stand for far more than the pickle ---------------------------------


def _shared(trace, events=300):
    return [
        {
            'header': {'eventtype_uploadcode': 'CIC', 'datetime': WHEN + datetime.timedelta(seconds=i)},
            'datalist': [{'data_uploadcode': 'TR1', 'data': trace}, {'data_uploadcode': 'PH1', 'data': i}],
        }
        for i in range(events)
    ]


def test_a_batch_whose_text_is_shared_far_beyond_its_pickle_is_held_whole():
    shared = _shared('x' * 20_000)  # 6 MB referenced, 20 kB distinct
    good, held = events.Rule(2020).split(shared)
    assert good == [] and [event for event, _ in held] == shared
    (reason,) = {reason for _, reason in held}
    assert reason == (
        'text values shared so that they stand for 6,000,000 characters, '
        '300 times the 20,000 the pickle holds'
    )


def test_the_endpoint_refuses_such_a_batch_with_208():
    with pytest.raises(events.Amplified) as refused:
        events.Rule(2020).split(_shared('x' * 20_000), refuse_amplified=True)
    assert refused.value.code == '208'


def test_text_shared_within_the_bound_is_sound():
    within = _shared('x' * 3_000)  # 900 kB referenced: within the margin, however shared
    assert split(within, 2020) == (within, [])
    distinct = _shared('')
    for event in distinct:
        event['datalist'][0]['data'] = str(event['datalist'][1]['data']) * 5_000  # 4 MB, each its own
    assert split(distinct, 2020) == (distinct, [])


def test_a_trace_sent_twice_per_event_as_stations_do_is_sound():
    batch = factory.batch(WHEN, random.Random(4), mix=(('CIC', 1000),))
    for event in batch:  # py2event: TR2 is the same string object as TR1
        data = {item['data_uploadcode']: item for item in event['datalist']}
        data['TR2']['data'] = data['TR1']['data']
    assert split(batch, 2020) == (batch, [])


# -- readable reasons ----------------------------------------------------------------------


def test_a_huge_nanoseconds_gives_a_readable_reason():
    event = _event(nanoseconds=10**5000)  # str() of it raises ValueError
    _, held = events.Rule(2020).split([event])
    assert held == [(event, 'nanoseconds 1.00e+5000 outside 0 to 999,999,999')]


@pytest.mark.parametrize(
    'number, text',
    [(0, '0'), (-(10**19), '-10000000000000000000'), (10**20, '1.00e+20'), (123 * 10**4998, '1.23e+5000')],
    ids=['0', '-10**19', '10**20', '1.23e+5000'],
)
def test_numbers_too_long_to_print_are_shortened(number, text):
    assert events.readable(number) == text
