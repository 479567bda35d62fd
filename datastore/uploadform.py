"""How a station encodes an upload: the form body the deployed clients post."""
import hashlib
import urllib.parse


def encode(station_id, password, pickled, checksum=None, raw_bytes=False):
    """The form body for the pickle ``pickled`` (bytes).

    As the Windows client does by default: ``data`` is the pickle decoded as
    ISO-8859-1, form-encoded as UTF-8, and ``checksum`` its MD5 hex;
    ``raw_bytes`` percent-encodes the pickle's own bytes, as some clients do.
    """
    data = pickled if raw_bytes else pickled.decode('latin1')
    return urllib.parse.urlencode({
        'station_id': str(station_id), 'password': password, 'data': data,
        'checksum': checksum or hashlib.md5(pickled).hexdigest()}).encode('ascii')
