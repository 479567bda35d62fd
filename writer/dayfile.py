"""One open day file: its station groups, tables and blobs, with their titles."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import tables

from datastore import durable
from datastore.eventtypes import EVENT_TYPES

from . import layout


class DayFileUnavailable(Exception):
    """The day file cannot be opened now (another process holds it locked, or it is damaged)."""


class DayFile:
    """A day file opened for appending; closed (and fsynced) by ``close``."""

    def __init__(self, path: str) -> None:
        self.path = path
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        try:
            self.h5 = tables.open_file(path, 'a')
        except (OSError, tables.HDF5ExtError) as exc:
            raise DayFileUnavailable(f'{path}: {exc}') from None

    def node(self, path: str) -> Any:
        """The node at ``path``, or None."""
        try:
            return self.h5.get_node(path)
        except tables.NoSuchNodeError:
            return None

    def station(self, cluster: str, station_id: int) -> tables.Group:
        """The station's group, created with its parents when absent."""
        group = self.h5.root
        for name, title in (
            (layout.ROOT[1:], layout.ROOT_TITLE),
            layout.cluster_group(cluster),
            layout.station_group(station_id),
        ):
            try:
                group = group._f_get_child(name)
            except tables.NoSuchNodeError:
                group = self.h5.create_group(group, name, title)
        return group

    def table(self, group: tables.Group, code: str) -> tables.Table:
        event_type = EVENT_TYPES[code]
        try:
            return group._f_get_child(event_type.table)
        except tables.NoSuchNodeError:
            return self.h5.create_table(
                group, event_type.table, layout.description(code), title=event_type.title
            )

    def blobs(self, group: tables.Group) -> tables.VLArray:
        try:
            return group._f_get_child(layout.BLOBS)
        except tables.NoSuchNodeError:
            return self.h5.create_vlarray(
                group, layout.BLOBS, tables.VLStringAtom(), title=layout.BLOBS_TITLE
            )

    def close(self) -> None:
        """Flush, close and fsync: once this returns the rows are durable."""
        self.h5.close()
        durable.fsync_file(self.path)


def append_blobs(vlarray: tables.VLArray, blobs: list[bytes]) -> None:
    """Append byte strings to a VLStringAtom array.

    ``VLArray.append`` spends more time converting and checking its argument
    than writing it; the values are known to be ``bytes`` here, so each goes
    straight to the low-level append as the uint8 array PyTables stores.
    """
    for blob in blobs:
        if blob:
            data = np.frombuffer(blob, dtype=np.uint8)
            vlarray._append(data, len(data))
        else:
            vlarray._append(None, 0)
        vlarray.nrows += 1
