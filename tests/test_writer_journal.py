"""Rolling back an interrupted pass: the day file as it was before the pass."""

import os

from writer import journal, layout
from writer.dayfile import DayFile, append_blobs

STATION = layout.station_path('Amsterdam', 501)
NEW_STATION = layout.station_path('Amsterdam', 502)
BLOBS = f'{STATION}/{layout.BLOBS}'
BEFORE = [b'tr1', b'', b'tr3']  # in the file before the pass
PASS = [b'pass-1', b'pass-2']  # appended by the interrupted pass


def day_file(tmp_path):
    """A day file as an interrupted pass left it: blobs added to station 501, station 502 new."""
    path = str(tmp_path / '2024_3_1.h5')
    f = DayFile(path)
    append_blobs(f.blobs(f.station('Amsterdam', 501)), BEFORE + PASS)
    append_blobs(f.blobs(f.station('Amsterdam', 502)), PASS)
    f.close()
    return path


def contents(path):
    f = DayFile(path)
    try:
        blobs = f.node(BLOBS)
        return (
            [bytes(row) for row in blobs.read()],
            blobs.title,
            f.node(STATION)._v_title,
            f.node(NEW_STATION) is None,
        )
    finally:
        f.close()


def test_rollback_cuts_back_removes_what_was_new_and_appends_go_on(tmp_path):
    path = day_file(tmp_path)
    journal.rollback({path: {BLOBS: len(BEFORE), NEW_STATION: -1, f'{NEW_STATION}/blobs': -1}})
    assert contents(path) == (BEFORE, layout.BLOBS_TITLE, layout.station_group(501)[1], True)
    f = DayFile(path)
    append_blobs(f.node(BLOBS), [b'again'])
    f.close()
    assert contents(path)[0] == [*BEFORE, b'again']
    assert os.listdir(tmp_path) == ['2024_3_1.h5']


def test_the_half_written_copy_of_a_killed_rollback_is_made_anew(tmp_path):
    path = day_file(tmp_path)
    with open(path + '.rollback', 'wb') as half_written:  # what a killed rollback left
        half_written.write(b'\x89HDF\r\n')
    journal.rollback({path: {BLOBS: len(BEFORE)}})
    assert contents(path)[0] == BEFORE
    assert os.listdir(tmp_path) == ['2024_3_1.h5']
