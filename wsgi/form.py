"""The upload's form body: read it, split it, percent-decode it, find the pickle.

Stations post ``application/x-www-form-urlencoded`` bodies of about 200 kB,
nearly all of it the percent-encoded pickle, so decoding is the hot path.
"""

from __future__ import annotations

import binascii
import contextlib
import hashlib
import time
import urllib.parse
from typing import Any

from datastore.protocol import FIELDS, INVALID_POST_DATA, Refused


class FormError(Refused):
    """The body is not the form the protocol describes (reply 400)."""

    code = INVALID_POST_DATA


DRAIN_SECONDS = 10.0  # at most this long spent reading a refused body, so its sender reads the 400
CHUNK = 65536
MAX_LENGTH_DIGITS = 18  # a Content-Length of more digits is over any body limit


def read_body(environ: dict[str, Any], limit: int) -> bytes:
    """Exactly CONTENT_LENGTH bytes of the request body.

    A body over ``limit``, or sent in chunks (no client of the protocol
    does), is refused: read and dropped first (up to twice the limit, and
    ``DRAIN_SECONDS``), because a client that is still sending when the
    connection closes reads a reset, not the 400.
    """
    if 'chunked' in environ.get('HTTP_TRANSFER_ENCODING', '').lower():
        drained = drain_chunks(2 * limit)
        raise FormError(f'a chunked body ({drained} bytes read and dropped); stations send Content-Length')
    raw = environ.get('CONTENT_LENGTH') or '0'
    if not (raw.isascii() and raw.isdigit()):
        raise FormError(f'Content-Length {raw[:20]!r} is not a number')
    digits = raw.lstrip('0') or '0'
    if len(digits) > MAX_LENGTH_DIGITS:  # int() refuses more than 4,300 digits; any limit has fewer
        drained = drain(environ['wsgi.input'], 2 * limit)
        raise FormError(
            f'Content-Length of {len(digits):,} digits is over the limit of {limit} '
            f'({drained} read and dropped)'
        )
    length = int(digits)
    if length > limit:
        drained = drain(environ['wsgi.input'], min(length, 2 * limit))
        raise FormError(f'body of {length} bytes is over the limit of {limit} ({drained} read and dropped)')
    stream, chunks, left = environ['wsgi.input'], [], length
    while left:
        try:
            chunk = stream.read(left)
        except OSError as exc:  # uWSGI: the client hung up or went silent
            raise FormError(f'body unreadable after {length - left} of {length} bytes: {exc}') from None
        if not chunk:
            raise FormError(f'body ended {left} bytes before its Content-Length')
        chunks.append(chunk)
        left -= len(chunk)
    return b''.join(chunks)


def drain(stream: Any, length: int) -> int:
    """Read and drop up to ``length`` bytes of ``stream`` within DRAIN_SECONDS; return how many."""
    deadline = time.monotonic() + DRAIN_SECONDS
    read = 0
    with contextlib.suppress(OSError):
        while read < length and time.monotonic() < deadline:
            chunk = stream.read(min(CHUNK, length - read))
            if not chunk:
                break
            read += len(chunk)
    return read


def drain_chunks(limit: int) -> int:
    """Read and drop a chunked body (uWSGI's chunked input), up to ``limit`` bytes and DRAIN_SECONDS."""
    try:
        import uwsgi  # noqa: PLC0415 (only inside uWSGI)
    except ImportError:
        return 0
    deadline = time.monotonic() + DRAIN_SECONDS
    read = 0
    with contextlib.suppress(OSError):
        while read < limit and time.monotonic() < deadline:
            chunk = uwsgi.chunked_read(int(DRAIN_SECONDS))
            if not chunk:
                break
            read += len(chunk)
    return read


# Quoted-printable escapes are percent escapes with '=' for '%', and
# binascii's C decoder is several times faster than unquote_to_bytes. The two
# agree when every '%' starts a valid escape (all that an encoder writes): each
# then shrinks the text by exactly 2 bytes. Any other '%' shrinks it by less,
# once raw '=', raw line breaks and a final '%' (quoted-printable soft line
# breaks) are ruled out, so the length tells whether the fast result is exact.
_AS_QP = bytes.maketrans(b'%+', b'= ')
_QP_SPECIAL = (b'=', b'\n', b'\r')  # single bytes: found at memchr speed


