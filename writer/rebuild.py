"""``hisparc-datastore rebuild YYYY-MM-DD``: a day file made again from the archive.

Every node the ledger knows the day file has is filled, position by
position, from the archived spool files the ledger says those rows came from
(``replay``), and where the archive does not reach (rows older than the
archive, or stored by the previously deployed writer) from the readable rows
of the existing file. The result is written beside the day file, checked
(every known node at its known length, every row as planned), and only then
renamed over it; the old file stays beside it as
``YYYY_M_D.h5.before-rebuild-<UTC time>`` (publicdb's scan for ``*.h5`` does
not pick it up) until the operator removes it. The writer keeps off the day
meanwhile (the day's lock).

Every node the existing file can list is kept too, with all its readable
rows, where the ledger knows less (rows or stations the previously deployed
writer stored, or a day file only it wrote: one the ledger does not know at
all is made again from its readable rows alone).

A healthy day file rebuilt gives the same rows in the same order, with the
same event ids and blob indexes. When neither the archive nor the existing
file has some rows, or the file has a node the layout cannot hold,
``rebuild`` refuses and lists them; ``--accept-loss`` rebuilds what can be
(later rows move up, event ids and blob indexes are renumbered) and logs
exactly what was lost. Where the archive and a readable existing row
disagree it refuses too (``--trust-archive`` takes the archive's). While
``writer.journal`` names the day (a pass that wrote it is unfinished) it
refuses: the writer finishes or undoes that pass first.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import datetime
import logging
import os
from typing import Any

import numpy as np
import tables

from datastore import config as config_mod
from datastore import durable, ledger
from datastore.cli.common import Command, Failure, date, load_config, operator, operator_log
from datastore.datadir import WRITER_JOURNAL, DataDir
from datastore.eventtypes import EVENT_TYPES

from . import faults, journal, layout, replay
from .dayfile import GROUP, DayFileUnavailable, append_blobs, open_h5

log = logging.getLogger('writer.rebuild')

CODES = {event_type.table: code for code, event_type in EVENT_TYPES.items()}


@dataclasses.dataclass
class Piece:
    first: int
    data: Any  # structured array (table) or list of bytes (blobs)
    source: str  # 'archive' or 'file'

    def __len__(self) -> int:
        return len(self.data)


@dataclasses.dataclass
class Plan:
    """What the rebuilt day file will hold, and what it cannot."""

    day: str
    nodes: dict[str, int]
    titles: dict[str, str]
    pieces: dict[str, list[Piece]] = dataclasses.field(default_factory=dict)
    lost: dict[str, list[tuple[int, int]]] = dataclasses.field(default_factory=dict)
    dropped: list[tuple[str, int]] = dataclasses.field(default_factory=list)  # (why, rows) of nodes
    unreplayable: list[str] = dataclasses.field(default_factory=list)
    mismatches: list[str] = dataclasses.field(default_factory=list)
    archive_rows: int = 0
    file_rows: int = 0


class RebuildRefused(Exception):
    """The rebuild would lose or change rows, or cannot start now; the message says why."""


def settle(data_dir: DataDir, book: ledger.Ledger, day: str) -> None:
    """Finish or forget a rebuild of ``day`` that was killed around its swap."""
    if book.settle_rebuild(day, data_dir.day_file(*ledger.day_parts(day))):
        log.warning('finished the rebuild of %s that was interrupted after its swap', day)


# -- planning --------------------------------------------------------------------


def _rows(node: Any, start: int, stop: int) -> Any:
    data = node.read(start, stop)
    return data if isinstance(data, np.ndarray) else [bytes(b) for b in data]


def readable(node: Any, start: int, stop: int) -> tuple[list[Piece], list[tuple[int, int]]]:
    """The rows of ``node`` in [start, stop) that can be read, and the ranges that cannot."""
    try:
        return [Piece(start, _rows(node, start, stop), 'file')], []
    except Exception:  # an HDF5 error reading damaged chunks
        if stop - start == 1:
            return [], [(start, stop)]
    pieces, lost = [], []
    step = max(1, (stop - start + 15) // 16)
    for part in range(start, stop, step):
        more, gone = readable(node, part, min(part + step, stop))
        pieces += more
        lost += gone
    return pieces, lost


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, stop in sorted(ranges):
        if merged and merged[-1][1] == start:
            merged[-1] = (merged[-1][0], stop)
        else:
            merged.append((start, stop))
    return merged


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and a.tobytes() == b.tobytes()
    return list(a) == list(b)


def plan(config: config_mod.Config, data_dir: DataDir, book: ledger.Ledger, day: str) -> Plan:
    """Where every row of ``day``'s file will come from."""
    known = book.nodes(day)
    path = data_dir.day_file(*ledger.day_parts(day))
    old = None
    if os.path.exists(path):
        try:
            old = open_h5(path, 'r')
        except DayFileUnavailable as exc:
            log.warning('the existing day file does not open (%s): the archive is all there is', exc)
    try:
        found, unlisted = listed(old) if old is not None else ({}, [])
        if not known and not found:
            raise Failure(
                f'the ledger knows nothing of day {day} and '
                + ('its day file has no readable nodes' if os.path.exists(path) else 'there is no day file')
                + ': there is nothing to rebuild it from'
            )
        the_plan = Plan(day, {}, {})
        the_plan.nodes = _nodes(the_plan, known, found)
        the_plan.dropped += [(f'{where}: cannot be read', 0) for where in unlisted]
        the_plan.titles = dict.fromkeys(the_plan.nodes, '')
        the_plan.titles.update({node: _title(found[node]) for node in the_plan.nodes if node in found})
        archived = _archived(config, book, the_plan)
        for node, length in the_plan.nodes.items():
            if length != GROUP:
                _plan_leaf(the_plan, node, length, archived[node], old)
    finally:
        if old is not None:
            old.close()
    return the_plan


