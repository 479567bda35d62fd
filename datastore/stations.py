"""The station list: ``number,cluster,password`` per line, no header.

A password is taken as it is (spaces too), but never an empty or blank one.

Station numbers and cluster names become HDF5 node and file system names
(``/hisparc/cluster_amsterdam/station_501``), so only those that can be one
name there are accepted, here and wherever a spool file carries them.
"""

from __future__ import annotations

from typing import NamedTuple

MAX_NUMBER_DIGITS = 9  # station numbers are at most 5 digits today
MAX_CLUSTER_LENGTH = 100


class Station(NamedTuple):
    number: int
    cluster: str
    password: str


def number_problem(text: str) -> str | None:
    """Why ``text`` is not a station number (ASCII digits, at most 9), or None."""
    if not (text.isascii() and text.isdigit()):
        return f'station number {text[:20]!r} is not a number'
    if len(text) > MAX_NUMBER_DIGITS:
        return f'station number {text[:20]}... has more than {MAX_NUMBER_DIGITS} digits'
    return None


def cluster_problem(name: str) -> str | None:
    """Why ``name`` cannot be a cluster (one HDF5 node name, one path part), or None."""
    if not name.strip():
        return 'empty cluster name'
    if name.strip() in ('.', '..'):
        return f'cluster name {name!r} is not a name'
    if len(name) > MAX_CLUSTER_LENGTH:
        return f'cluster name of {len(name)} characters (at most {MAX_CLUSTER_LENGTH})'
    if '/' in name or any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        return f'cluster name {name[:40]!r} holds a "/" or a control character'
    try:
        name.encode('utf-8')
    except UnicodeEncodeError:
        return f'cluster name {name[:40]!r} is not text (undecodable bytes)'
    return None


def password_problem(password: str) -> str | None:
    """Why ``password`` cannot be a station's, or None: anyone can post an empty or blank one."""
    if not password.strip():
        return 'empty password' if not password else 'blank password'
    return None


def parse(text: str) -> tuple[dict[int, Station], list[tuple[int, str]]]:
    """Parse the list; return ({number: Station}, [(line number, problem)]).

    A malformed line is reported and skipped; the others still count.
    """
    stations: dict[int, Station] = {}
    problems = []
    # Only a newline ends a line: a password may hold any other character (but a comma)
    for lineno, line in enumerate(text.split('\n'), 1):
        line = line.removesuffix('\r')  # noqa: PLW2901
        if not line.strip():
            continue
        parts = line.split(',')
        if len(parts) != 3:
            problems.append((lineno, f'expected number,cluster,password; got {len(parts)} fields'))
            continue
        number, cluster, password = parts[0].strip(), parts[1].strip(), parts[2]
        problem = number_problem(number) or cluster_problem(cluster) or password_problem(password)
        if problem:
            problems.append((lineno, problem))
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