def _unquote_fast(value: bytes) -> bytes | None:
    """``value`` decoded by binascii (exact if ``_is_exact``); None where it would read it otherwise."""
    if value.endswith(b'%') or any(special in value for special in _QP_SPECIAL):
        return None
    return binascii.a2b_qp(value.translate(_AS_QP))


def _is_exact(value: bytes, decoded: bytes) -> bool:
    return len(decoded) == len(value) - 2 * value.count(b'%')


def _unquote_exact(value: bytes) -> bytes:
    return urllib.parse.unquote_to_bytes(value.replace(b'+', b' '))


def unquote(value: bytes) -> bytes:
    """Percent-decode one form value (``+`` is a space) to bytes."""
    decoded = _unquote_fast(value)
    if decoded is not None and _is_exact(value, decoded):
        return decoded
    return _unquote_exact(value)


def parse(body: bytes) -> dict[str, bytes]:
    """The four fields of the upload as {name: bytes}, percent-decoded but ``data``.

    ``data``, nearly all of the body, stays as sent: ``pickle_bytes`` decodes
    it. Other fields are ignored; a field given twice, a pair without ``=``,
    or a missing field is a FormError. Split with ``find`` (memchr), and the
    value of each field copied once.
    """
    if not body:
        raise FormError('empty body (a bare GET?)')
    spans: dict[str, tuple[int, int]] = {}
    start, size = 0, len(body)
    while start <= size:
        end = body.find(b'&', start)
        end = size if end < 0 else end
        if end > start:
            equals = body.find(b'=', start, end)
            if equals < 0:
                raise FormError('a form field without "="')
            name = unquote(body[start:equals]).decode('latin1')
            if name in spans:
                raise FormError(f'field {name[:40]!r} given twice')
            spans[name] = (equals + 1, end)
        start = end + 1
    missing = [name for name in FIELDS if name not in spans]
    if missing:
        raise FormError(f'missing field(s): {", ".join(missing)}')
    values = {name: body[slice(*spans[name])] for name in FIELDS}
    return {name: value if name == 'data' else unquote(value) for name, value in values.items()}


def station_number(value: bytes) -> int:
    """The ``station_id`` field: decimal digits only."""
    if not value.isdigit():
        raise FormError('station_id is not a decimal number')
    try:
        return int(value)
    except ValueError:  # more digits than int() accepts
        raise FormError('station_id is too long') from None


def pickle_bytes(data: bytes, checksum: bytes) -> bytes | None:
    """The pickle in the form value ``data`` (as sent) whose MD5 is ``checksum``, or None.

    The protocol's reading: ``data`` percent-decoded is UTF-8 text whose
    ISO-8859-1 encoding is the pickle. Some clients percent-encode the pickle's
    own bytes instead. The checksum tells which reading the client meant; for
    ASCII (every Python 2 protocol-0 pickle) both readings are the same bytes.
    It also tells the decoding: binascii's is tried first, and urllib's only
    where binascii's does not match and is not exact, so a real upload is
    decoded once and never scanned for a stray '%'.
    """
    try:
        expected = checksum.decode('ascii').lower()
    except UnicodeDecodeError:
        return None
    fast = _unquote_fast(data)
    if fast is not None:
        found = _reading(fast, expected)
        if found is not None or _is_exact(data, fast):
            return found
    return _reading(_unquote_exact(data), expected)  # binascii's reading is not exact, or there is none


def _reading(decoded: bytes, expected: str) -> bytes | None:
    """The reading of the percent-decoded ``decoded`` whose MD5 (hex) is ``expected``, or None."""
    readings = [decoded]
    if not decoded.isascii():
        with contextlib.suppress(UnicodeDecodeError, UnicodeEncodeError):
            readings.insert(0, decoded.decode('utf-8').encode('latin1'))
    for reading in readings:
        if hashlib.md5(reading).hexdigest() == expected:
            return reading
    return None