def listed(h5: tables.File) -> tuple[dict[str, Any], list[str]]:
    """{path: node} of every node of ``h5`` that can be listed, and the names that cannot be opened."""
    found: dict[str, Any] = {}
    unlisted: list[str] = []
    groups = [h5.root]
    while groups:
        group = groups.pop()
        try:
            names = sorted(group._v_children)
        except Exception as exc:  # an HDF5 error listing a damaged group
            unlisted.append(f'{group._v_pathname}: {type(exc).__name__}: {exc}')
            continue
        for name in names:
            where = f'{group._v_pathname.rstrip("/")}/{name}'
            try:
                node = group._f_get_child(name)
            except Exception as exc:
                unlisted.append(f'{where}: {type(exc).__name__}: {exc}')
                continue
            found[where] = node
            if isinstance(node, tables.Group):
                groups.append(node)
    return found, unlisted


def _title(node: Any) -> str:
    try:
        return str(node._v_title or '')
    except Exception:  # damaged attributes: the layout's title, where the archive gives one
        return ''


def _fits_layout(where: str, node: Any) -> bool:
    """Whether a leaf of the old file is one the rebuilt file can hold as it is."""
    name = where.rsplit('/', 1)[1]
    if name == layout.BLOBS:
        return isinstance(node, tables.VLArray) and isinstance(node.atom, tables.VLStringAtom)
    return name in CODES and isinstance(node, tables.Table) and node.dtype == layout.dtype(CODES[name])


def _nodes(the_plan: Plan, known: dict[str, int], found: dict[str, Any]) -> dict[str, int]:
    """Every node the rebuilt file will have: those the ledger knows, and those the old file adds.

    A leaf the old file holds longer than the ledger knows keeps its rows;
    a node the rebuilt file cannot hold is noted in ``dropped``.
    """
    nodes = dict(known)
    for where in sorted(found, key=lambda n: (n.count('/'), n)):
        node = found[where]
        is_group = isinstance(node, tables.Group)
        rows = 0 if is_group else int(node.nrows)
        parent = where.rsplit('/', 1)[0]
        if parent and nodes.get(parent) != GROUP:
            the_plan.dropped.append((f'{where}: under {parent}, which is no group of the rebuilt file', rows))
        elif where in known:
            if (known[where] == GROUP) != is_group:
                kind = 'a group' if is_group else f'{type(node).__name__} of {rows} rows'
                the_plan.dropped.append((f'{where}: {kind} in the file, not what the ledger knows', rows))
            elif not is_group and rows > known[where]:
                nodes[where] = rows  # rows the ledger does not know of: readable rows of the file
        elif is_group:
            nodes[where] = GROUP
        elif _fits_layout(where, node):
            nodes[where] = rows
        else:
            the_plan.dropped.append(
                (f'{where}: {type(node).__name__} of {rows} rows, not of the layout', rows)
            )
    return nodes


