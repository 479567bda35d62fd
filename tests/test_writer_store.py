"""What the writer stores, and where everything it cannot store goes."""

import base64
import datetime
import json
import logging
import os
import pickle
import random
import shutil

import numpy as np
import pytest
import tables

from datastore import datadir, factory, spoolfile
from tests.support.writer import (
    check_row,
    day_path,
    drain,
    expected_row,
    folder_files,
    queue,
    station_path,
    trace_samples,
)
from writer import rows, storepass

WHEN = datetime.datetime(2024, 5, 17, 12, 0, 0)


@pytest.fixture
def setup(make_config):
    path = make_config()
    data_dir = os.path.join(os.path.dirname(path), 'datastore')
    return path, data_dir


def open_station(data_dir, when=WHEN, cluster='Amsterdam', station_id=501):
    h5 = tables.open_file(day_path(data_dir, when))
    return h5, h5.get_node(station_path(cluster, station_id))


def test_every_type_is_stored_as_the_layout_says(setup):
    config, data_dir = setup
    events = factory.every_type(WHEN, random.Random(1))
    queue(data_dir, events)
    drain(config)
    h5, station = open_station(data_dir)
    with h5:
        for event in events:
            code = event['header']['eventtype_uploadcode']
            table = station._f_get_child(factory.EVENT_TYPES[code].table)
            assert table.nrows == 1
            check_row(table, station.blobs, table[0], expected_row(event))
            assert table[0]['event_id'] == 1
    assert folder_files(data_dir, 'incoming') == folder_files(data_dir, 'partial') == []


def test_python2_spool_files_with_non_utf8_bytes_are_stored(setup):
    config, data_dir = setup
    rng = random.Random(2)
    error = factory.event('ERR', WHEN, rng)
    error['datalist'] = [{'data_uploadcode': 'ERRMSG', 'data': 'Temp\xe9rature \xff'}]
    events = [factory.event('CIC', WHEN, rng), error]
    queue(data_dir, events, py2=True)
    drain(config)
    h5, station = open_station(data_dir)
    with h5:
        assert station.blobs[int(station.errors[0]['messages'])] == b'Temp\xe9rature \xff'
        check_row(station.events, station.blobs, station.events[0], expected_row(events[0]))


def test_python3_bytes_values_are_stored_as_they_are(setup):
    config, data_dir = setup
    event = factory.event('ERR', WHEN, random.Random(3))
    event['datalist'] = [{'data_uploadcode': 'ERRMSG', 'data': b'\x80\xfe raw'}]
    queue(data_dir, [event])
    drain(config)
    h5, station = open_station(data_dir)
    with h5:
        assert station.blobs[0] == b'\x80\xfe raw'


def test_traces_point_at_their_own_blobs_across_files_and_passes(setup, make_config):
    config, data_dir = setup
    rng = random.Random(4)
    batches = [factory.batch(WHEN + datetime.timedelta(minutes=i), rng) for i in range(3)]
    queue(data_dir, batches[0])
    drain(config)
    for events in batches[1:]:
        queue(data_dir, events)
    drain(config)
    cics = [e for events in batches for e in events if e['header']['eventtype_uploadcode'] == 'CIC']
    h5, station = open_station(data_dir)
    with h5:
        rows = station.events.read()
        assert list(rows['event_id']) == list(range(1, len(cics) + 1))
        assert station.blobs.nrows == 4 * len(cics)
        for row, event in zip(rows, cics):
            check_row(station.events, station.blobs, row, expected_row(event))
            source = {d['data_uploadcode']: d['data'] for d in event['datalist']}
            for i in range(4):
                assert trace_samples(station.blobs[row['traces'][i]]) == trace_samples(
                    base64.b64decode(source[f'TR{i + 1}'])
                )
        assert station.singles.nrows == 3 * 64


