"""Hostile input, in process: one test per attack (the same under a real uWSGI: test_hostile_uwsgi.py).

No station writes as another, no small upload takes a worker's memory or
time, no batch makes the writer decode far more than it was sent, no
station-list line takes the others down or lets anyone in, no impossible
time is stored as a real one.
"""

import datetime
import pathlib
import pickle
import time

import pytest

from datastore import datadir, py2pickle, safepickle, spoolfile
from datastore import events as events_rule
from datastore.cli import check_config
from tests.support.endpoint import PASSWORD, Endpoint
from tests.support.pickles import BOMBS, IMPOSSIBLE, batch, event_at, shared_trace, writes_as_another
from tests.support.writer import drain, folder_files, queue

MB = 1 << 20


def data_dir_of(config_path):
    return str(pathlib.Path(config_path).parent / 'datastore')


# -- no station writes as another ----------------------------------------------------------


@pytest.mark.parametrize('protocol', range(pickle.HIGHEST_PROTOCOL + 1))
def test_a_pickle_cannot_set_the_spool_records_station_or_cluster(ep, protocol):
    events = batch()
    crafted = writes_as_another(events, protocol)
    assert safepickle.loads(crafted) == events  # read alone, a valid event list
    assert ep.upload(crafted) == '100'
    (record,) = ep.spooled()
    assert (record['station_id'], record['cluster']) == (501, 'Amsterdam')
    assert record['event_list'] == events


def test_the_writer_stores_it_under_the_station_that_sent_it(ep, make_config, tmp_path):
    assert ep.upload(writes_as_another(batch(), 0)) == '100'
    drain(ep.configfile)
    stored = [p.relative_to(ep.data_dir) for p in ep.data_dir.glob('2024/5/*.h5')]
    import tables

    with tables.open_file(ep.data_dir / stored[0]) as h5:
        assert [g._v_pathname for g in h5.walk_groups('/hisparc')] == [
            '/hisparc',
            '/hisparc/cluster_amsterdam',
            '/hisparc/cluster_amsterdam/station_501',
        ]


# -- no small upload takes gigabytes ---------------------------------------------------------


@pytest.mark.parametrize('name', list(BOMBS))
def test_an_allocation_bomb_is_refused_and_the_next_upload_is_fine(ep, name):
    # the time and the worker's memory are measured in a real uWSGI worker: test_hostile_uwsgi.py
    assert ep.upload(BOMBS[name]) == '208'
    assert ep.files(datadir.INCOMING) == [] == ep.files(datadir.SUSPICIOUS)
    assert ep.upload(batch()) == '100'


@pytest.mark.parametrize('name', [name for name in BOMBS if 'keys of one hash' in name])
def test_dict_keys_of_one_hash_are_refused_in_well_under_a_second(ep, name):
    started = time.monotonic()
    assert ep.upload(BOMBS[name]) == '208'  # 5 s or more if unpickled as they are
    assert time.monotonic() - started < 1.0
    assert 'whose hash could be chosen' in ep.log()


@pytest.mark.parametrize('pickled', [b'(lp3000000\n.', b']r\xc0\xc6\x2d\x00.'], ids=['PUT', 'LONG_BINPUT'])
def test_a_memo_index_beyond_what_the_pickle_can_hold_is_refused(ep, pickled):
    assert ep.upload(pickled) == '208'  # 48 MB of memo otherwise, within the address-space bound
    assert f'memo index 3,000,000 beyond what a pickle of {len(pickled)} bytes can hold' in ep.log()


def test_unpickling_has_no_more_address_space_than_32_times_the_pickle():
    fits = pickle.dumps([[] for _ in range(200_000)], protocol=4)  # about 20x its size
    assert len(safepickle.loads(fits)) == 200_000
    with pytest.raises(safepickle.PickleRefused, match='more memory than 32 times'):
        safepickle.loads(BOMBS['a million empty sets'])


# -- no batch makes the writer decode far more than it was sent --------------------------