def _archived(
    config: config_mod.Config, book: ledger.Ledger, the_plan: Plan
) -> dict[str, list[replay.Segment]]:
    """The rows of the day made again from the archive, per node."""
    archived: dict[str, list[replay.Segment]] = collections.defaultdict(list)
    for entry in book.entries_of_day(the_plan.day):
        try:
            segments = replay.replay(entry, the_plan.day, config.rule)
        except replay.NotReplayable as exc:
            the_plan.unreplayable.append(str(exc))
            continue
        for segment in segments:
            archived[segment.node].append(segment)
        station = layout.station_path(entry.cluster, entry.station)
        for group, title in (
            (layout.ROOT, layout.ROOT_TITLE),
            (station.rsplit('/', 1)[0], layout.cluster_group(entry.cluster)[1]),
            (station, layout.station_group(entry.station)[1]),
        ):
            if group in the_plan.titles and not the_plan.titles[group]:
                the_plan.titles[group] = title
    return archived


def _plan_leaf(the_plan: Plan, node: str, length: int, archived: list[replay.Segment], old: Any) -> None:
    pieces: list[Piece] = []
    covered = 0
    old_node = None
    if old is not None:
        try:
            old_node = old.get_node(node)
        except (tables.NoSuchNodeError, tables.HDF5ExtError, ValueError):
            old_node = None
    old_length = int(old_node.nrows) if old_node is not None else 0
    lost: list[tuple[int, int]] = []

    def from_file(start: int, stop: int) -> None:
        if start >= stop:
            return
        usable = min(stop, old_length) if old_node is not None else start
        if usable > start:
            more, gone = readable(old_node, start, usable)
            pieces.extend(more)
            lost.extend(gone)
        if usable < stop:
            lost.append((max(start, usable), stop))

    for segment in sorted(archived, key=lambda s: s.first):
        if segment.first < covered or segment.first + len(segment.data) > length:
            the_plan.mismatches.append(f'{node}: archived rows at {segment.first} overlap or overrun')
            continue
        from_file(covered, segment.first)
        pieces.append(Piece(segment.first, segment.data, 'archive'))
        covered = segment.first + len(segment.data)
        if old_node is not None and covered <= old_length:
            try:
                stored = _rows(old_node, segment.first, covered)
            except Exception:  # noqa: S112 (unreadable there: the archive's rows are all we have)
                continue
            if not _same(stored, segment.data):
                the_plan.mismatches.append(f'{node}: rows {segment.first}-{covered} differ from the archive')
    from_file(covered, length)
    pieces.sort(key=lambda p: p.first)
    the_plan.pieces[node] = pieces
    the_plan.archive_rows += sum(len(p) for p in pieces if p.source == 'archive')
    the_plan.file_rows += sum(len(p) for p in pieces if p.source == 'file')
    if lost:
        the_plan.lost[node] = _merge(lost)


# -- writing -------------------------------------------------------------------


def positions(the_plan: Plan) -> dict[str, np.ndarray]:
    """For every leaf: old row -> its row in the rebuilt file (-1: lost). Call before ``renumbered``."""
    maps = {}
    for node, length in the_plan.nodes.items():
        if length == GROUP:
            continue
        where = np.full(length, -1, dtype=np.int64)
        new = 0
        for piece in the_plan.pieces.get(node, []):
            where[piece.first : piece.first + len(piece)] = np.arange(new, new + len(piece))
            new += len(piece)
        maps[node] = where
    return maps


def moved_segments(
    book: ledger.Ledger, day: str, maps: dict[str, np.ndarray]
) -> list[tuple[str, str, int, int]]:
    """Every (spool, node, first, count) the ledger records in ``day``, at the rows they move to."""
    moved = []
    for entry in book.entries_of_day(day):
        for seg_day, node, first, count in entry.segments:
            if seg_day != day:
                continue
            rows = maps[node][first : first + count] if node in maps else np.array([], dtype=np.int64)
            kept = rows[rows >= 0]
            moved.append((entry.spool, node, int(kept[0]) if len(kept) else 0, len(kept)))
    return moved


