"""The form body: reading, splitting, percent-decoding and the two readings of ``data``."""

import hashlib
import io
import pickle
import random
import time
import urllib.parse

import pytest

from wsgi import form
from wsgi.form import FormError


def _random_bytes(rng, n):
    return bytes(rng.randrange(256) for _ in range(n))


def test_unquote_decodes_exactly_as_urllib():
    rng = random.Random(7)
    for _ in range(3000):
        raw = _random_bytes(rng, rng.randrange(0, 60))
        encoded = rng.choice([urllib.parse.quote_plus(raw), urllib.parse.quote(raw, safe='')])
        # splice in what sloppy clients send: raw bytes, lone '%', '+', '=', line breaks
        pieces = [encoded.encode()] + [
            rng.choice(
                [
                    b'%',
                    b'%4',
                    b'%zz',
                    b'%%41',
                    b'+',
                    b'=',
                    b'=41',
                    b'\r\n',
                    b'=\n',
                    b'%0A',
                    b'%e9',
                    b'\xe9',
                    b' ',
                    b'_',
                ]
            )
            for _ in range(rng.randrange(4))
        ]
        rng.shuffle(pieces)
        value = b''.join(pieces)
        assert form.unquote(value) == urllib.parse.unquote_to_bytes(value.replace(b'+', b' ')), value


def test_unquote_round_trips_a_whole_pickle():
    data = pickle.dumps([{'x': bytes(range(256)) * 10, 'é': 'µ'}], protocol=5)
    assert form.unquote(urllib.parse.quote_plus(data).encode()) == data
    assert form.unquote(urllib.parse.quote_plus(data.decode('latin1')).encode()) == data.decode(
        'latin1'
    ).encode('utf-8')


def _environ(body, length=None):
    return {'CONTENT_LENGTH': str(len(body)) if length is None else length, 'wsgi.input': io.BytesIO(body)}


def test_read_body_reads_exactly_content_length():
    assert form.read_body(_environ(b'abcdef', '4'), limit=100) == b'abcd'


@pytest.mark.parametrize('length', ['', None])
def test_read_body_without_length_is_empty(length):
    environ = {'wsgi.input': io.BytesIO(b'ignored')}
    if length is not None:
        environ['CONTENT_LENGTH'] = length
    assert form.read_body(environ, limit=100) == b''


@pytest.mark.parametrize('length', ['-1', 'abc', '1e3', '12 '])
def test_read_body_refuses_a_malformed_length(length):
    with pytest.raises(FormError):
        form.read_body(_environ(b'x', length), limit=100)


def test_read_body_refuses_a_short_body():
    with pytest.raises(FormError, match='ended'):
        form.read_body(_environ(b'abc', '10'), limit=100)


def test_read_body_that_fails_mid_way_is_a_form_error():
    class HungUp:
        def read(self, size):
            raise OSError('error during read on wsgi.input')  # as uWSGI raises it

    with pytest.raises(FormError, match='unreadable after 0 of 10 bytes'):
        form.read_body({'CONTENT_LENGTH': '10', 'wsgi.input': HungUp()}, limit=100)


def test_read_body_over_the_limit_drops_at_most_twice_the_limit_unparsed():
    stream = io.BytesIO(b'x' * 1000)
    with pytest.raises(FormError, match=r'over the limit of 100 \(200 read and dropped\)'):
        form.read_body({'CONTENT_LENGTH': '1000', 'wsgi.input': stream}, limit=100)
    assert stream.tell() == 200


def test_dropping_a_refused_body_stops_after_its_time(monkeypatch):
    monkeypatch.setattr(form, 'DRAIN_SECONDS', 0.2)

    class Slow:
        def read(self, size):
            time.sleep(0.05)
            return b'x'

    started = time.monotonic()
    with pytest.raises(FormError, match='over the limit'):
        form.read_body({'CONTENT_LENGTH': '100000', 'wsgi.input': Slow()}, limit=100)
    assert time.monotonic() - started < 0.5


@pytest.mark.parametrize('length', ['9' * 5000, '0' * 5000 + '9' * 19])
def test_a_content_length_of_thousands_of_digits_is_over_the_limit(length):
    stream = io.BytesIO(b'x' * 1000)
    with pytest.raises(FormError, match=r'Content-Length of [\d,]+ digits is over the limit of 100 \(200'):
        form.read_body({'CONTENT_LENGTH': length, 'wsgi.input': stream}, limit=100)  # int() would raise


