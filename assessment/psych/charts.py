"""The workspace's pictures, one module: every chart is drawn here with matplotlib and returned as
SVG text plus its text alternative, so the same picture serves the web page and the PDF.

Charts draw numbers they are given (curves the engine computed, proportions the report counted);
no formula lives here. Output is deterministic: the Agg backend (no display), text kept as text
(``svg.fonttype = 'none'``, so it is searchable and small), a fixed ``svg.hashsalt`` for element
ids and no date in the metadata. Each SVG carries a ``<title>`` and ``<desc>`` and
``role="img"`` with ``aria-labelledby``, so it is labelled when inlined in a page.
"""
from __future__ import annotations

import base64
import functools
import hashlib
import html
import io
import multiprocessing
import os
import re
import threading
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")  # no display, ever: charts are drawn in web workers and the CLI

import matplotlib.backends.backend_svg
import matplotlib.font_manager
import matplotlib.ft2font
import matplotlib.patches
import matplotlib.pyplot as plt
import matplotlib.textpath
import matplotlib.ticker
import numpy as np
from markupsafe import Markup, escape

from microcred.workers import default_workers

STYLE = {
    "svg.fonttype": "none",
    "svg.hashsalt": "microcred",
    "font.size": 9,
    "font.family": "DejaVu Sans",
    "axes.spines.top": False,
    "axes.spines.right": False,
}
def _text_metrics(renderer, s, prop, ismath):
    """A label's width, height and descent, as :class:`RendererSVG` measures it, remembered by
    text and font: matplotlib's own cache is keyed by the renderer too, and every ``savefig``
    makes a new renderer, so each chart measured all of its labels again (a tenth of a chart's
    CPU). The SVG renderer's measure depends on the text, the font and the math flag only
    (its :class:`~matplotlib.textpath.TextToPath`); TeX is measured as before."""
    if ismath == "TeX":
        return _SVG_MEASURE(renderer, s, prop, ismath)
    # a generic family ("sans-serif") is resolved through the rc settings in force: in the key
    generic = tuple(tuple(matplotlib.rcParams[f"font.{f}"]) for f in prop.get_family()
                    if f in _GENERIC_FAMILIES)
    return _cached_text_metrics(s, prop.copy(), ismath, generic)


_GENERIC_FAMILIES = frozenset(("serif", "sans-serif", "cursive", "fantasy", "monospace"))


@functools.lru_cache(maxsize=4096)
def _cached_text_metrics(s, prop, ismath, _generic):
    return _TEXT_TO_PATH.get_text_width_height_descent(s, prop, ismath)


_SVG_MEASURE = matplotlib.backends.backend_svg.RendererSVG.get_text_width_height_descent
_TEXT_TO_PATH = matplotlib.textpath.TextToPath()
matplotlib.backends.backend_svg.RendererSVG.get_text_width_height_descent = _text_metrics

#: Colours with text contrast >= 4.5:1 on white, told apart by line style and marker too.
COLOURS = ("#1f4e99", "#b3261e", "#2e6b30", "#7a4a00", "#6a1b9a", "#00606b", "#4a4a4a")
LINESTYLES = ("-", "--", "-.", ":")
MARKERS = ("o", "s", "^", "D", "v", "P", "X")


@dataclass
class Chart:
    """One picture: the SVG text (with ``<title>``/``<desc>``) and its text alternative."""

    svg: str
    title: str
    desc: str

    @property
    def alt(self) -> str:
        return f"{self.title}. {self.desc}"

    @property
    def pdf_svg(self) -> str:
        """The same picture for WeasyPrint: every label anchored at its start (see
        :func:`anchored_at_start`)."""
        return anchored_at_start(self.svg)

    def img(self, css_class: str = "chart", *, pdf: bool = False) -> Markup:
        """The chart as an ``<img>`` of its SVG (a data URI: the page's CSP allows no inline
        style, which matplotlib's SVG uses) with its text alternative as ``alt``; ``pdf``: the
        SVG as WeasyPrint draws it cheapest (:attr:`pdf_svg`, the same picture)."""
        data = base64.b64encode((self.pdf_svg if pdf else self.svg).encode()).decode()
        return Markup('<img class="{}" src="data:image/svg+xml;base64,{}" alt="{}">').format(
            css_class, Markup(data), self.alt)


