"""Charts drawn once, as SVG, for the page and the PDF alike: each with a text alternative
(``<title>`` and ``<desc>``, and the page may add a table of the same numbers)."""
from __future__ import annotations

from collections.abc import Sequence
from itertools import count
from math import isfinite

from markupsafe import Markup, escape

_ids = count(1)


def line_chart(xs: Sequence[float], series: Sequence[tuple[str, Sequence[float]]], *,
               title: str, description: str, x_label: str, y_label: str,
               marks: Sequence[tuple[float, str]] = (), width: int = 520,
               height: int = 260) -> Markup:
    """Lines of ``series`` (label, ys) over ``xs``, with vertical ``marks`` (x, label)."""
    n = next(_ids)
    left, right, top, bottom = 48, 12, 14, 40
    pw, ph = width - left - right, height - top - bottom
    values = [y for _, ys in series for y in ys if isfinite(y)]
    y_max = max(values + [1e-9]) * 1.1
    x0, x1 = min(xs), max(xs)

    def px(x: float) -> float:
        return left + (x - x0) / ((x1 - x0) or 1) * pw

    def py(y: float) -> float:
        return top + ph - (y / y_max) * ph

    parts = [(f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
             f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
             f'aria-labelledby="chart-{n}-title chart-{n}-desc">'),
             f'<title id="chart-{n}-title">{escape(title)}</title>',
             f'<desc id="chart-{n}-desc">{escape(description)}</desc>',
             (f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" '
             'stroke="currentColor"/>'),
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + ph}" stroke="currentColor"/>']
    for tick in range(int(x0), int(x1) + 1):
        parts.append(f'<text x="{px(tick):.1f}" y="{top + ph + 14}" font-size="11" '
                     f'text-anchor="middle" fill="currentColor">{tick}</text>')
    for k in range(5):
        y = y_max * k / 4
        parts.append(f'<text x="{left - 6}" y="{py(y) + 4:.1f}" font-size="11" '
                     f'text-anchor="end" fill="currentColor">{y:.1f}</text>')
    parts.append(f'<text x="{left + pw / 2:.1f}" y="{height - 6}" font-size="12" '
                 f'text-anchor="middle" fill="currentColor">{escape(x_label)}</text>')
    parts.append(f'<text x="12" y="{top + ph / 2:.1f}" font-size="12" text-anchor="middle" '
                 f'fill="currentColor" transform="rotate(-90 12 {top + ph / 2:.1f})">'
                 f'{escape(y_label)}</text>')
    for x, label in marks:
        parts.append(f'<line x1="{px(x):.1f}" y1="{top}" x2="{px(x):.1f}" y2="{top + ph}" '
                     'stroke="currentColor" stroke-dasharray="4 3"/>')
        parts.append(f'<text x="{px(x) + 4:.1f}" y="{top + 10}" font-size="11" '
                     f'fill="currentColor">{escape(label)}</text>')
    dashes = ("", ' stroke-dasharray="6 4"', ' stroke-dasharray="2 3"')
    for k, (label, ys) in enumerate(series):
        points = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in zip(xs, ys) if isfinite(y))
        parts.append(f'<polyline fill="none" stroke="currentColor" stroke-width="2"'
                     f'{dashes[k % 3]} points="{points}"><title>{escape(label)}</title>'
                     '</polyline>')
    parts.append("</svg>")
    return Markup("".join(parts))