def test_a_batch_whose_shared_values_stand_for_far_more_than_its_pickle_is_refused(ep):
    pickled = py2pickle.dumps(shared_trace())  # the trace once, then 4,999 references to it
    assert len(pickled) < 2 * MB
    assert ep.upload(pickled) == '208'
    assert ep.files(datadir.INCOMING) == [] == ep.files(datadir.SUSPICIOUS)
    assert 'text values shared so that they stand for 5,242,880,000 characters' in ep.log()


def test_the_writer_holds_such_a_spool_file_from_elsewhere_in_suspicious(make_config, caplog):
    path = make_config()
    data_dir = data_dir_of(path)
    name = queue(data_dir, shared_trace())  # pickled with its memo: about 1.5 MB
    drain(path)
    assert folder_files(data_dir, 'suspicious') == [f'{name}-unfit']
    assert len(spoolfile.load(f'{data_dir}/suspicious/{name}-unfit')['event_list']) == 5000
    assert not pathlib.Path(data_dir, '2024').exists()  # nothing decoded, nothing stored
    assert 'text values shared so that they stand for 5,242,880,000 characters' in caplog.text


# -- the allow-list, pinned ----------------------------------------------------------------


def test_the_allow_list_is_exactly_what_real_uploads_reference():
    assert set(safepickle.ALLOWED_GLOBALS) == {
        ('datetime', 'datetime'),
        ('numpy', 'dtype'),
        ('numpy.core.multiarray', 'scalar'),
        ('numpy._core.multiarray', 'scalar'),
        ('_codecs', 'encode'),
    }


# -- a checksum is all of it ---------------------------------------------------------------


def test_a_checksum_one_hex_digit_off_anywhere_is_refused(ep):
    pickled = py2pickle.dumps(batch())
    import hashlib

    right = hashlib.md5(pickled).hexdigest()
    for position in range(32):
        digit = right[position]
        wrong = right[:position] + ('0' if digit != '0' else '1') + right[position + 1 :]
        assert ep.upload(pickled, checksum=wrong) == '201', position
    assert ep.upload(pickled, checksum=right) == '100'


# -- one bad station-list line never affects another ---------------------------------------


@pytest.mark.parametrize(
    'line',
    [
        '²,Super,pw',
        '9' * 5000 + ',Big,pw',
        '503,..,pw',
        '503,a/b,pw',
        '503,,pw',
        '503;Utrecht;pw',
        '50 3,Utrecht,pw',
        '503,Utrecht,',
        '503,Utrecht, \t',
    ],
)
def test_a_bad_station_line_is_skipped_with_its_number_and_the_others_upload(make_config, line):
    ep = Endpoint(make_config(stations=f'501,Amsterdam,{PASSWORD}\n{line}\n502,Utrecht,pa ss\n'))
    assert ep.upload(batch()) == '100'
    assert ep.upload(batch(2), station=502, password='pa ss') == '100'
    assert 'line 2 skipped' in ep.log()


def test_a_station_listed_with_an_empty_password_cannot_be_uploaded_as(make_config):
    path = make_config(stations=f'501,Amsterdam,{PASSWORD}\n502,Utrecht,\n')
    ep = Endpoint(path)
    assert ep.upload(batch(), station=502, password='') == '206'  # skipped: not a station at all
    assert 'line 2 skipped: empty password' in ep.log()
    found, _ = check_config.problems(path)
    assert f'{pathlib.Path(path).parent}/station_list.csv line 2: empty password' in found


def test_a_password_may_hold_any_character_but_a_comma_or_newline(make_config):
    password = 'p\x0cw\x1e\x85\u2028 é'  # characters str.splitlines() would split on
    ep = Endpoint(make_config(stations=f'501,Amsterdam,{password}\n'))
    assert ep.upload(batch(), password=password) == '100'


# -- impossible times are held, never stored as real ones -----------------------------------