@dataclass
class PendingChart:
    """A chart not drawn yet: its :func:`draw_many` request, drawn where a PDF part is rendered
    (:func:`fill_pending`), so that drawing overlaps the layout of the other parts instead of
    preceding all of it. In a page it stands as markers (:meth:`img`, :attr:`title`) that
    :func:`fill_pending` replaces with the drawn chart's ``<img>`` and title."""

    number: int
    request: tuple[str, tuple, dict]

    @property
    def title(self) -> Markup:
        return Markup(f"@@chart {self.number} title@@")

    def img(self, css_class: str = "chart", *, pdf: bool = False) -> Markup:
        if not re.fullmatch(r"[\w-]+", css_class):
            raise ValueError(f"PendingChart.img: css_class {css_class!r} is not a class name")
        return Markup(f"@@chart {self.number} img {'pdf' if pdf else 'page'} {css_class}@@")


_PENDING_MARK = re.compile(r"@@chart (\d+) (?:title|img (pdf|page) ([\w-]+))@@")


def fill_pending(text: str, pending: Sequence[PendingChart]) -> str:
    """``text`` (HTML rendered with :class:`PendingChart` markers) with ``pending`` drawn here
    and each marker replaced by its chart's ``<img>`` or escaped title; a marker of a chart not
    in ``pending`` is an error (it would print as text)."""
    drawn = {p.number: _draw(p.request) for p in pending}

    def replace(m: re.Match) -> str:
        chart = drawn.get(int(m.group(1)))
        if chart is None:
            raise ValueError(f"fill_pending: chart {m.group(1)} was not given to draw")
        if m.group(2) is None:
            return str(escape(chart.title))
        return str(chart.img(m.group(3), pdf=m.group(2) == "pdf"))

    return _PENDING_MARK.sub(replace, text)


def _fmt(v: float | None, digits: int = 2) -> str:
    return "n/a" if v is None or not np.isfinite(v) else f"{v:.{digits}f}"


def _svg(fig, title: str, desc: str, *, keep: bool = False) -> Chart:
    buf = io.StringIO()
    with plt.rc_context(STYLE):  # the svg.* settings are read when saving
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    if not keep:
        plt.close(fig)
    text = buf.getvalue()
    text = text[text.index("<svg"):]  # drop the XML prolog and doctype: inlined in HTML
    text = _presentation_attributes(text)
    text = _round_coordinates(_slim(text))
    text = _BETWEEN_TAGS.sub("><", text)  # indentation is a text node per line to WeasyPrint
    # ids from the content, so a chart's SVG is the same every time it is drawn
    n = hashlib.sha1(text.encode()).hexdigest()[:10]
    tid, did = f"chart{n}-title", f"chart{n}-desc"
    text = re.sub(
        r"<svg ",
        f'<svg role="img" aria-labelledby="{tid} {did}" ',
        text, count=1,
    )
    head_end = text.index(">", text.index("<svg")) + 1
    text = (text[:head_end] + f'\n <title id="{tid}">{html.escape(title)}</title>'
            f'\n <desc id="{did}">{html.escape(desc)}</desc>' + text[head_end:])
    # ids must stay unique when many charts share a page
    text = re.sub(r'id="(?!chart[0-9a-f])([^"]+)"', rf'id="c{n}-\1"', text)
    text = re.sub(r'url\(#(?!chart[0-9a-f])([^)]+)\)', rf'url(#c{n}-\1)', text)
    text = re.sub(r'xlink:href="#(?!chart[0-9a-f])([^"]+)"', rf'xlink:href="#c{n}-\1"', text)
    return Chart(text, title, desc)


_BETWEEN_TAGS = re.compile(r">\s+<")
_LONG_FLOAT = re.compile(r"(-?\d+\.\d)\d+")
_KEEP_ONE = r"\1"
_GEOMETRY_ATTR = re.compile(r'\b(d|x|y|transform)="([^"]*)"')