def test_a_batch_that_spans_midnight_goes_to_two_day_files(setup):
    config, data_dir = setup
    start = datetime.datetime(2024, 12, 31, 23, 59, 10)
    events = factory.batch(start, random.Random(5))  # 100 s from 23:59:10
    queue(data_dir, events)
    drain(config)
    for when, day_events in (
        (start, [e for e in events if e['header']['datetime'].year == 2024]),
        (datetime.datetime(2025, 1, 1), [e for e in events if e['header']['datetime'].year == 2025]),
    ):
        assert day_events
        h5, station = open_station(data_dir, when)
        with h5:
            stored = sorted(list(station.events.col('timestamp')) + list(station.singles.col('timestamp')))
            assert stored == sorted(expected_row(e)['timestamp'] for e in day_events)
            assert station.events[0]['event_id'] == station.singles[0]['event_id'] == 1
    assert day_path(data_dir, start).endswith('2024/12/2024_12_31.h5')
    assert os.path.exists(os.path.join(data_dir, '2025', '1', '2025_1_1.h5'))


def test_an_unreadable_spool_file_goes_to_failed_byte_for_byte(setup, caplog):
    config, data_dir = setup
    garbage = b'\x80\x04not a pickle at all \xff'
    bad = queue_raw(data_dir, garbage)
    good = queue(data_dir, factory.batch(WHEN, random.Random(6)))
    with caplog.at_level(logging.ERROR, logger='writer'):
        drain(config)
    with open(os.path.join(data_dir, 'failed', bad), 'rb') as f:
        assert f.read() == garbage
    assert any(bad in r.getMessage() and 'failed/' in r.getMessage() for r in caplog.records)
    h5, station = open_station(data_dir)
    with h5:
        assert station.events.nrows + station.singles.nrows == 100
    assert good not in folder_files(data_dir, 'incoming')


def test_a_batch_of_only_unreadable_files_does_not_stop_the_drain(make_config):
    config = make_config()
    with open(config, 'a') as f:
        f.write('batch_files=2\n')
    data_dir = os.path.join(os.path.dirname(config), 'datastore')
    bad = [queue_raw(data_dir, b'junk %d' % i) for i in range(4)]
    queue(data_dir, factory.batch(WHEN, random.Random(12)))
    drain(config)
    assert folder_files(data_dir, 'failed') == sorted(bad)
    assert folder_files(data_dir, 'incoming') == []


def test_a_pickle_that_is_not_a_spool_record_goes_to_failed(setup):
    config, data_dir = setup
    name = queue_raw(data_dir, pickle.dumps(['just', 'a', 'list']))
    drain(config)
    assert folder_files(data_dir, 'failed') == [name]


def queue_raw(data_dir, payload):
    name = datadir.unique_name(0)
    datadir.DataDir(str(data_dir)).deliver(datadir.INCOMING, name, payload)
    return name


def bad_events(rng):
    """(event, reason fragment): one of each kind the writer must refuse."""

    def cic(**changes):
        event = factory.event('CIC', WHEN, rng)
        for code, value in changes.items():
            event['datalist'] = [d for d in event['datalist'] if d['data_uploadcode'] != code]
            event['datalist'].append({'data_uploadcode': code, 'data': value})
        return event

    unknown = factory.event('SIN', WHEN, rng)
    unknown['header']['eventtype_uploadcode'] = 'XYZ'
    undated = factory.event('SIN', WHEN, rng)
    del undated['header']['datetime']
    return [
        (unknown, "unknown event type 'XYZ'"),
        (undated, 'no datetime'),
        (factory.event('SIN', datetime.datetime(2011, 2, 22), rng), 'before the minimum year'),
        (cic(PH1=40000), 'out of range'),  # int16
        (cic(TRIGPATTERN=-1), 'out of range'),  # uint32
        (cic(EVENTRATE=1e39), 'out of range'),  # float32
        (cic(BL2=float('nan')), 'not a finite number'),  # int16
        (cic(PH3='625'), 'not a number'),  # a string into a number column
        (cic(RED='yes'), 'not a boolean'),
        (cic(TR2='not base64!'), 'undecodable trace'),
        ({'header': {'eventtype_uploadcode': 'CIC'}}, 'malformed event'),
    ]


