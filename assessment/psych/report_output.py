"""The item-analysis report rendered three ways from one :class:`ItemAnalysisReport`: the
workspace page (``templates/psych/report.html``, through Flask), a PDF (``report_pdf.html``
through WeasyPrint: cover, summary, one section per item, page numbers) and CSV/JSON of every
table. The PDF is rendered with a plain Jinja environment over the same templates folder, so
the command line needs no web app.
"""
from __future__ import annotations

import base64
import csv
import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from assessment.psych.charts import Chart
from assessment.psych.report import ItemAnalysisReport
from microcred.pdf import html_to_pdf

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def chart_img(chart: Chart | None, css_class: str = "chart") -> Markup:
    """The chart as an ``<img>`` of its SVG (a data URI: the page's CSP allows no inline style,
    which matplotlib's SVG uses) with its text alternative as ``alt``."""
    if chart is None:
        return Markup("")
    data = base64.b64encode(chart.svg.encode()).decode()
    return Markup('<img class="{}" src="data:image/svg+xml;base64,{}" alt="{}">').format(
        css_class, Markup(data), chart.alt)


def _env() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
    env.globals["chart_img"] = chart_img
    return env


def render_pdf_html(report: ItemAnalysisReport) -> str:
    return _env().get_template("psych/report_pdf.html").render(r=report)


def render_pdf(report: ItemAnalysisReport, *,
               progress: Callable[[int, int], None] | None = None) -> bytes:
    """The report as PDF; ``progress(done, total)`` is told of each part rendered."""
    if progress:
        progress(0, 1)
    pdf = html_to_pdf(render_pdf_html(report), base_url=str(TEMPLATES))
    if progress:
        progress(1, 1)
    return pdf


def table_csv(report: ItemAnalysisReport, name: str) -> str:
    """One table as CSV (raises KeyError for a table the report does not have)."""
    cols, rows = report.tables()[name]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(cols)
    writer.writerows(["" if v is None else v for v in row] for row in rows)
    return out.getvalue()


def tables_zip(report: ItemAnalysisReport) -> bytes:
    """Every table as ``<name>.csv`` plus ``report.json``, in one zip."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in report.tables():
            zf.writestr(f"{name}.csv", table_csv(report, name))
        zf.writestr("report.json", report_json(report))
    return buf.getvalue()


def report_json(report: ItemAnalysisReport) -> str:
    return json.dumps(report.to_dict(), indent=1, ensure_ascii=False)
