"""The return codes of the upload protocol: the whole reply body, always HTTP 200.

Stations act on these literally (the Windows client compares the reply with
``'100'``), so they are text, exactly three digits.
"""
OK = '100'                      # the batch is stored durably
INVALID_INPUT = '201'           # the checksum does not match the data
WRONG_UPLOAD_CODE = '202'       # defined by the protocol, unused
WRONG_PASSWORD = '203'
EVENT_EXISTS = '204'            # defined by the protocol, unused
TRANSACTION_FAILED = '205'      # defined by the protocol, unused
STATION_UNKNOWN = '206'         # not in the station list
WRONG_EVENT_TYPE = '207'        # defined by the protocol, unused
UNPICKLING_ERROR = '208'        # not a pickle the server accepts
INVALID_POST_DATA = '400'       # missing or malformed field, unreadable body, bare GET
STORAGE_UNAVAILABLE = '404'     # storage (or the server's own setup) unavailable

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