def renumbered(the_plan: Plan, maps: dict[str, np.ndarray]) -> dict[str, int]:
    """With rows lost: drop them, renumber event ids, point blob cells at the moved blobs."""
    lengths = {}
    blob_maps = {
        node.rsplit('/', 1)[0]: where for node, where in maps.items() if node.endswith('/' + layout.BLOBS)
    }
    for node, length in the_plan.nodes.items():
        if length == GROUP:
            lengths[node] = GROUP
            continue
        new = 0
        for piece in the_plan.pieces.get(node, []):
            if isinstance(piece.data, np.ndarray):
                piece.data = piece.data.copy()
                piece.data['event_id'] = np.arange(new + 1, new + 1 + len(piece))
                blob_map = blob_maps.get(node.rsplit('/', 1)[0])
                code = CODES.get(node.rsplit('/', 1)[1])
                for column in (c.name for c in EVENT_TYPES[code].columns if c.blob) if code else ():
                    cells = piece.data[column]
                    mapped = (
                        np.where(cells >= 0, blob_map[np.clip(cells, 0, len(blob_map) - 1)], -1)
                        if blob_map is not None and len(blob_map)
                        else np.full_like(cells, -1)
                    )
                    piece.data[column] = mapped
            piece.first = new
            new += len(piece)
        lengths[node] = new
    return lengths


def write(the_plan: Plan, path: str, lengths: dict[str, int]) -> None:
    with tables.open_file(path, 'w') as h5:
        for node in sorted(lengths, key=lambda n: (n.count('/'), n)):
            parent, name = node.rsplit('/', 1)
            parent = parent or '/'
            if lengths[node] == GROUP:
                h5.create_group(parent, name, the_plan.titles.get(node, ''))
            elif name == layout.BLOBS:
                blobs = h5.create_vlarray(parent, name, tables.VLStringAtom(), title=layout.BLOBS_TITLE)
                for piece in the_plan.pieces.get(node, []):
                    append_blobs(blobs, piece.data)
            else:
                code = CODES[name]
                table = h5.create_table(parent, name, layout.description(code), title=EVENT_TYPES[code].title)
                for piece in the_plan.pieces.get(node, []):
                    table.append(piece.data)


def verify(the_plan: Plan, path: str, lengths: dict[str, int]) -> None:
    with open_h5(path, 'r') as h5:
        have = {
            n._v_pathname: GROUP if isinstance(n, tables.Group) else int(n.nrows)
            for n in h5.walk_nodes('/')
            if n is not h5.root
        }
        if have != lengths:
            raise RebuildRefused(
                f'the rebuilt file does not hold the planned nodes: {sorted(set(have) ^ set(lengths))[:5]}'
            )
        for node, pieces in the_plan.pieces.items():
            leaf = h5.get_node(node)
            for piece in pieces:
                if not _same(_rows(leaf, piece.first, piece.first + len(piece)), piece.data):
                    raise RebuildRefused(
                        f'the rebuilt file differs from the plan at {node} row {piece.first}'
                    )


