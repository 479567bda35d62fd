"""The allow-listed unpickler: real pickle flavours load, everything else is refused."""

import datetime
import pickle
import random
import time

import pytest

from datastore import factory, py2pickle, safepickle
from datastore.safepickle import PickleRefused

WHEN = datetime.datetime(2024, 3, 1, 12, 30, 5, 250000)


@pytest.mark.parametrize('protocol', range(pickle.HIGHEST_PROTOCOL + 1))
def test_python3_pickles_of_every_protocol_load(protocol):
    events = [
        {
            'header': {'datetime': WHEN, 'nanoseconds': 5},
            'datalist': [
                {'data_uploadcode': 'TR1', 'data': 'eJzT'},
                {'data_uploadcode': 'B', 'data': b'\xe9\x00'},
            ],
        }
    ]
    assert safepickle.loads(pickle.dumps(events, protocol=protocol)) == events


def test_python2_byte_strings_become_latin1_text():
    data = py2pickle.dumps([{'msg': 'caf\xe9 \x80\x93'}])  # cp1252 bytes, not UTF-8
    assert safepickle.loads(data) == [{'msg': 'caf\xe9 \x80\x93'}]


@pytest.mark.parametrize('dtype, value', [('i4', 625), ('i4', -1), ('i8', 2**40), ('f8', 0.5)])
def test_python2_numpy_scalars_become_plain_numbers(dtype, value):
    loaded = safepickle.loads(py2pickle.dumps([py2pickle.NumpyScalar(value, dtype)]))
    assert loaded == [value] and type(loaded[0]) in (int, float)


def test_python3_numpy_scalars_become_plain_numbers():
    numpy = pytest.importorskip('numpy')
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        data = pickle.dumps([numpy.int32(972), numpy.float64(2.5), numpy.uint16(7)], protocol=protocol)
        loaded = safepickle.loads(data)
        assert loaded == [972, 2.5, 7]
        assert [type(x) for x in loaded] == [int, float, int]


HOSTILE_GLOBALS = [
    ('os', 'system'),
    ('posix', 'system'),
    ('builtins', 'eval'),
    ('subprocess', 'Popen'),
    ('builtins', 'getattr'),
    ('numpy', 'load'),
]


class _Call:
    """Pickles as a call of ``module.name(*args)``, as a hostile upload would."""

    def __init__(self, module, name, *args):
        self.module, self.name, self.args = module, name, args or ('echo pwned',)

    def __reduce__(self):
        import importlib

        return getattr(importlib.import_module(self.module), self.name), self.args


@pytest.mark.parametrize('protocol', range(pickle.HIGHEST_PROTOCOL + 1))
@pytest.mark.parametrize('module, name', HOSTILE_GLOBALS)
def test_every_other_global_is_refused(protocol, module, name):
    try:
        data = pickle.dumps([_Call(module, name)], protocol=protocol)
    except (pickle.PicklingError, AttributeError, ImportError):
        pytest.skip(f'{module}.{name} cannot be pickled by reference here')
    with pytest.raises(PickleRefused, match='not allowed'):
        safepickle.loads(data)


def test_inst_and_obj_opcodes_are_refused():
    with pytest.raises(PickleRefused):
        safepickle.loads(b"(S'echo pwned'\nios\nsystem\n.")
    with pytest.raises(PickleRefused):
        safepickle.loads(b'\x80\x02(cos\nsystem\nX\x0a\x00\x00\x00echo pwnedo.')


def test_extension_registry_and_persistent_ids_are_refused():
    with pytest.raises(PickleRefused):
        safepickle.loads(b'\x80\x02\x82\x01.')  # EXT1 code 1
    with pytest.raises(PickleRefused):
        safepickle.loads(b'(Pfoo\n.')  # PERSID


@pytest.mark.parametrize('data', [b'', b'garbage', b'\x80\x05', b'(lp0\nI1\na', b'\x80\x04\x95'])
def test_broken_pickles_are_refused(data):
    with pytest.raises(PickleRefused):
        safepickle.loads(data)


def test_unexpected_arguments_to_allowed_stand_ins_are_refused():
    with pytest.raises(PickleRefused):
        safepickle.loads(b'c_codecs\nencode\n(Vx\nVrot13\ntR.')
    with pytest.raises(PickleRefused):
        safepickle.loads(b"cnumpy.core.multiarray\nscalar\n(I1\nS'x'\ntR.")


def test_hostile_pickle_refused_before_anything_runs(tmp_path):
    marker = tmp_path / 'ran'
    data = pickle.dumps([_Call('os', 'system', f'touch {marker}')], protocol=2)
    assert b'system' in data
    with pytest.raises(PickleRefused):
        safepickle.loads(data)
    assert not marker.exists()


def test_bytes_after_the_stop_opcode_are_refused():
    data = py2pickle.dumps([1, 2])
    assert safepickle.loads(data) == [1, 2]
    with pytest.raises(PickleRefused, match='after the end'):
        safepickle.loads(data + b"cos\nsystem\n(S'echo'\ntR.")


# -- uploads: unpickled in time bounded by their size ----------------------------------------


def _realistic():
    return factory.every_type(WHEN, random.Random(5)) + factory.batch(WHEN, random.Random(5))