@pytest.mark.parametrize('name', list(IMPOSSIBLE))
def test_an_impossible_datetime_is_held_with_its_reason(ep, name):
    raw, reason = IMPOSSIBLE[name]
    good = batch()
    assert ep.upload([*good, event_at(raw)]) == '100'
    (held,) = ep.spooled(datadir.SUSPICIOUS)
    assert held['event_list'][0]['header']['datetime'] == safepickle.ImpossibleTime(raw)
    assert ep.spooled(datadir.INCOMING)[0]['event_list'] == good
    assert f'1 in suspicious/ ({reason})' in ep.log()


def test_nanoseconds_outside_a_second_and_a_clock_in_the_future_are_held(ep):
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None, microsecond=0)
    future = event_at(when=datetime.datetime(2099, 1, 1))
    tomorrow = event_at(when=now + datetime.timedelta(hours=23))  # within max_future
    too_late = event_at(when=now + datetime.timedelta(hours=25))
    events = [event_at(nanoseconds=4 * 10**9), event_at(nanoseconds=-1), future, tomorrow, too_late]
    assert ep.upload(events) == '100'
    assert ep.spooled(datadir.INCOMING)[0]['event_list'] == [tomorrow]
    assert len(ep.spooled(datadir.SUSPICIOUS)[0]['event_list']) == 4
    log = ep.log()
    assert 'nanoseconds 4000000000 outside 0 to 999,999,999' in log
    assert "dated 2099-01-01 00:00:00, more than 1 day(s) after the server's clock" in log


@pytest.mark.parametrize(
    'nanoseconds, text', [(10**200, '1.00e+200'), (-(10**5000), '-1.00e+5000')], ids=['LONG1', 'LONG4']
)
def test_a_huge_nanoseconds_is_held_with_a_readable_reason(ep, nanoseconds, text):
    good = batch()
    pickled = pickle.dumps([*good, event_at(nanoseconds=nanoseconds)], protocol=2)  # LONG1, LONG4
    assert ep.upload(pickled) == '100'
    assert ep.spooled(datadir.SUSPICIOUS)[0]['event_list'][0]['header']['nanoseconds'] == nanoseconds
    assert ep.spooled(datadir.INCOMING)[0]['event_list'] == good
    assert f'1 in suspicious/ (nanoseconds {text} outside 0 to 999,999,999)' in ep.log()


def test_the_writer_holds_impossible_times_in_spool_files_from_elsewhere(make_config, caplog):
    path = make_config()
    data_dir = data_dir_of(path)
    good = batch()
    bad = [
        event_at(IMPOSSIBLE['a leap second'][0]),
        event_at(IMPOSSIBLE['microsecond bytes ff ff ff'][0]),
        event_at(nanoseconds=4 * 10**9),
        event_at(when=datetime.datetime(2099, 1, 1)),
    ]
    name = queue(data_dir, good + bad, py2=True)  # as the previously deployed endpoint queued it
    drain(path)
    (held,) = folder_files(data_dir, 'suspicious')
    assert held == f'{name}-unfit'
    record = spoolfile.load(f'{data_dir}/suspicious/{held}')
    assert len(record['event_list']) == 4
    assert not pathlib.Path(data_dir, '2099').exists()
    assert 'impossible datetime 2024-12-31 23:59:59.16777215' in caplog.text


def test_the_writer_holds_a_huge_nanoseconds_with_a_readable_reason(make_config, caplog):
    path = make_config()
    data_dir = data_dir_of(path)
    name = queue(data_dir, [*batch(), event_at(nanoseconds=10**5000)])  # LONG4
    drain(path)
    assert folder_files(data_dir, 'suspicious') == [f'{name}-unfit']
    assert 'nanoseconds 1.00e+5000 outside 0 to 999,999,999' in caplog.text


def test_the_rule_reads_a_naive_datetime_as_utc_and_max_future_from_the_config(make_config):
    rule = events_rule.Rule(2020, max_future=0.5)
    now = datetime.datetime(2024, 5, 1, 12)
    soon, late = (
        event_at(when=now + datetime.timedelta(hours=11)),
        event_at(when=now + datetime.timedelta(hours=13)),
    )
    good, held = rule.split([soon, late], now=now)
    assert good == [soon] and [e for e, _ in held] == [late]
