"""The rows an archived spool file became, made again from the file itself.

The archive is the source of truth (as a Kafka log is for the views built
from it): converting an archived spool file again, with the positions the
ledger recorded for it, gives its rows and blobs exactly as the pass stored
them, event ids and blob indexes included. ``rebuild`` writes day files
from these; ``audit --deep`` compares day files with them.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from datastore import events, ledger, spoolfile

from . import layout, rows
from .storepass import BLOBS, SpoolFile, StationRows


class NotReplayable(Exception):
    """The archived spool file is gone, unreadable, or no longer gives the rows recorded for it."""


@dataclasses.dataclass
class Segment:
    """Rows of one node from one spool file, as stored."""

    node: str
    first: int
    data: Any  # a structured array for a table, a list of bytes for the blobs


def replay(entry: ledger.SpoolEntry, day: str, rule: events.Rule) -> list[Segment]:
    """The segments ``entry`` stored in ``day``'s file, made again from its archived spool file."""
    if not entry.archived or not os.path.exists(entry.archived):
        raise NotReplayable(f'{entry.spool}: not in the archive')
    try:
        record = spoolfile.load(entry.archived)
    except (spoolfile.SpoolError, OSError) as exc:
        raise NotReplayable(f'{entry.spool}: archived copy unreadable: {exc}') from None
    converted = SpoolFile(entry.archived, record, rule, set())
    station_rows = StationRows()
    for row in converted.rows:
        if ledger.day_key(*row.day) == day:
            station_rows.add(row, entry.spool)
    station = layout.station_path(entry.cluster, entry.station)
    recorded = {node: (first, count) for seg_day, node, first, count in entry.segments if seg_day == day}
    blobs_node = f'{station}/{layout.BLOBS}'
    blob_first = recorded.get(blobs_node, (0, 0))[0]
    made: dict[str, Segment] = {}
    if station_rows.blobs:
        made[blobs_node] = Segment(blobs_node, blob_first, station_rows.blobs)
    for code in station_rows.rows:
        node = f'{station}/{rows.PLANS[code].table}'
        first = recorded.get(node, (0, 0))[0]
        made[node] = Segment(node, first, station_rows.table_rows(code, first, blob_first))
    counts = {node: len(segment.data) for node, segment in made.items()}
    if counts != {node: count for node, (_, count) in recorded.items()}:
        raise NotReplayable(
            f'{entry.spool}: converting it again gives other rows than recorded '
            f'({counts} against {dict(recorded)})'
        )
    return list(made.values())


__all__ = ['BLOBS', 'NotReplayable', 'Segment', 'replay']
