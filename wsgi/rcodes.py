"""The return codes of the upload protocol (kept in ``datastore.protocol``)."""

from datastore.protocol import (
    EVENT_EXISTS,
    INVALID_INPUT,
    INVALID_POST_DATA,
    MEANING,
    OK,
    STATION_UNKNOWN,
    STORAGE_UNAVAILABLE,
    TRANSACTION_FAILED,
    UNPICKLING_ERROR,
    WRONG_EVENT_TYPE,
    WRONG_PASSWORD,
    WRONG_UPLOAD_CODE,
)

__all__ = [
    'EVENT_EXISTS',
    'INVALID_INPUT',
    'INVALID_POST_DATA',
    'MEANING',
    'OK',
    'STATION_UNKNOWN',
    'STORAGE_UNAVAILABLE',
    'TRANSACTION_FAILED',
    'UNPICKLING_ERROR',
    'WRONG_EVENT_TYPE',
    'WRONG_PASSWORD',
    'WRONG_UPLOAD_CODE',
]