def _round_coordinates(text: str) -> str:
    """Coordinates to a tenth of a point (matplotlib writes six decimals): a fifth of a pixel
    at 72 dpi, invisible on the page, and a third less SVG for WeasyPrint to parse. Truncation,
    not rounding, keeps it cheap; the error stays under 0.1 pt. Only geometry attributes are
    touched: tick labels and other text keep every digit."""
    def short(m: re.Match) -> str:
        return f'{m.group(1)}="{_LONG_FLOAT.sub(_KEEP_ONE, m.group(2))}"'

    return _GEOMETRY_ATTR.sub(short, text)


_GROUP_TAG = re.compile(r"<g\b[^>]*>|</g>")
_BARE_GROUP = re.compile(r'<g(?: id="[^"]*")?>')


def _slim(text: str) -> str:
    """Fewer SVG nodes for WeasyPrint, which walks every one of them (half of the PDF's time was
    in its SVG renderer): groups that carry nothing but an id (matplotlib wraps every tick, line
    and label in one or two; nothing refers to them) are unwrapped, the RDF metadata and the
    no-op ``rotate(-0 ...)`` of every label are dropped. What is drawn does not change."""
    text = re.sub(r"\s*<metadata>.*?</metadata>", "", text, count=1, flags=re.DOTALL)
    text = re.sub(r' transform="rotate\(-0 [^")]*\)"', "", text)
    out, stack, last = [], [], 0
    for m in _GROUP_TAG.finditer(text):
        tag = m.group()
        if tag == "</g>":
            drop = stack.pop()
        else:
            drop = _BARE_GROUP.fullmatch(tag) is not None
            stack.append(drop)
        out.append(text[last:m.start()])
        if not drop:
            out.append(tag)
        last = m.end()
    out.append(text[last:])
    return "".join(out)


_ANCHORED_TEXT = re.compile(
    r'<text font-size="([0-9.]+)px" font-family="([^"]*)" text-anchor="(middle|end)"'
    r' x="(-?[0-9.]+)"([^>]*)>([^<]*)</text>')


@functools.lru_cache(maxsize=1024)
def _advance(char: str, size: float, family: str) -> float:
    """One character's advance width in user units, unhinted (the font's own metrics)."""
    prop = matplotlib.font_manager.FontProperties(family=family, size=size)
    font = matplotlib.font_manager.get_font(matplotlib.font_manager.findfont(prop))
    font.set_size(size, 72)  # the SVG's user unit is the point: 72 per inch
    glyph = font.load_char(ord(char), flags=matplotlib.ft2font.LoadFlags.NO_HINTING)
    return glyph.linearHoriAdvance / 65536


def _text_width(text: str, size: float, family: str) -> float:
    """The width WeasyPrint gives an SVG label: it lays out and places each character on its
    own (no kerning), so the sum of the characters' advances."""
    return sum(_advance(c, size, family) for c in text)


def anchored_at_start(svg: str) -> str:
    """The chart with every centred or end-anchored label moved to start at the same place.

    WeasyPrint draws a ``text-anchor`` other than ``start`` through a PDF form XObject of its
    own per label (to measure, then shift it): ten per item chart, 4,000 objects in a 200-item
    report, which were two thirds of its size and nearly all of the time pypdf spent merging a
    report rendered in parts. The shift is computed here from the same font metrics matplotlib
    laid the chart out with (as WeasyPrint measures: see :func:`_text_width`), so the label
    lands where the anchor put it (rotated labels move
    along their own baseline: the rotation's centre stays). Only for the PDF, whose font is
    known: a browser may draw the page's copy with another font and keeps its anchors."""
    def start(m: re.Match) -> str:
        size, family, anchor, x, rest, text = m.groups()
        width = _text_width(html.unescape(text), float(size), family.strip("'\""))
        shift = width / 2 if anchor == "middle" else width
        return (f'<text font-size="{size}px" font-family="{family}" x="{float(x) - shift:.1f}"'
                f'{rest}>{text}</text>')

    return _ANCHORED_TEXT.sub(start, svg)


