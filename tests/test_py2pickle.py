"""The Python 2 protocol-0 emitter, checked against real station bytes."""

import datetime
import pickle
import random

import pytest

from datastore import factory, py2pickle, safepickle


def test_emits_ascii_protocol_0_that_python3_reads_back():
    events = factory.every_type(datetime.datetime(2024, 1, 1, 23, 59, 50), random.Random(3))
    data = py2pickle.dumps(events)
    data.decode('ascii')
    assert data.startswith(b'(lp0\n') and data.endswith(b'.')
    assert pickle.loads(data, encoding='latin1') == events


def test_python2_literals():
    assert py2pickle.dumps([True, False, -1, 1.0, 0.55, '', "it's"]) == (
        b"(lp0\nI01\naI00\naI-1\naF1\naF0.55\naS''\naS\"it's\"\np1\na."
    )


@pytest.mark.parametrize('name', ['py2event', 'suspicious_event'])
def test_reproduces_real_uploads_byte_for_byte(captures, name):
    data = (captures / 'upload' / name).read_bytes()
    assert py2pickle.dumps(safepickle.loads(data)) == data


@pytest.mark.parametrize(
    'name',
    [
        'upload/py2_s510_100events',
        'upload/py2_pysparc_config',
        'spool/writer_py2_CIC',
        'spool/writer_py2_CFG',
    ],
)
def test_same_opcodes_and_values_as_real_python2_pickles(captures, name):
    data = (captures / name).read_bytes()
    obj = safepickle.loads(data)
    again = py2pickle.dumps(obj)
    assert safepickle.loads(again) == obj
    again.decode('ascii')
