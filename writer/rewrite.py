"""Replace a day file only by a verified copy: never the only copy of anything.

A day file is rewritten (after a crash, to undo a pass; by ``rebuild``)
beside the original, then checked against what it must hold: every node the
day file is known to have (the journal's or the ledger's node map, never what
PyTables can still list in the file being replaced), each at its known
length, and the kept rows identical to the original's, byte for byte. Only
then is the copy fsynced and renamed over the original. When the check
fails, the original stays as it was and ``Unverified`` says why.
(SQLite's rollback journal follows the same rule: the original is never
written until what replaces it is safe.)
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import tables

from datastore import durable
from datastore.datadir import DataDir

from . import faults
from .dayfile import GROUP, DayFileDamaged, open_h5

CHUNK = 65536  # rows compared at a time


class Unverified(Exception):
    """The rewritten day file does not hold what it must; the original was kept."""


def _parents_first(nodes: dict[str, int]) -> list[str]:
    return sorted(nodes, key=lambda path: (path.count('/'), path))


def cut_copy(source_path: str, copy_path: str, nodes: dict[str, int]) -> None:
    """Write ``copy_path``: the nodes of ``nodes`` from ``source_path``, each leaf cut to its length.

    DayFileDamaged if the source cannot be read; an OSError (disk full) as it is.
    """
    source = open_h5(source_path, 'r')
    try:
        with tables.open_file(copy_path, 'w', title=source.title) as copy:
            source.root._v_attrs._f_copy(copy.root)
            for path in _parents_first(nodes):
                try:
                    node = source.get_node(path)
                    parent = copy.get_node(path.rsplit('/', 1)[0] or '/')
                    if nodes[path] == GROUP:
                        node._f_copy(parent, recursive=False)
                    else:
                        node.copy(parent, stop=nodes[path])
                except OSError:
                    raise  # the disk: waited out
                except Exception as exc:  # the file: whatever HDF5 says about a damaged node
                    raise Unverified(
                        f'{source_path}: known node {path} cannot be copied: {type(exc).__name__}: {exc}'
                    ) from None
    finally:
        source.close()


def _chunks(length: int) -> Iterator[tuple[int, int]]:
    for start in range(0, length, CHUNK):
        yield start, min(start + CHUNK, length)


def _rows(leaf: tables.Leaf, start: int, stop: int) -> bytes | list[bytes]:
    data = leaf.read(start, stop)
    if isinstance(data, np.ndarray):
        return data.tobytes()  # bytes, not ==: a NaN is equal to itself here
    return [bytes(row) for row in data]


def verify(original_path: str, copy_path: str, nodes: dict[str, int]) -> None:
    """Check ``copy_path`` holds exactly ``nodes``, each row as in ``original_path``; Unverified if not."""
    try:
        copy = open_h5(copy_path, 'r')
    except DayFileDamaged as exc:
        raise Unverified(f'the copy does not open: {exc}') from None
    try:
        original = open_h5(original_path, 'r')
    except DayFileDamaged as exc:
        copy.close()
        raise Unverified(f'the original does not open to compare: {exc}') from None
    with copy, original:
        have = {
            node._v_pathname: GROUP if isinstance(node, tables.Group) else int(node.nrows)
            for node in copy.walk_nodes('/')
            if node is not copy.root
        }
        if have != nodes:
            missing = sorted(set(nodes) - set(have))[:5]
            wrong = sorted(p for p in set(nodes) & set(have) if have[p] != nodes[p])[:5]
            raise Unverified(
                f'the copy holds other nodes than known: missing {missing}, other lengths {wrong}'
            )
        for path, length in nodes.items():
            try:
                ours, theirs = copy.get_node(path), original.get_node(path)
            except Exception as exc:
                raise Unverified(f'{path} cannot be compared: {type(exc).__name__}: {exc}') from None
            if length == GROUP:
                if ours._v_title != theirs._v_title:
                    raise Unverified(f'{path}: title differs')
                continue
            if ours._v_title != theirs._v_title or getattr(ours, 'dtype', None) != getattr(
                theirs, 'dtype', None
            ):
                raise Unverified(f'{path}: title or row type differs')
            for start, stop in _chunks(length):
                try:
                    same = _rows(ours, start, stop) == _rows(theirs, start, stop)
                except Exception as exc:
                    raise Unverified(
                        f'{path} rows {start}-{stop} unreadable: {type(exc).__name__}: {exc}'
                    ) from None
                if not same:
                    raise Unverified(f'{path}: rows {start}-{stop} differ from the original')


def holds(path: str, nodes: dict[str, int]) -> str | None:
    """Why the day file ``path`` does not hold ``nodes`` readably (each leaf at least that long), or None."""
    try:
        h5 = open_h5(path, 'r')
    except DayFileDamaged as exc:
        return f'it does not open: {exc}'
    with h5:
        for node_path in _parents_first(nodes):
            length = nodes[node_path]
            try:
                node = h5.get_node(node_path)
                if (length == GROUP) != isinstance(node, tables.Group):
                    return f'{node_path} is not the kind of node known'
                if length == GROUP:
                    continue
                if int(node.nrows) < length:
                    return f'{node_path} has {node.nrows} rows, not {length}'
                for start, stop in _chunks(length):
                    node.read(start, stop)
            except OSError:
                raise
            except Exception as exc:
                return f'{node_path} cannot be read: {type(exc).__name__}: {exc}'
    return None


def _copy_failed(data_dir: DataDir, path: str, nodes: dict[str, int], why: str) -> Exception:
    """What a copy that failed (``why``) says: the storage's fault, or the original's (Unverified).

    HDF5 does not report every write the file system refuses: on a full disk
    a copy can come out short and close without an error. So a failed copy
    is the storage's when the disk is full now (the copy still takes its
    space) or when the original holds every node it must, readably; then it
    is waited out and tried again, and never marks the day damaged.
    """
    name = os.path.basename(path)
    free = data_dir.free_bytes(os.path.dirname(path))
    if free < faults.RESERVE:
        return faults.DiskFull(f'disk full: {free // 2**20} MiB free, a copy of {name} failed: {why}')
    problem = holds(path, nodes)
    if problem is None:
        return faults.StorageFault(
            f'a copy of {name} failed although {name} holds all it must ({free // 2**20} MiB free): {why}'
        )
    return Unverified(f'{why} ({name}: {problem})')


def rewrite(data_dir: DataDir, path: str, nodes: dict[str, int]) -> None:
    """Replace the day file ``path`` by a verified copy holding ``nodes`` (each leaf cut to its length).

    Unverified (the original untouched) when the original does not hold
    what the copy must; faults.DiskFull when there is no room for the copy,
    or a faults.StorageFault when writing it failed: those are waited out.
    """
    faults.need_space(data_dir, os.path.getsize(path), f'a copy of {os.path.basename(path)}')
    copy_path = data_dir.beside(path, 'rollback')
    try:
        try:
            cut_copy(path, copy_path, nodes)
            verify(path, copy_path, nodes)
        except (OSError, DayFileDamaged):
            raise  # the disk, or an original that does not open: as they are
        except Unverified as exc:
            raise _copy_failed(data_dir, path, nodes, str(exc)) from None
        except Exception as exc:  # HDF5 failing as it writes or closes the copy
            raise _copy_failed(data_dir, path, nodes, f'{type(exc).__name__}: {exc}') from None
        durable.fsync_file(copy_path)
    except BaseException:
        if os.path.exists(copy_path):
            os.unlink(copy_path)
        raise
    durable.move(copy_path, path)