#: The proportion axis of the item charts, labelled "0", "0.5", "1" rather than "0.0"...: the
#: same values in fewer letters, and WeasyPrint lays out every letter of a chart's label on its own.
_PROPORTION_TICKS = ((0, 0.5, 1), ("0", "0.5", "1"))

#: One figure per per-item chart kind, drawn again for every item (creating a figure and its axes
#: is a third of a chart's time); one set per thread, as pyplot figures are not thread-safe.
_REUSED = threading.local()


_STYLE_ATTR = re.compile(r'style="([^"]*)"')


def _presentation_attributes(text: str) -> str:
    """Inline CSS (``style="fill: #fff"`` and matplotlib's one ``<style>`` element) as SVG
    presentation attributes (``fill="#fff"``): the site's Content-Security-Policy allows no
    inline style, so a page that inlines the SVG would otherwise draw it unstyled."""
    def attrs(match: re.Match) -> str:
        pairs = [p.split(":", 1) for p in match.group(1).split(";") if ":" in p]
        return " ".join(f'{k.strip()}="{v.strip()}"' for k, v in pairs)

    text = re.sub(r"\s*<defs>\s*<style[^>]*>[^<]*</style>\s*</defs>", "", text, count=1)
    text = re.sub(r"<style[^>]*>[^<]*</style>", "", text)
    text = text.replace("<svg ", '<svg stroke-linejoin="round" stroke-linecap="butt" ', 1)
    return _STYLE_ATTR.sub(attrs, text)


def _figure(width: float = 4.6, height: float = 2.8):
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(width, height), dpi=72)
        # transparent: the page is white already, and two fewer paths to draw
        fig.patch.set_visible(False)
        ax.patch.set_visible(False)
        # a fixed layout: tight_layout would draw every figure twice
        fig.subplots_adjust(left=0.6 / width, right=1 - 0.55 / width, bottom=0.45 / height,
                            top=1 - 0.15 / height)
    return fig, ax


def item_characteristic_curve(
    label: str,
    theta: Sequence[float],
    model_p: Sequence[float],
    observed_theta: Sequence[float] = (),
    observed_p: Sequence[float] = (),
    observed_n: Sequence[int] = (),
    *,
    model: str = "",
) -> Chart:
    """The model's ICC over the observed proportions correct of ability groups (points sized by
    the group's count)."""
    reused = getattr(_REUSED, "icc", None)
    if reused is None:
        with plt.rc_context(STYLE):
            fig, ax = _figure()
            line, = ax.plot([], [], color=COLOURS[0], lw=1.6)
            points = ax.scatter([], [], s=[], color=COLOURS[1], marker="s", zorder=3,
                                label="observed (ability groups)")
            ax.set_ylim(0, 1)
            ax.set_yticks(*_PROPORTION_TICKS)
            ax.xaxis.set_major_locator(matplotlib.ticker.MultipleLocator(2))
            ax.set_xlabel("ability (theta)")
            ax.set_ylabel("P(correct)")
        reused = _REUSED.icc = (fig, ax, line, points)
    fig, ax, line, points = reused
    theta_a = np.asarray(theta, float)
    line.set_data(theta_a, np.asarray(model_p, float))
    line.set_label(f"{model.upper() or 'model'} curve")
    handles = [line]
    xs = theta_a
    if len(observed_theta):
        sizes = 12 + 40 * np.asarray(observed_n, float) / max(max(observed_n), 1)
        points.set_offsets(np.column_stack([observed_theta, observed_p]))
        points.set_sizes(sizes)
        points.set_visible(True)
        handles.append(points)
        xs = np.concatenate([theta_a, np.asarray(observed_theta, float)])
    else:
        points.set_visible(False)
    lo, hi = float(np.min(xs)), float(np.max(xs))
    pad = 0.05 * (hi - lo) if hi > lo else 0.5  # matplotlib's default margins
    ax.set_xlim(lo - pad, hi + pad)
    with plt.rc_context(STYLE):
        ax.legend(handles=handles, loc="lower right", frameon=False, fontsize=7)
    groups = ", ".join(
        f"theta {t:.1f}: {p:.2f} of {n}" for t, p, n in zip(observed_theta, observed_p, observed_n)
    )
    desc = (f"Model curve rises from {_fmt(model_p[0])} at theta {theta[0]:.0f} to"
            f" {_fmt(model_p[-1])} at theta {theta[-1]:.0f}.")
    if groups:
        desc += f" Observed proportions correct by ability group: {groups}."
    return _svg(fig, f"Item characteristic curve of {label}", desc, keep=True)


