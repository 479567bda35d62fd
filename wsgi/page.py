"""The status page for people (``/hisparc/status`` in a browser).

One self-contained HTML page: the health verdict first, then the queue,
held files, the writer, damaged day files and the last audit, a plot of
events stored per hour over the last day (inline SVG, drawn here), and every
station with its last upload, last stored event and lag. No scripts, fonts
or images from elsewhere; it fits a phone's width. It reloads itself every
minute, for a screen on a wall.
"""

from __future__ import annotations

import html
from typing import Any

from datastore.datadir import FAILED, PARTIAL, SUSPICIOUS
from datastore.readable import ago, relative, utc

SILENT_AFTER = 3600.0  # seconds without an upload before a station is flagged silent
HOURS = 24
REFRESH = 60  # seconds
LINKS = '<a href="?format=json">JSON</a> · <a href="metrics">metrics</a> · <a href="health">health</a>'

STYLE = """
body { font: 16px/1.4 system-ui, sans-serif; margin: 0 auto; max-width: 60rem; padding: 0 1rem 2rem;
       color: #1b1b1b; background: #fff; }
h1 { font-size: 1.3rem; margin: 1rem 0 0.5rem; }
h2 { font-size: 1.1rem; margin: 1.5rem 0 0.5rem; }
.verdict { padding: 0.75rem 1rem; border-radius: 0.4rem; font-weight: 600; }
.verdict.well { background: #dff3e4; color: #0b5a22; }
.verdict.unwell { background: #fbe0df; color: #8a1410; }
.verdict ul { margin: 0.5rem 0 0; padding-left: 1.2rem; font-weight: 400; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.25rem 1rem; margin: 0; }
dt { color: #555; }
dd { margin: 0; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 0.3rem 0.6rem 0.3rem 0; border-bottom: 1px solid #ddd;
         white-space: nowrap; vertical-align: top; }
td.number { text-align: right; }
small { color: #555; }
.bad { color: #8a1410; font-weight: 600; }
tr.silent td { background: #fff4d6; }
.flag { font-size: 0.8rem; background: #e8a400; color: #000; border-radius: 0.3rem; padding: 0 0.3rem; }
svg { width: 100%; max-width: 40rem; height: auto; display: block; }
svg .bar { fill: #2a6fb0; }
svg text { font: 14px system-ui, sans-serif; fill: #555; }
footer { margin-top: 2rem; color: #555; font-size: 0.85rem; }
"""


def render(figures: dict[str, Any], reasons: list[str]) -> str:
    """The page for ``figures`` (``status.gather``) and the health ``reasons`` (empty: well)."""
    now = figures['time']
    title = 'HiSPARC datastore: ' + ('well' if not reasons else 'UNWELL')
    parts = [
        '<!doctype html>',
        '<html lang="en">',
        '<head>',
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta http-equiv="refresh" content="{REFRESH}">',
        '<link rel="icon" href="data:,">',  # no request for /favicon.ico
        f'<title>{title}</title>',
        f'<style>{STYLE}</style>',
        '</head>',
        '<body>',
        '<h1>HiSPARC datastore</h1>',
        _verdict(reasons),
        '<h2>Queue and writer</h2>',
        _overview(figures, now),
        '<h2>Events stored per hour, last day (UTC)</h2>',
        _plot(figures['stored_per_hour'], now),
        _stations(figures['stations'], now),
        f'<footer>{utc(now)} UTC · {_e(figures["data_dir"])} · {LINKS}</footer>',
        '</body>',
        '</html>',
    ]
    return '\n'.join(parts) + '\n'


def _e(value: object) -> str:
    return html.escape(str(value))


def _verdict(reasons: list[str]) -> str:
    if not reasons:
        return '<div class="verdict well" id="verdict">Healthy: taking uploads and storing them.</div>'
    items = ''.join(f'<li>{_e(reason)}</li>' for reason in reasons)
    return f'<div class="verdict unwell" id="verdict">Unwell:<ul>{items}</ul></div>'


def _overview(figures: dict[str, Any], now: float) -> str:
    queue, folders, writer = figures['queue'], figures['folders'], figures['writer']
    rows = [
        (
            'Queue',
            f'{queue["files"]} file(s) in incoming/'
            + (f', the oldest waiting {ago(queue["oldest_age"])}' if queue['files'] else ''),
        ),
        (
            'Held',
            ', '.join(
                f'<span class="bad">{folders[name]} in {name}/</span>'
                if folders[name] and name == FAILED
                else f'{folders[name]} in {name}/'
                for name in (SUSPICIOUS, FAILED, PARTIAL)
            ),
        ),
        ('Writer', _writer(writer, now)),
    ]
    rows += [
        ('Damaged', f'<span class="bad">day file {_e(day)}: {_e(why)}</span>')
        for day, why in figures['damaged_days'].items()
    ]
    audit = figures['audit']
    if audit:
        rows.append(
            (
                'Last audit',
                (
                    f'{relative(audit["time"], now)}: '
                    f'{audit["unaccounted"]} of {audit["batches"]} batch(es) unaccounted for'
                ),
            )
        )
    return '<dl>' + ''.join(f'<dt>{name}</dt><dd>{text}</dd>' for name, text in rows) + '</dl>'