def test_events_that_cannot_be_stored_go_to_suspicious_and_the_rest_is_stored(setup, caplog):
    config, data_dir = setup
    rng = random.Random(7)
    bad = bad_events(rng)
    good = factory.batch(WHEN, rng)
    mixed = good[:50] + [event for event, _ in bad] + good[50:]
    name = queue(data_dir, mixed)
    with caplog.at_level(logging.ERROR, logger='writer'):
        drain(config)
    held = folder_files(data_dir, 'suspicious')
    assert len(held) == 1
    record = spoolfile.load(os.path.join(data_dir, 'suspicious', held[0]))
    assert (record['station_id'], record['cluster']) == (501, 'Amsterdam')
    assert len(record['event_list']) == len(bad)
    logged = ' '.join(r.getMessage() for r in caplog.records)
    assert name in logged
    for _, reason in bad:
        assert reason in logged
    h5, station = open_station(data_dir)
    with h5:
        assert station.events.nrows + station.singles.nrows == 100
    assert folder_files(data_dir, 'failed') == []


def test_floats_into_int_columns_are_truncated_and_bools_accept_ints(setup):
    config, data_dir = setup
    event = factory.event('WTR', WHEN, random.Random(8))
    codes = {'WTR_WIND_SPEED': -999.0, 'WTR_UV': 12.9, 'WTR_HUMIDITY_INSIDE': True}
    event['datalist'] = [d for d in event['datalist'] if d['data_uploadcode'] not in codes]
    event['datalist'] += [{'data_uploadcode': c, 'data': v} for c, v in codes.items()]
    cfg = factory.event('CFG', WHEN, random.Random(8))
    cfg['datalist'] = [
        {'data_uploadcode': 'CFG_REDUCE', 'data': 1},
        {'data_uploadcode': 'CFG_TRIGEXT', 'data': False},
    ]
    queue(data_dir, [event, cfg])
    drain(config)
    h5, station = open_station(data_dir)
    with h5:
        row = station.weather[0]
        assert (row['wind_speed'], row['uv'], row['humidity_inside']) == (-999, 12, 1)
        assert station.config[0]['reduce_data'] == np.True_
        assert station.config[0]['trig_external'] == 0
    assert folder_files(data_dir, 'suspicious') == []


def test_time_columns_take_their_bounds_and_refuse_one_beyond():
    """Exact ints within range are taken as they are; anything else goes through the column's fit."""
    epoch, second = datetime.datetime(1970, 1, 1), datetime.timedelta(seconds=1)
    last = datetime.datetime(2038, 1, 19, 3, 14, 7)  # 2**31 - 1, the end of time32

    def times(code, when, nanoseconds=0):
        event = factory.event(code, when, random.Random(13), nanoseconds=nanoseconds)
        return rows.convert(event, set()).times

    assert times('CIC', last, 999_999_999) == (2**31 - 1, 999_999_999, (2**31 - 1) * 10**9 + 999_999_999)
    assert times('CIC', epoch) == (0, 0, 0)
    assert times('CIC', epoch, 5.0) == (0, 5, 5)  # truncated, as in any integer column
    assert times('CIC', epoch, True) == (0, 1, 1)
    assert times('SIN', epoch - second) == (-1,)  # time32 is signed; only ext_timestamp is not
    for code, when, nanoseconds in [
        ('SIN', last + second, 0),
        ('CIC', epoch, -1),
        ('CIC', epoch, 2**32),
        ('CIC', epoch - second, 999_999_999),  # ext_timestamp -1
    ]:
        with pytest.raises(rows.Unfit, match='out of range'):
            times(code, when, nanoseconds)