def option_trace_lines(label: str, options: Sequence[tuple[str, bool, Sequence[float]]]) -> Chart:
    """Proportion choosing each option in each score quintile (1 = lowest); the key is drawn
    thick. ``options``: (option, is_key, five proportions)."""
    groups = np.arange(1, 6)
    reused = getattr(_REUSED, "trace", None)
    if reused is None:
        with plt.rc_context(STYLE):
            fig, ax = _figure()
            ax.set_xticks(groups, ["1 low", "2", "3", "4", "5 high"])
            ax.set_ylim(0, 1)
            ax.set_yticks(*_PROPORTION_TICKS)
            ax.set_xlim(0.8, 5.2)
            ax.set_xlabel("score quintile")
            ax.set_ylabel("proportion choosing")
        reused = _REUSED.trace = (fig, ax, [])
    fig, ax, lines = reused
    with plt.rc_context(STYLE):
        while len(lines) < len(options):
            i = len(lines)
            # no per-point markers: five points per line, told apart by colour and line style
            # (the key solid and thick), and 20 fewer SVG nodes per item for the PDF
            lines.append(ax.plot(groups, np.zeros(5), color=COLOURS[i % len(COLOURS)])[0])
        for i, ln in enumerate(lines):
            if i >= len(options):
                ln.set_visible(False)
                continue
            opt, is_key, props = options[i]
            ln.set_visible(True)
            ln.set_ydata(np.asarray(props, float))
            ln.set_linestyle(LINESTYLES[0] if is_key else LINESTYLES[1 + i % 3])
            ln.set_linewidth(2.4 if is_key else 1.2)
            ln.set_label(f"{opt} (key)" if is_key else opt)
        ax.legend(handles=lines[:len(options)], loc="upper left", frameon=False, fontsize=7,
                  ncol=2)
    desc = "; ".join(
        f"{opt}{' (key)' if is_key else ''}: " + ", ".join(_fmt(p) for p in props)
        for opt, is_key, props in options
    )
    return _svg(fig, f"Option trace lines of {label}",
                f"Proportion choosing each option, lowest to highest score quintile. {desc}.",
                keep=True)


def information_and_csem(
    theta: Sequence[float],
    information: Sequence[float],
    csem: Sequence[float],
    *,
    cut_theta: float | None = None,
    title: str = "Test information and conditional SEM",
) -> Chart:
    """Test information (left axis) and the conditional SEM of theta (right axis), the cut
    marked by a vertical line."""
    theta = np.asarray(theta, float)
    info = np.asarray(information, float)
    sem = np.asarray(csem, float)
    with plt.rc_context(STYLE):
        fig, ax = _figure(5.6, 3.0)
        ax.plot(theta, info, color=COLOURS[0], lw=1.8, label="information")
        ax.set_xlabel("ability (theta)")
        ax.set_ylabel("test information")
        right = ax.twinx()
        right.spines["right"].set_visible(True)
        shown = np.where(np.isfinite(sem) & (sem < 5), sem, np.nan)
        right.plot(theta, shown, color=COLOURS[1], lw=1.4, ls="--", label="CSEM")
        right.set_ylabel("conditional SEM")
        if cut_theta is not None and np.isfinite(cut_theta):
            ax.axvline(cut_theta, color=COLOURS[2], ls=":", lw=1.6)
            ax.annotate(f"cut {cut_theta:.2f}", (cut_theta, ax.get_ylim()[1] * 0.95),
                        xytext=(3, 0), textcoords="offset points", color=COLOURS[2], fontsize=8)
        lines = ax.get_lines()[:1] + right.get_lines()[:1]
        ax.legend(lines, [ln.get_label() for ln in lines], loc="upper left", frameon=False, fontsize=7)
    peak = int(np.argmax(info))
    desc = f"Information peaks at {info[peak]:.2f} at theta {theta[peak]:.2f}."
    if cut_theta is not None and np.isfinite(cut_theta):
        at = float(np.interp(cut_theta, theta, info))
        desc += (f" At the cut (theta {cut_theta:.2f}) information is {at:.2f}"
                 f" and the conditional SEM {1 / np.sqrt(at):.3f}.")
    return _svg(fig, title, desc)