def _writer(writer: dict[str, Any], now: float) -> str:
    if writer['running']:
        state = _e(writer['state']) + (f' ({_e(writer["reason"])})' if writer['reason'] else '')
        text = f'running, {state}; {writer["events_stored"] or 0} events stored since it started'
    elif writer['updated'] is None:
        text = '<span class="bad">not running</span> (it never reported)'
    else:
        text = f'<span class="bad">not running</span> (last report {relative(writer["updated"], now)})'
    if writer['paused']:
        since = writer.get('paused_since')
        text += '; paused' + (f' {relative(since, now)}' if since is not None else '')
    return text


def _plot(per_hour: dict[Any, int], now: float) -> str:
    """Bars of the events stored in each of the last ``HOURS`` hours, the current one last."""
    current = int(now // 3600 * 3600)
    hours = [current - 3600 * i for i in range(HOURS - 1, -1, -1)]
    counts = [int(per_hour.get(hour, per_hour.get(str(hour), 0))) for hour in hours]
    top = max(counts)
    width, height, left, bottom, step = 520, 220, 64, 24, 19
    plot_height = height - bottom - 8
    bars = []
    for i, (hour, count) in enumerate(zip(hours, counts)):
        bar = 0 if not top else round(plot_height * count / top, 1)
        x = left + i * step
        label = f'{utc(hour)[11:16]} UTC: {count} events'
        bars.append(
            f'<rect class="bar" x="{x + 2}" y="{8 + plot_height - bar}" width="{step - 4}" height="{bar}">'
            f'<title>{label}</title></rect>'
        )
        if i % 6 == 0 or i == HOURS - 1:  # the last label ends at the edge
            place = (
                f'x="{width}" text-anchor="end"'
                if i == HOURS - 1
                else f'x="{x + step / 2}" text-anchor="middle"'
            )
            bars.append(f'<text {place} y="{height - 6}">{utc(hour)[11:16]}</text>')
    scale = (
        f'<text x="{left - 6}" y="16" text-anchor="end">{top}</text>'
        f'<text x="{left - 6}" y="{8 + plot_height}" text-anchor="end">0</text>'
        f'<line x1="{left}" y1="{8 + plot_height}" x2="{width}" y2="{8 + plot_height}" stroke="#999"/>'
    )
    summary = f'{sum(counts)} events stored in the last {HOURS} hours, at most {top} in an hour'
    return (
        f'<svg id="stored" viewBox="0 0 {width} {height}" role="img" aria-label="{summary}">'
        f'<title>{summary}</title>{scale}{"".join(bars)}</svg>'
        f'<p><small>{summary}.</small></p>'
    )


def _stations(stations: dict[str, dict[str, Any]], now: float) -> str:
    silent = [n for n, s in stations.items() if _silent(s, now)]
    heading = f'<h2>Stations: {len(stations)}, {len(silent)} silent</h2>'
    if not stations:
        return heading + '<p>No station has uploaded yet.</p>'
    rows = []
    for number, entry in stations.items():
        upload, stored = entry['last_upload'], entry['last_stored_event']
        lag = '-' if upload is None or stored is None else ago(max(0.0, upload - stored))
        flag = ' <span class="flag">silent</span>' if number in silent else ''
        rows.append(
            f'<tr class="{"silent" if flag else "station"}"><td class="number">{_e(number)}{flag}</td>'
            f'<td>{_time(upload, now)}</td><td>{_time(stored, now)}</td><td>{lag}</td></tr>'
        )
    return (
        heading
        + '<div class="scroll"><table id="stations"><thead><tr><th>Station</th><th>Last upload (UTC)</th>'
        '<th>Last stored event (UTC)</th><th>Lag</th></tr></thead><tbody>'
        + ''.join(rows)
        + '</tbody></table></div>'
        f'<p><small>Silent: no upload for over {SILENT_AFTER / 3600:g} hour(s). '
        'Lag: how far the last stored event trails the last upload.</small></p>'
    )


def _silent(entry: dict[str, Any], now: float) -> bool:
    upload = entry['last_upload']
    return upload is None or now - upload > SILENT_AFTER


def _time(timestamp: float | None, now: float) -> str:
    if timestamp is None:
        return '-'
    return f'{utc(timestamp)[:16]} <small>{relative(timestamp, now)}</small>'