@pytest.mark.parametrize('protocol', range(pickle.HIGHEST_PROTOCOL + 1))
def test_an_upload_of_every_protocol_loads_as_a_spool_file_does(protocol):
    data = pickle.dumps(_realistic(), protocol=protocol)
    assert safepickle.loads_upload(data) == safepickle.loads(data) == _realistic()


@pytest.fixture
def c_only(monkeypatch):
    """Uploads read by Python's unpickler (10 to 30 times slower) fail the test."""

    def slow(data):
        raise AssertionError('read by the Python unpickler')

    monkeypatch.setattr(safepickle, '_CheckedUnpickler', slow)


def test_real_uploads_of_every_flavour_take_the_c_unpickler(c_only):
    events = [*_realistic(), *[[py2pickle.NumpyScalar(625, 'i4'), py2pickle.NumpyScalar(0.5, 'f8')]]]
    data = py2pickle.dumps(events)
    assert safepickle.loads_upload(data) == safepickle.loads(data)
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        assert safepickle.loads_upload(pickle.dumps(_realistic(), protocol=protocol)) == _realistic()


def test_python3_numpy_scalars_take_the_c_unpickler(c_only):
    numpy = pytest.importorskip('numpy')
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        data = pickle.dumps([numpy.int32(972), numpy.float64(2.5), numpy.uint16(7)], protocol=protocol)
        assert safepickle.loads_upload(data) == [972, 2.5, 7]


def test_every_captured_upload_takes_the_c_unpickler(captures, c_only):
    for path in sorted((captures / 'upload').iterdir()):
        data = path.read_bytes()
        assert safepickle.loads_upload(data) == safepickle.loads(data), path.name


@pytest.mark.parametrize('framed', [False, True], ids=['protocol 2', 'protocol 4, one frame'])
def test_a_pickle_that_python_reads_too_long_is_refused(monkeypatch, framed):
    monkeypatch.setattr(safepickle, 'PYTHON_SECONDS', 0.1)
    # two million one-byte opcodes (the C unpickler's), then a LONG1 of 9 bytes (Python's)
    body = b']' + b'}a' * 1_000_000 + b'\x8a\x09' + bytes(9) + b'a.'
    flood = b'\x80\x04\x95' + len(body).to_bytes(8, 'little') + body if framed else b'\x80\x02' + body
    started = time.monotonic()
    with pytest.raises(PickleRefused, match=r'unpickling takes over 0.1 s'):
        safepickle.loads_upload(flood)
    assert time.monotonic() - started < 0.5


def test_the_keys_of_real_events_are_all_text():
    keys = [key for event in _realistic() for key in [*event, *event['header']]]
    keys += [key for event in _realistic() for item in event['datalist'] for key in item]
    assert {type(key) for key in keys} == {str}


@pytest.mark.parametrize(
    'key, protocol',
    [
        *(((1, 0.5), protocol) for protocol in range(pickle.HIGHEST_PROTOCOL + 1)),
        *((2**64, protocol) for protocol in range(pickle.HIGHEST_PROTOCOL + 1)),
        (frozenset({1}), 4),  # below protocol 4 a frozenset is a global, refused anyway
        (frozenset({1}), 5),
    ],
)
def test_an_upload_with_a_key_whose_hash_a_sender_can_choose_is_refused(key, protocol):
    data = pickle.dumps([{key: 1}], protocol=protocol)
    assert safepickle.loads(data) == [{key: 1}]  # a spool file may: only the endpoint writes them
    with pytest.raises(PickleRefused, match=r'dict key of type|a set'):
        safepickle.loads_upload(data)


@pytest.mark.parametrize('key', ['text', b'bytes', 7, -(2**63), 2.5, None, True, WHEN])
def test_keys_whose_hash_no_sender_chooses_are_taken(key):
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        assert safepickle.loads_upload(pickle.dumps([{key: 1}], protocol=protocol)) == [{key: 1}]


def test_a_numpy_dtype_state_that_is_not_numpys_is_refused():
    # BUILD keeps its state in the memo (p9), from where it could come back as a key
    foreign = b"cnumpy\ndtype\n(S'i4'\nI0\nI1\ntR(I1\nF0.5\ntp9\nb."
    with pytest.raises(PickleRefused, match='unexpected state'):
        safepickle.loads_upload(foreign)


def test_a_pickle_that_ends_inside_an_opcode_is_refused():
    data = pickle.dumps(['x' * 1000], protocol=4)
    with pytest.raises(PickleRefused, match='ends inside an opcode'):
        safepickle.loads_upload(data[:-100])


@pytest.mark.parametrize('microsecond', [b'\xff\xff\xff', b'\x0f\x42\x40'], ids=['16777215', '1000000'])
def test_a_datetime_of_a_million_microseconds_or_more_is_impossible(microsecond):
    state = b'\x07\xe8\x0c\x1f\x17\x3b\x3b' + microsecond  # 2024-12-31 23:59:59
    (when,) = safepickle.loads_upload(py2pickle.dumps([safepickle.ImpossibleTime(state)]))
    assert when == safepickle.ImpossibleTime(state)
    (last,) = safepickle.loads_upload(py2pickle.dumps([datetime.datetime(2024, 12, 31, 23, 59, 59, 999_999)]))
    assert last == datetime.datetime(2024, 12, 31, 23, 59, 59, 999_999)