def score_histogram(
    frequencies: dict[int, int], *, cut: float | None = None, max_score: int | None = None,
    title: str = "Score distribution",
) -> Chart:
    """Number of candidates at each raw score; the raw cut marked by a vertical line."""
    scores = sorted(frequencies)
    counts = [frequencies[s] for s in scores]
    with plt.rc_context(STYLE):
        fig, ax = _figure(5.6, 2.8)
        ax.bar(scores, counts, width=0.85, color=COLOURS[0])
        if cut is not None:
            ax.axvline(cut - 0.5, color=COLOURS[1], ls="--", lw=1.6)
            ax.annotate(f"cut {cut:g}", (cut - 0.5, max(counts or [1])), xytext=(3, -8),
                        textcoords="offset points", color=COLOURS[1], fontsize=8)
        if max_score is not None:
            ax.set_xlim(-0.8, max_score + 0.8)
        ax.set_xlabel("raw score")
        ax.set_ylabel("candidates")
    n = sum(counts)
    desc = f"{n} candidates, scores {scores[0]} to {scores[-1]}." if scores else "No scores."
    if cut is not None and n:
        passing = sum(c for s, c in zip(scores, counts) if s >= cut)
        desc += f" Cut at {cut:g}: {passing} of {n} at or above it."
    return _svg(fig, title, desc)


def hofstee_chart(
    scores: Sequence[float], fail_rates: Sequence[float], *, c_min: float, c_max: float,
    f_min: float, f_max: float, cut: float | None, max_score: float,
) -> Chart:
    """Hofstee's compromise: the observed fail rate at each raw cut, the panel's line from
    (c_min, f_max) to (c_max, f_min) inside its rectangle, and the cut where they meet.
    Fail rates are proportions."""
    x = np.asarray(scores, float)
    f = 100 * np.asarray(fail_rates, float)
    with plt.rc_context(STYLE):
        fig, ax = _figure(5.6, 3.2)
        ax.plot(x, f, color=COLOURS[0], lw=1.8, marker="o", ms=3, label="observed fail rate")
        ax.add_patch(matplotlib.patches.Rectangle(
            (c_min, 100 * f_min), c_max - c_min, 100 * (f_max - f_min), fill=False,
            ec=COLOURS[6], ls=":", lw=1.0))
        ax.plot([c_min, c_max], [100 * f_max, 100 * f_min], color=COLOURS[1], ls="--", lw=1.6,
                label="panel's line")
        if cut is not None and np.isfinite(cut):
            ax.axvline(cut, color=COLOURS[2], ls="-.", lw=1.4)
            ax.annotate(f"cut {cut:.2f}", (cut, 96), xytext=(3, 0), textcoords="offset points",
                        color=COLOURS[2], fontsize=8)
        ax.set_xlim(-0.5, max_score + 0.5)
        ax.set_ylim(0, 100)
        ax.set_xlabel("raw cut score")
        ax.set_ylabel("fail rate (%)")
        ax.legend(loc="lower right", frameon=False, fontsize=7)
    desc = (f"The panel accepts cuts from {c_min:.2f} to {c_max:.2f} and fail rates from"
            f" {100 * f_min:.0f}% to {100 * f_max:.0f}%. Observed fail rate by cut: "
            + ", ".join(f"{s:g}: {v:.0f}%" for s, v in zip(x, f)) + ".")
    if cut is not None and np.isfinite(cut):
        desc += f" The line meets the curve at a cut of {cut:.2f}."
    return _svg(fig, "Hofstee compromise", desc)


