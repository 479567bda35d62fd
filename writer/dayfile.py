"""One open day file: its station groups, tables and blobs, with their titles, and its node map."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import tables

from datastore import durable
from datastore.eventtypes import EVENT_TYPES

from . import faults, layout
from .faults import DayFileUnavailable

GROUP = -1  # the length a node map gives a group


class DayFileLocked(DayFileUnavailable):
    """Another process holds the day file (publicdb reading it, or a rebuild): wait."""


class DayFileDamaged(DayFileUnavailable):
    """The day file does not open, or does not hold what the ledger says it must.

    ``hard`` damage (the file opens but is not what it must be) is cleared
    only by ``rebuild``; a file that would not open is tried again now and then.
    """

    def __init__(self, why: str, hard: bool = True, day: str | None = None) -> None:
        super().__init__(why)
        self.hard = hard
        self.day = day  # the day file's date, where known


def open_h5(path: str, mode: str) -> tables.File:
    """``tables.open_file``, its failures sorted into locked and damaged.

    An OSError of the file system itself (disk full, permissions) passes as it is.
    """
    try:
        return tables.open_file(path, mode)
    except tables.HDF5ExtError as exc:
        why = f'{path}: {str(exc).strip().splitlines()[0]}'
        if 'unable to lock' in str(exc):
            raise DayFileLocked(why) from None
        raise DayFileDamaged(why, hard=False) from None
    except (ValueError, TypeError, RecursionError, tables.NodeError) as exc:  # garbage that opened half
        raise DayFileDamaged(f'{path}: {type(exc).__name__}: {exc}', hard=False) from None


def node_map(h5: tables.File) -> dict[str, int]:
    """{path: length} of every node under ``/`` (GROUP for a group); DayFileDamaged if unreadable."""
    try:
        return {
            node._v_pathname: GROUP if isinstance(node, tables.Group) else int(node.nrows)
            for node in h5.walk_nodes('/')
            if node is not h5.root
        }
    except Exception as exc:
        raise DayFileDamaged(
            f'{h5.filename}: its nodes cannot be listed: {type(exc).__name__}: {exc}'
        ) from None


class DayFile:
    """A day file opened for appending; closed (and fsynced) by ``close``."""

    def __init__(self, path: str, day: str | None = None) -> None:
        self.path = path
        self.day = day
        self.created = not os.path.exists(path)
        self.touched: dict[str, Any] = {}  # path -> every node this found or made for writing
        durable.makedirs(os.path.dirname(path), mode=0o755)
        try:
            self.h5 = open_h5(path, 'a')
        except DayFileDamaged as exc:
            exc.day = day
            raise

    def _child(self, group: tables.Group, name: str, kind: type, dtype: Any = None) -> Any:
        """The child ``name`` of ``group``, or None; DayFileDamaged if it is not a ``kind``."""
        try:
            node: Any = group._f_get_child(name)
        except tables.NoSuchNodeError:
            return None
        if not isinstance(node, kind) or (dtype is not None and getattr(node, 'dtype', None) != dtype):
            raise DayFileDamaged(
                f'{self.path}: {node._v_pathname} is not the {kind.__name__} the layout says', day=self.day
            )
        return node

    def node_map(self) -> dict[str, int]:
        try:
            return node_map(self.h5)
        except DayFileDamaged as exc:
            exc.day = self.day
            raise

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
            child = self._child(group, name, tables.Group)
            group = self.h5.create_group(group, name, title) if child is None else child
            self.touched[group._v_pathname] = group
        return group

    # A node is falsy while it has no rows (a Leaf's len() is its nrows), so
    # "found or made" is decided by ``is None``, never by ``or``.
    def table(self, group: tables.Group, code: str) -> tables.Table:
        event_type = EVENT_TYPES[code]
        table = self._child(group, event_type.table, tables.Table, layout.dtype(code))
        if table is None:
            table = self.h5.create_table(
                group, event_type.table, layout.description(code), title=event_type.title
            )
        self.touched[table._v_pathname] = table
        return table

    def blobs(self, group: tables.Group) -> tables.VLArray:
        blobs = self._child(group, layout.BLOBS, tables.VLArray)
        if blobs is None:
            blobs = self.h5.create_vlarray(
                group, layout.BLOBS, tables.VLStringAtom(), title=layout.BLOBS_TITLE
            )
        self.touched[blobs._v_pathname] = blobs
        return blobs

    def node_map_after(self, before: dict[str, int]) -> dict[str, int]:
        """The node map as ``before`` (the file's when opened) and what this wrote since.

        Only the nodes found or made here change, so this is what walking the
        file would say, without loading every node of a file of many stations.
        """
        return {
            **before,
            **{
                path: GROUP if isinstance(node, tables.Group) else int(node.nrows)
                for path, node in self.touched.items()
            },
        }

    def close(self) -> None:
        """Flush, close and fsync: once this returns the rows are durable. Closing twice is fine.

        A file this opened new is durable in its folder too (the folders made
        for it were fsynced into theirs as they were made).
        """
        if self.h5.isopen:
            self.h5.close()
            durable.fsync_file(self.path)
            if self.created:
                durable.fsync_dir(os.path.dirname(self.path))
                self.created = False

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """What HDF5 says while writing is the day file's fault (or a full disk's), not the rows'."""
        try:
            yield
        except OSError:
            raise
        except (tables.HDF5ExtError, tables.NodeError) as exc:
            if faults.disk_full(self.path):
                raise faults.DiskFull(f'disk full writing {self.path}: {exc}') from None
            raise DayFileDamaged(
                f'{self.path}: writing failed: {str(exc).strip().splitlines()[0]}', day=self.day
            ) from None


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
