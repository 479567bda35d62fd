"""The allow-listed unpickler: real pickle flavours load, everything else is refused."""

import datetime
import pickle

import pytest

from datastore import py2pickle, safepickle
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