def beuk_chart(
    scores: Sequence[float], pass_rates: Sequence[float], *, panel_cuts: Sequence[float],
    panel_pass_rates: Sequence[float], mean_cut: float, mean_pass_rate: float, slope: float,
    cut: float | None, max_score: float,
) -> Chart:
    """Beuk's compromise: the observed pass rate at each raw cut, the panelists' judgments, the
    line through their means with slope SD(pass rates)/SD(cuts), and the cut where they meet.
    Pass rates are proportions."""
    x = np.asarray(scores, float)
    p = 100 * np.asarray(pass_rates, float)
    with plt.rc_context(STYLE):
        fig, ax = _figure(5.6, 3.2)
        ax.plot(x, p, color=COLOURS[0], lw=1.8, marker="o", ms=3, label="observed pass rate")
        ax.scatter(panel_cuts, 100 * np.asarray(panel_pass_rates, float), color=COLOURS[4],
                   marker="s", s=18, zorder=3, label="panelists' judgments")
        xs = np.array([0.0, max_score])
        ax.plot(xs, 100 * (mean_pass_rate + slope * (xs - mean_cut)), color=COLOURS[1], ls="--",
                lw=1.6, label="panel's line")
        if cut is not None and np.isfinite(cut):
            ax.axvline(cut, color=COLOURS[2], ls="-.", lw=1.4)
            ax.annotate(f"cut {cut:.2f}", (cut, 96), xytext=(3, 0), textcoords="offset points",
                        color=COLOURS[2], fontsize=8)
        ax.set_xlim(-0.5, max_score + 0.5)
        ax.set_ylim(0, 100)
        ax.set_xlabel("raw cut score")
        ax.set_ylabel("pass rate (%)")
        ax.legend(loc="lower left", frameon=False, fontsize=7)
    desc = (f"Panel mean cut {mean_cut:.2f} with mean expected pass rate"
            f" {100 * mean_pass_rate:.0f}%, line slope {100 * slope:.1f} points of pass rate per"
            " score point. Observed pass rate by cut: "
            + ", ".join(f"{s:g}: {v:.0f}%" for s, v in zip(x, p)) + ".")
    if cut is not None and np.isfinite(cut):
        desc += f" The line meets the curve at a cut of {cut:.2f}."
    return _svg(fig, "Beuk compromise", desc)


#: Charts drawn by :func:`draw_many`, by name (a request names the function, so it pickles).
DRAWABLE = ("item_characteristic_curve", "option_trace_lines", "information_and_csem",
            "score_histogram")
#: Fewer charts than this are drawn in this process: starting workers costs more than it saves.
POOL_FROM = 60


def _draw(request: tuple[str, tuple, dict]) -> Chart:
    name, args, kwargs = request
    if name not in DRAWABLE:
        raise ValueError(f"draw_many: {name!r} is not a chart of this module")
    return globals()[name](*args, **kwargs)


#: most processes the charts are drawn in by default
MAX_WORKERS = 4


def chart_workers(n_charts: int) -> int:
    """How many processes draw ``n_charts`` charts: ``MICROCRED_CHART_WORKERS``, by default one
    per idle CPU (:func:`microcred.workers.default_workers`, at most :data:`MAX_WORKERS`), from
    :data:`POOL_FROM` charts (fewer: in this process)."""
    if n_charts < POOL_FROM:
        return 1
    configured = os.environ.get("MICROCRED_CHART_WORKERS", "").strip()
    if not configured:
        return default_workers(MAX_WORKERS)
    try:
        workers = int(configured)
    except ValueError:
        raise ValueError(
            f"MICROCRED_CHART_WORKERS must be a whole number, not {configured!r}") from None
    return max(1, min(workers, os.cpu_count() or 1))


def _pool_context():
    context = multiprocessing.get_context("forkserver")
    # the server imports matplotlib once; each worker is forked from it ready to draw
    context.set_forkserver_preload([__name__])
    return context


