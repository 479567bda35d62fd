"""The station list: ``number,cluster,password`` per line, no header."""

from __future__ import annotations

from typing import NamedTuple


class Station(NamedTuple):
    number: int
    cluster: str
    password: str


def parse(text: str) -> tuple[dict[int, Station], list[tuple[int, str]]]:
    """Parse the list; return ({number: Station}, [(line number, problem)]).

    A malformed line is reported and skipped; the others still count.
    """
    stations, problems = {}, []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(',')
        if len(parts) != 3:
            problems.append((lineno, f'expected number,cluster,password; got {len(parts)} fields'))
            continue
        number, cluster, password = parts[0].strip(), parts[1].strip(), parts[2]
        if not number.isdigit():
            problems.append((lineno, f'station number {number!r} is not a number'))
            continue
        if not cluster:
            problems.append((lineno, 'empty cluster name'))
            continue
        if int(number) in stations:
            problems.append((lineno, f'station {int(number)} listed again; the first line counts'))
            continue
        stations[int(number)] = Station(int(number), cluster, password)
    return stations, problems


def read(path: str) -> tuple[dict[int, Station], list[tuple[int, str]]]:
    """Read and parse the list at ``path`` (OSError if unreadable)."""
    with open(path, encoding='utf-8', errors='surrogateescape') as f:
        return parse(f.read())
