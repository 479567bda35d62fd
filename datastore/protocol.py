"""The station upload protocol (``spec/upload-protocol.md``): return codes and the form.

Every reply is HTTP 200, ``text/plain``, with exactly one three-digit return
code as its body. Stations act on these literally (the Windows client
compares the reply with ``'100'``).
"""

from __future__ import annotations

import hashlib
import urllib.parse

OK = '100'  # the batch is stored durably
INVALID_INPUT = '201'  # the checksum does not match the data
WRONG_UPLOAD_CODE = '202'  # defined by the protocol, unused
WRONG_PASSWORD = '203'  # noqa: S105 (a return code)
EVENT_EXISTS = '204'  # defined by the protocol, unused
TRANSACTION_FAILED = '205'  # defined by the protocol, unused
STATION_UNKNOWN = '206'  # not in the station list
WRONG_EVENT_TYPE = '207'  # defined by the protocol, unused
UNPICKLING_ERROR = '208'  # not a pickle the server accepts
INVALID_POST_DATA = '400'  # missing or malformed field, unreadable body, bare GET
STORAGE_UNAVAILABLE = '404'  # storage (or the server's own setup) unavailable

MEANING = {
    OK: 'OK',
    INVALID_INPUT: 'invalid input',
    WRONG_UPLOAD_CODE: 'wrong upload code',
    WRONG_PASSWORD: 'wrong password',
    EVENT_EXISTS: 'event already exists',
    TRANSACTION_FAILED: 'transaction failed',
    STATION_UNKNOWN: 'station unknown',
    WRONG_EVENT_TYPE: 'wrong event type',
    UNPICKLING_ERROR: 'unpickling error',
    INVALID_POST_DATA: 'internal server error: invalid post data',
    STORAGE_UNAVAILABLE: 'internal server error: storage unavailable',
}

# The form fields of an upload, in the order the clients send them
FIELDS = ('station_id', 'password', 'data', 'checksum')


class Refused(Exception):
    """An upload answered ``code`` (not ``100``) for the reason in the message.

    Subclasses name a kind of failure and carry its code.
    """

    code = STORAGE_UNAVAILABLE

    def __init__(self, why: str, code: str | None = None) -> None:
        super().__init__(why)
        if code is not None:
            self.code = code


def encode(
    station_id: int, password: str, pickled: bytes, checksum: str | None = None, raw_bytes: bool = False
) -> bytes:
    """The form body a station posts for the pickle ``pickled``.

    As the Windows client does by default: ``data`` is the pickle decoded as
    ISO-8859-1, form-encoded as UTF-8, and ``checksum`` its MD5 hex;
    ``raw_bytes`` percent-encodes the pickle's own bytes, as some clients do.
    """
    data = pickled if raw_bytes else pickled.decode('latin1')
    return urllib.parse.urlencode(
        {
            'station_id': str(station_id),
            'password': password,
            'data': data,
            'checksum': checksum or hashlib.md5(pickled).hexdigest(),
        }
    ).encode('ascii')