def test_unknown_upload_codes_are_ignored_with_one_warning_per_code(setup, caplog):
    config, data_dir = setup
    rng = random.Random(9)
    events = [factory.event('SIN', WHEN + datetime.timedelta(seconds=i), rng) for i in range(5)]
    for event in events:
        event['datalist'].append({'data_uploadcode': 'SIN_NEW_THING', 'data': 3})
    queue(data_dir, events)
    with caplog.at_level(logging.WARNING, logger='writer'):
        drain(config)
    warnings = [r for r in caplog.records if 'SIN_NEW_THING' in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    h5, station = open_station(data_dir)
    with h5:
        assert station.singles.nrows == 5
    assert folder_files(data_dir, 'suspicious') == []


def test_lightning_codes_map_to_their_columns(setup):
    config, data_dir = setup
    rng = random.Random(10)
    lit, lcg, lst = (factory.event(code, WHEN, rng) for code in ('LIT', 'LCG', 'LST'))
    lit['datalist'] = [
        {'data_uploadcode': 'LIT_UNCORR_ANGLE', 'data': 12.5},
        {'data_uploadcode': 'LIT_CORR_ANGLE', 'data': 13.5},
    ]
    lcg['datalist'] = [{'data_uploadcode': 'LCG_SQUELCH_SETTING', 'data': 7}]
    lst['datalist'] = [{'data_uploadcode': 'LST_SEVERE_ALARM', 'data': True}]
    queue(data_dir, [lit, lcg, lst])
    drain(config)
    h5, station = open_station(data_dir)
    with h5:
        assert (station.lightning[0]['uncorr_angle'], station.lightning[0]['corr_angle']) == (12.5, 13.5)
        assert station.lightning_config[0]['squelch_seting'] == 7
        assert station.lightning_status[0]['sever_alarm']


def test_status_file_reports_state_stations_and_count(setup):
    config, data_dir = setup
    events = factory.batch(WHEN, random.Random(11))
    queue(data_dir, events)
    app = drain(config)
    with open(os.path.join(data_dir, 'writer.status')) as f:
        status = json.load(f)
    assert status['pid'] == os.getpid()
    assert status['state'] in ('storing', 'idle')
    assert status['events_stored'] == app.events_stored == 100
    assert status['stations'] == {'501': max(expected_row(e)['timestamp'] for e in events)}


@pytest.mark.parametrize('flavour', ['py2', 'py3'])
def test_captures_known_values(captures, make_config, flavour):
    config = make_config(minimum_year=2000)
    data_dir = os.path.join(os.path.dirname(config), 'datastore')
    datadir.DataDir(str(data_dir)).ensure()
    for path in sorted((captures / 'spool').glob(f'writer_{flavour}_*')):
        shutil.copyfile(path, os.path.join(data_dir, 'incoming', path.name))
    drain(config)
    h5, station = open_station(data_dir, datetime.datetime(2017, 2, 26), 'Amsterdam', 99)
    with h5:
        events = station.events[0]
        assert (events['timestamp'], events['nanoseconds'], events['ext_timestamp']) == (
            1488093964,
            130245552,
            1488093964130245552,
        )
        assert list(events['pulseheights']) == [625, 972, 923, 724]
        singles = station.singles[0]
        assert (
            singles['timestamp'],
            singles['mas_ch1_low'],
            singles['mas_ch1_high'],
            singles['slv_ch1_low'],
            singles['slv_ch1_high'],
        ) == (1488094031, 345, 98, 329, 95)
        source = spoolfile.load(str(captures / 'spool' / f'writer_{flavour}_CIC'))['event_list'][0]
        tr1 = next(d['data'] for d in source['datalist'] if d['data_uploadcode'] == 'TR1')
        assert station.blobs[int(events['traces'][0])] == base64.b64decode(tr1)
        config_row = station.config[0]
        assert config_row['timestamp'] == 1488125225
        assert (config_row['mas_ch1_thres_high'], config_row['mas_ch1_thres_low']) == (320, 250)
        assert (config_row['reduce_data'], config_row['mas_ch1_voltage'], config_row['slv_ch1_current']) == (
            False,
            300.0,
            0.0,
        )
        blobs = [station.blobs[int(config_row[c])] for c in ('mas_version', 'slv_version')]
        assert blobs == [b'', b'Hardware: 0 FPGA: 0']
        weather = station.weather[0]
        assert (weather['timestamp'], weather['uv'], weather['humidity_inside']) == (1488094084, -999, 25)
        assert weather['barometer'] == np.float32(1004.365)
        # 4 trace blobs + 2 config blobs, nothing else
        assert station.blobs.nrows == 6


def test_status_keeps_stations_stored_by_an_earlier_writer(setup):
    config, data_dir = setup
    first = factory.batch(WHEN, random.Random(12))
    queue(data_dir, first)
    drain(config)
    path = os.path.join(data_dir, 'writer.status')
    with open(path) as f:
        status = json.load(f)
    status['stations']['777'] = 1700000000  # a station only an earlier run stored
    with open(path, 'w') as f:
        json.dump(status, f)
    drain(config)  # a new writer, nothing queued
    with open(path) as f:
        stations = json.load(f)['stations']
    assert stations == {'501': max(expected_row(e)['timestamp'] for e in first), '777': 1700000000}


def test_unreadable_status_file_starts_afresh(setup):
    config, data_dir = setup
    os.makedirs(data_dir)
    with open(os.path.join(data_dir, 'writer.status'), 'w') as f:
        f.write('{not json')
    queue(data_dir, factory.batch(WHEN, random.Random(13)))
    drain(config)
    with open(os.path.join(data_dir, 'writer.status')) as f:
        assert list(json.load(f)['stations']) == ['501']


def test_a_station_whose_first_events_had_no_blobs_is_stored_again_in_a_later_pass(setup):
    # A one-event upload of singles makes the station's blobs node with no rows
    # yet: the next pass must find that node, not try to make it a second time.
    config, data_dir = setup
    rng = random.Random(7)
    queue(data_dir, [factory.event('SIN', WHEN, rng)])
    drain(config)
    second = datetime.timedelta(seconds=1)
    queue(data_dir, [factory.event('SIN', WHEN + second, rng), factory.event('CIC', WHEN + 2 * second, rng)])
    drain(config)
    h5, station = open_station(data_dir)
    with h5:
        assert (station.singles.nrows, station.events.nrows) == (2, 1)
        assert station.blobs.nrows == 4  # the CIC event's four traces
    assert folder_files(data_dir, 'incoming') == folder_files(data_dir, 'partial') == []


def test_a_pass_takes_spool_files_up_to_batch_bytes_but_always_one(make_config, caplog):
    config = make_config()
    data_dir = os.path.join(os.path.dirname(config), 'datastore')
    batches = [factory.batch(WHEN + datetime.timedelta(minutes=i), random.Random(i)) for i in range(5)]
    names = [queue(data_dir, batch) for batch in batches]
    sizes = [os.path.getsize(os.path.join(data_dir, 'incoming', name)) for name in names]
    room = 2 * max(sizes)  # any two files, never three
    assert 3 * min(sizes) > room
    with open(config, 'a') as f:
        f.write(f'batch_bytes={room}\n')
    with caplog.at_level(logging.INFO, logger='writer'):
        drain(config)
    passes = [r.getMessage() for r in caplog.records if r.getMessage().startswith('stored ')]
    assert [line.split(' spool files')[0].rsplit(' ', 1)[1] for line in passes] == ['2', '2', '1']
    with open(config) as f:  # no room for any: one file a pass
        text = f.read()
    with open(config, 'w') as f:
        f.write(text.replace(f'batch_bytes={room}', 'batch_bytes=1'))
    for batch in batches:
        queue(data_dir, shifted(batch))
    caplog.clear()
    with caplog.at_level(logging.INFO, logger='writer'):
        drain(config)
    passes = [r.getMessage() for r in caplog.records if r.getMessage().startswith('stored ')]
    assert len(passes) == 5
    assert all('from 1 spool files' in line for line in passes)
    h5, station = open_station(data_dir)
    with h5:
        assert station.events.nrows + station.singles.nrows == 1000


def shifted(batch):
    """The batch an hour later: distinct events for the same day file and station."""
    return [
        dict(
            event,
            header=dict(event['header'], datetime=event['header']['datetime'] + datetime.timedelta(hours=1)),
        )
        for event in batch
    ]


def test_files_left_in_partial_are_taken_again_within_the_same_bounds(tmp_path):
    paths = []
    for i, size in enumerate((40, 40, 40, 100)):
        path = tmp_path / f'{i}'
        path.write_bytes(b'x' * size)
        paths.append(str(path))
    assert storepass.first_within(paths, files=10, room=80) == paths[:2]
    assert storepass.first_within(paths, files=1, room=1000) == paths[:1]
    assert storepass.first_within(paths[3:], files=10, room=10) == paths[3:]  # one, however large
