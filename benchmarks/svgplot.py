"""Line charts on log scales as standalone SVG: the benchmarks draw their own figures, no plotting library."""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence

WIDTH, HEIGHT, LEFT, BOTTOM, TOP, RIGHT = 460, 300, 56, 46, 24, 10
STYLE = (
    '.t{font-size:13px;font-weight:bold}.f{fill:none;stroke:#999}.g{stroke:#e4e4e4}'
    '.l{stroke:#c00;stroke-dasharray:4 3}.lt{fill:#c00}'
)
X_TICKS = (10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000)


def el(tag: str, text: str = '', **attrs: object) -> str:
    """One SVG element; ``class_`` is written ``class``."""
    written = ' '.join(f'{name.rstrip("_").replace("_", "-")}="{value}"' for name, value in attrs.items())
    return f'<{tag} {written}>{html.escape(text)}</{tag}>' if text else f'<{tag} {written}/>'


class Scale:
    """log10 of [low, high] onto [start, end] pixels."""

    def __init__(self, low: float, high: float, start: float, end: float) -> None:
        self.low, self.high, self.start, self.end = math.log10(low), math.log10(high), start, end

    def __call__(self, value: float) -> float:
        clipped = min(max(math.log10(max(value, 1e-12)), self.low), self.high)
        return round(self.start + (clipped - self.low) / (self.high - self.low) * (self.end - self.start), 1)


Series = tuple[str, str, Sequence[tuple[float, float]]]  # (label, colour, [(x, y)])


def panel(
    offset: float,
    title: str,
    series: Sequence[Series],
    x_range: tuple[float, float],
    y_range: tuple[float, float],
    limit: float,
    x_label: str,
) -> str:
    x = Scale(*x_range, offset + LEFT, offset + WIDTH - RIGHT)
    y = Scale(*y_range, HEIGHT - BOTTOM, TOP)
    out = [
        el('text', title, x=offset + WIDTH / 2, y=16, text_anchor='middle', class_='t'),
        el(
            'rect',
            x=offset + LEFT,
            y=TOP,
            width=WIDTH - LEFT - RIGHT,
            height=HEIGHT - BOTTOM - TOP,
            class_='f',
        ),
    ]
    for decade in range(math.floor(math.log10(y_range[0])), math.ceil(math.log10(y_range[1])) + 1):
        value = 10.0**decade
        if y_range[0] <= value <= y_range[1]:
            out.append(
                el('line', x1=offset + LEFT, x2=offset + WIDTH - RIGHT, y1=y(value), y2=y(value), class_='g')
            )
            out.append(el('text', f'{value:g}', x=offset + LEFT - 4, y=y(value) + 4, text_anchor='end'))
    out += [
        el('text', f'{tick:,}', x=x(tick), y=HEIGHT - BOTTOM + 16, text_anchor='middle')
        for tick in X_TICKS
        if x_range[0] <= tick <= x_range[1]
    ]
    out.append(el('text', x_label, x=offset + WIDTH / 2, y=HEIGHT - BOTTOM + 34, text_anchor='middle'))
    out.append(el('line', x1=offset + LEFT, x2=offset + WIDTH - RIGHT, y1=y(limit), y2=y(limit), class_='l'))
    out.append(
        el(
            'text',
            f'limit {limit:g}',
            x=offset + WIDTH - RIGHT - 4,
            y=y(limit) - 4,
            text_anchor='end',
            class_='lt',
        )
    )
    for _, colour, points in series:
        path = ' '.join(f'{x(px)},{y(py)}' for px, py in points)
        out.append(el('polyline', points=path, fill='none', stroke=colour, stroke_width=2))
        out += [el('circle', cx=x(px), cy=y(py), r=3, fill=colour) for px, py in points]
    return ''.join(out)


def figure(panels: Sequence[Callable[[float], str]], legend: Sequence[tuple[str, str]]) -> str:
    """Panels side by side (each drawn at its offset), a legend of (label, colour) below."""
    keys = ''.join(
        el('rect', x=20 + 230 * i, y=HEIGHT + 6, width=14, height=4, fill=colour)
        + el('text', label, x=40 + 230 * i, y=HEIGHT + 12)
        for i, (label, colour) in enumerate(legend)
    )
    body = ''.join(draw(WIDTH * i) for i, draw in enumerate(panels))
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH * len(panels)} {HEIGHT + 22}" '
        f'font-family="sans-serif" font-size="11"><style>{STYLE}</style>{body}{keys}</svg>\n'
    )