def test_a_content_length_with_leading_zeros_is_its_number():
    assert form.read_body(_environ(b'abcdef', '0' * 5000 + '4'), limit=100) == b'abcd'


def test_a_chunked_body_is_refused():
    with pytest.raises(FormError, match='chunked'):
        form.read_body({'HTTP_TRANSFER_ENCODING': 'chunked', 'wsgi.input': io.BytesIO(b'')}, limit=100)


@pytest.mark.parametrize('length', ['1e3', '-5', '²', '١٢'])
def test_a_content_length_that_is_not_ascii_digits_is_refused(length):
    with pytest.raises(FormError, match='is not a number'):
        form.read_body({'CONTENT_LENGTH': length, 'wsgi.input': io.BytesIO(b'')}, limit=100)


def test_parse_returns_the_four_fields_decoded_but_data_and_ignores_others():
    body = b'station_id=501&password=p%26ss+word&data=%28lp0%0A.&checksum=abc&extra=1&'
    assert form.parse(body) == {
        'station_id': b'501',
        'password': b'p&ss word',
        'data': b'%28lp0%0A.',  # as sent: pickle_bytes decodes it
        'checksum': b'abc',
    }


def test_parse_takes_the_fields_in_any_order_and_skips_empty_pairs():
    body = b'&&checksum=abc&&data=x&station_id=%35%30%31&password=&'
    assert form.parse(body) == {'station_id': b'501', 'password': b'', 'data': b'x', 'checksum': b'abc'}


@pytest.mark.parametrize(
    'body',
    [
        b'',
        b'station_id=501&password=x&data=y',  # missing
        b'station_id=501&password=x&data=y&checksum=z&data=y',  # twice
        b'station_id=501&password=x&data=y&checksum',  # no '='
        b'--xyz\r\nContent-Disposition: form-data; name="station_id"\r\n\r\n501\r\n--xyz--\r\n',
    ],
)
def test_parse_refuses_malformed_forms(body):
    with pytest.raises(FormError):
        form.parse(body)


@pytest.mark.parametrize('value, number', [(b'501', 501), (b'0007', 7)])
def test_station_number(value, number):
    assert form.station_number(value) == number


@pytest.mark.parametrize('value', [b'', b'abc', b'-1', b'5 01', b'\xd9\xa1', b'1' * 5000])
def test_station_number_refuses_anything_but_decimal_digits(value):
    with pytest.raises(FormError):
        form.station_number(value)


PICKLE = pickle.dumps(['caf\xe9', b'\x80\xff'], protocol=3)  # not ASCII


def _md5(data):
    return hashlib.md5(data).hexdigest().encode()


def test_the_protocols_reading_is_found_by_its_checksum():
    sent = urllib.parse.quote_plus(PICKLE.decode('latin1')).encode()  # the text, UTF-8 encoded
    assert form.pickle_bytes(sent, _md5(PICKLE)) == PICKLE


def test_the_raw_bytes_reading_is_found_by_its_checksum():
    sent = urllib.parse.quote_plus(PICKLE).encode()
    assert form.pickle_bytes(sent, _md5(PICKLE).upper()) == PICKLE  # case does not matter


@pytest.mark.parametrize('checksum', [b'0' * 32, b'', b'\xff' * 32])
def test_no_reading_matches_a_wrong_checksum(checksum):
    assert form.pickle_bytes(urllib.parse.quote_plus(PICKLE).encode(), checksum) is None


@pytest.mark.parametrize('sent', [b'%28lp0%zz%0A.', b'ab%', b'a=b%41', b'a%0\nb', b'%%41%4'])
def test_a_value_with_a_stray_percent_is_read_as_urllib_decodes_it(sent):
    exact = urllib.parse.unquote_to_bytes(sent.replace(b'+', b' '))
    assert form.pickle_bytes(sent, _md5(exact)) == exact


def test_binascii_reading_of_a_stray_percent_counts_only_where_the_checksum_is_its_own():
    sent = b'%28lp0%zz%0A.'
    assert form.pickle_bytes(sent, _md5(b'(lp0=zz\n.')) == b'(lp0=zz\n.'
    assert form.pickle_bytes(sent, _md5(b'(lp0\n.')) is None  # neither reading