def warm_pool(n_charts: int) -> None:
    """Start the pool's fork server now (it imports matplotlib in its own process) when
    :func:`draw_many` will use workers for ``n_charts`` charts: a caller that first computes
    for seconds on one CPU (the report's statistics) then finds the server ready. Returns at
    once; does nothing if the server cannot start (the charts are then drawn as before)."""
    if chart_workers(n_charts) < 2:
        return
    try:
        _pool_context()
        from multiprocessing import forkserver

        forkserver.ensure_running()
    except (OSError, ValueError):
        pass


def draw_many(requests: Sequence[tuple[str, tuple, dict]], workers: int | None = None
              ) -> list[Chart]:
    """Draw many charts, in order: ``requests`` are ``(function name, args, kwargs)``. With more
    than one worker they are drawn in a process pool (``forkserver``: no copy of a threaded web
    worker is forked); if the pool cannot start or breaks, they are drawn here instead. The
    pictures are the same either way (each chart's SVG depends on its input only)."""
    requests = list(requests)
    for name, _, _ in requests:
        if name not in DRAWABLE:
            raise ValueError(f"draw_many: {name!r} is not a chart of this module")
    workers = chart_workers(len(requests)) if workers is None else max(1, workers)
    workers = min(workers, len(requests))
    if workers > 1:
        try:
            with ProcessPoolExecutor(workers, mp_context=_pool_context()) as pool:
                return list(pool.map(_draw, requests,
                                     chunksize=max(1, len(requests) // (workers * 4))))
        except (OSError, BrokenProcessPool):
            pass
    return [_draw(r) for r in requests]


# ---------------------------------------------------------------- program reports


def category_bars(
    categories: Sequence[str], values: Sequence[float | None], *, title: str, xlabel: str,
    ylabel: str, unit: str = "",
) -> Chart:
    """One bar per category (a score band, a form, a group); a missing value (suppressed, or
    nothing to show) draws no bar and is said so in the text alternative."""
    shown = [0.0 if v is None else float(v) for v in values]
    with plt.rc_context(STYLE):
        fig, ax = _figure(5.6, 2.8)
        ax.bar(range(len(categories)), shown, width=0.8, color=COLOURS[0])
        ax.set_xticks(range(len(categories)), [str(c) for c in categories],
                      rotation=30 if len(categories) > 6 else 0, ha="right" if len(categories) > 6
                      else "center")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
    parts = [f"{c}: {'not shown' if v is None else f'{v:g}{unit}'}"
             for c, v in zip(categories, values)]
    desc = "; ".join(parts) + "." if parts else "No data."
    return _svg(fig, title, desc)


def lines_over_time(
    periods: Sequence[str], series: Sequence[tuple[str, Sequence[float | None]]], *, title: str,
    ylabel: str, unit: str = "", ylim: tuple[float, float] | None = None,
) -> Chart:
    """One line per series over ``periods`` (e.g. months); a missing value leaves a gap."""
    with plt.rc_context(STYLE):
        fig, ax = _figure(5.6, 2.8)
        x = np.arange(len(periods))
        for k, (name, values) in enumerate(series):
            y = np.array([np.nan if v is None else float(v) for v in values])
            ax.plot(x, y, color=COLOURS[k % len(COLOURS)], ls=LINESTYLES[k % len(LINESTYLES)],
                    marker=MARKERS[k % len(MARKERS)], ms=4, lw=1.6, label=name)
        ax.set_xticks(x, list(periods), rotation=30 if len(periods) > 6 else 0)
        if ylim is not None:
            ax.set_ylim(*ylim)
        ax.set_ylabel(ylabel)
        if series:
            ax.legend(fontsize=7, frameon=False)
    parts = []
    for name, values in series:
        points = ", ".join(f"{p} {'not shown' if v is None else f'{v:.1f}{unit}'}"
                           for p, v in zip(periods, values))
        parts.append(f"{name}: {points}")
    desc = "; ".join(parts) + "." if parts else "No data."
    return _svg(fig, title, desc)