def rebuild(
    config: config_mod.Config,
    day: str,
    accept_loss: bool = False,
    trust_archive: bool = False,
    say: Any = print,
) -> str:
    """Rebuild ``day``'s file; return the name the old one is kept under (or '' if there was none)."""
    data_dir = DataDir(config.data_dir, config.archive_dir or None)
    book = ledger.Ledger(data_dir)
    path = data_dir.day_file(*ledger.day_parts(day))
    with data_dir.day_lock(day, wait=True):
        unfinished = journal.read(data_dir)
        if unfinished is not None and day in unfinished.get('days', {}):
            # undoing that pass cuts the file back to the node map it journaled, which a
            # rebuild may have changed: the writer finishes or undoes it first
            raise RebuildRefused(
                f'pass {unfinished.get("pass")} of the writer wrote {day} and is unfinished '
                f'({data_dir.path(WRITER_JOURNAL)} names it): start the writer, which finishes or '
                'undoes it, then rebuild'
            )
        settle(data_dir, book, day)  # a rebuild killed before it told the ledger
        the_plan = plan(config, data_dir, book, day)
        lost = sum(stop - start for ranges in the_plan.lost.values() for start, stop in ranges)
        lost += sum(rows for _, rows in the_plan.dropped)
        say(
            f'day {day}: {the_plan.archive_rows} rows from the archive, {the_plan.file_rows} from the '
            f'existing file, {lost} that neither has'
        )
        for why in the_plan.unreplayable:
            say(f'  not usable: {why}')
        if the_plan.mismatches and not trust_archive:
            raise RebuildRefused(
                'the archive and the existing file disagree (--trust-archive takes the '
                'archive):\n  ' + '\n  '.join(the_plan.mismatches[:20])
            )
        lengths = dict(the_plan.nodes)
        stored = None
        if lost or the_plan.dropped:
            ranges = [
                f'{node} rows {start}-{stop}'
                for node, spans in sorted(the_plan.lost.items())
                for start, stop in spans
            ] + [why for why, _ in the_plan.dropped]
            if not accept_loss:
                raise RebuildRefused(
                    'these rows are in neither the archive nor the readable file, or cannot be '
                    'kept (--accept-loss rebuilds without them):\n  ' + '\n  '.join(ranges)
                )
            log.error('rebuild of %s loses %d rows: %s', day, lost, '; '.join(ranges))
            if the_plan.lost:  # rows gone from within nodes: the later ones move up (a whole node: none)
                maps = positions(the_plan)
                stored = moved_segments(book, day, maps)
                lengths = renumbered(the_plan, maps)
        faults.need_space(
            data_dir,
            the_plan.archive_rows * 2048 + (os.path.getsize(path) if os.path.exists(path) else 0),
            f'rebuilding {day}',
        )
        new = data_dir.beside(path, 'rebuild')
        durable.makedirs(os.path.dirname(path), mode=0o755)
        try:
            write(the_plan, new, lengths)
            verify(the_plan, new, lengths)
            durable.fsync_file(new)
        except BaseException:
            if os.path.exists(new):
                os.unlink(new)
            raise
        kept = ''
        if os.path.exists(path):
            stamp = datetime.datetime.now(datetime.timezone.utc).strftime('%Y%m%dT%H%M%SZ')
            kept = data_dir.keep_aside(path, f'before-rebuild-{stamp}')
        # the ledger learns what it will say first; whoever next looks at the day finishes it
        book.plan_rebuild(day, os.stat(new).st_ino, lengths, stored)
        durable.move(new, path)
        book.settle_rebuild(day, path)
    log.warning(
        'rebuilt day file %s (%d rows from the archive, %d from the old file, %d lost)%s',
        path,
        the_plan.archive_rows,
        the_plan.file_rows,
        lost,
        f'; the old file is kept as {kept}' if kept else '',
    )
    return kept


# -- the command ---------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    day = ledger.day_key(args.day.year, args.day.month, args.day.day)
    flags = [
        flag
        for flag, on in (('--accept-loss', args.accept_loss), ('--trust-archive', args.trust_archive))
        if on
    ]
    action = operator_log(config, 'rebuild')
    action.info('rebuild %s asked for by %s', ' '.join([day, *flags]), operator())
    try:
        kept = rebuild(config, day, args.accept_loss, args.trust_archive)
    except RebuildRefused as exc:
        action.warning('%s not rebuilt: %s', day, exc)
        raise Failure(f'{day} not rebuilt, the day file is as it was: {exc}') from None
    except faults.StorageFault as exc:
        action.warning('%s not rebuilt: %s', day, exc)
        raise Failure(f'{day} not rebuilt: {exc}') from None
    action.info('%s rebuilt; the old file is kept as %s', day, kept)
    print(f'{day} rebuilt' + (f'; the old file is kept as {kept} (remove it when satisfied)' if kept else ''))
    return 0


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('day', type=date, help='the UTC day of the day file (YYYY-MM-DD)')
    parser.add_argument(
        '--accept-loss',
        action='store_true',
        help='rebuild without the rows neither the archive nor the file has; logs them',
    )
    parser.add_argument(
        '--trust-archive',
        action='store_true',
        help='where the archive and a readable row of the file disagree, take the archive',
    )


COMMANDS = (
    Command(
        'rebuild',
        "regenerate a day file from the archive (and the old file's readable rows), "
        'verify it, and swap it in; the old file is kept beside it',
        run,
        arguments,
    ),
)
