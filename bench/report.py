"""Item-analysis report benchmark: N items x M candidates rendered to PDF, with the seconds of
each phase.

The report data are built directly from a simulated score matrix (``report_from_matrix``, the
function the database path ends in), not through stored responses: storing 2 million item scores
through the delivery services would measure the services, not the report. Two fixed forms share
a fifth of the items; responses follow a 2PL with known parameters, which serve as the "approved"
parameters, so every IRT section (S-X2, ICCs, information, the theta cut) is drawn.

    python bench/report.py                 # 200 items x 10,000 candidates (goal: PDF < 20 s)
    python bench/report.py --items 40 --candidates 2000 --pdf /tmp/report.pdf
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from assessment.exams import Exam
from assessment.models import load_all
from assessment.psych.charts import chart_workers
from assessment.psych.report import ReportScope, report_from_matrix
from assessment.psych.report_output import pdf_workers, render_pdf, tables_zip
from assessment.psych.response_matrix import ScoreMatrix
from itembank.models import Form, Item, ItemParameter, ItemVersion


def simulate(n_items: int, n_persons: int, seed: int = 2026):
    rng = np.random.default_rng(seed)
    a = rng.lognormal(0.0, 0.3, n_items)
    b = rng.normal(0.0, 1.0, n_items)
    theta = rng.normal(0.0, 1.0, n_persons)
    p = 1.0 / (1.0 + np.exp(-a[None, :] * (theta[:, None] - b[None, :])))
    x = (rng.random(p.shape) < p).astype(float)
    # two forms: the first 60% and the last 60% of the items (a fifth shared)
    cut = int(n_items * 0.6)
    first = np.arange(n_persons) % 2 == 0
    on_a, on_b = np.zeros(n_items, bool), np.zeros(n_items, bool)
    on_a[:cut], on_b[n_items - cut:] = True, True
    x[np.ix_(first, ~on_a)] = np.nan
    x[np.ix_(~first, ~on_b)] = np.nan
    # options: key "A"; wrong answers pick B/C/D, weaker candidates more often D
    choices = np.full(x.shape, "", dtype=object)
    choices[x == 1] = "A"
    wrong = x == 0
    pick = rng.choice(np.array(["B", "C", "D"], dtype=object), size=x.shape)
    choices[wrong] = pick[wrong]
    forms = {1: Form(id=1, code="BENCH-A"), 2: Form(id=2, code="BENCH-B")}
    versions, params = [], {}
    for j in range(n_items):
        item = Item(id=j + 1, code=f"B{j + 1:04d}")
        v = ItemVersion(id=j + 1, item=item, version=1, item_type="single_choice",
                        domain_code=f"D{j % 5 + 1}",
                        stem=f"<p>Question {j + 1}: which option is right about topic {j}?</p>",
                        key={"correct": "A"})
        versions.append(v)
        params[v.id] = ItemParameter(item_version_id=v.id, model="2pl", a=float(a[j]),
                                     b=float(b[j]), c=0.0,
                                     standard_errors={"a": 0.05, "b": 0.04}, source="simulation")
    matrix = ScoreMatrix(scores=x, choices=choices, keys=["A"] * n_items,
                         result_ids=list(range(1, n_persons + 1)),
                         form_ids=np.where(first, 1, 2), versions=versions, forms=forms)
    return matrix, params


def cpu_seconds() -> float:
    """CPU seconds of this process and of the processes it started: the PDF's part workers
    (its children, once finished) and the chart pool's workers (children of multiprocessing's
    fork server, counted from its /proc entry on Linux, since the server lives on)."""
    import resource

    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = time.process_time() + children.ru_utime + children.ru_stime
    try:
        from multiprocessing import forkserver

        pid = forkserver._forkserver._forkserver_pid
        if pid:
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            # utime, stime, cutime, cstime (fields 14-17; 0 here is field 3)
            ticks = sum(int(v) for v in fields[11:15])
            total += ticks / os.sysconf("SC_CLK_TCK")
    except (AttributeError, OSError, ValueError):
        pass
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--candidates", type=int, default=10_000)
    parser.add_argument("--pdf", default=None, help="keep the PDF here")
    args = parser.parse_args()
    load_all()
    matrix, params = simulate(args.items, args.candidates)
    exam = Exam(id=1, code="BENCH", title="Benchmark exam", pass_percent=60.0)
    scope = ReportScope(exam)
    # wall seconds, and CPU seconds (this process and the workers it started): on a machine
    # shared with other work the CPU figures compare runs better (wall time there measures the
    # neighbours too); with workers on every CPU, wall can be below CPU
    t0, c0 = time.perf_counter(), cpu_seconds()
    data = report_from_matrix(scope, matrix, params, with_charts=False)
    t1, c1 = time.perf_counter(), cpu_seconds()
    # as the PDF job builds it: the item charts are drawn by the processes rendering the PDF
    report = report_from_matrix(scope, matrix, params, with_charts=True, item_charts_later=True)
    t2, c2 = time.perf_counter(), cpu_seconds()
    pdf = render_pdf(report)
    t3, c3 = time.perf_counter(), cpu_seconds()
    tables_zip(data)
    t4, c4 = time.perf_counter(), cpu_seconds()
    n_charts = sum((i.icc is not None) + (i.trace is not None) for i in report.items)
    if args.pdf:
        with open(args.pdf, "wb") as fh:
            fh.write(pdf)
    import io

    from pypdf import PdfReader

    pages = len(PdfReader(io.BytesIO(pdf)).pages)
    print(f"{args.items} items x {args.candidates} candidates, {n_charts} item charts,"
          f" {pages} PDF pages ({len(pdf) / 1e6:.1f} MB); load average {os.getloadavg()[0]:.1f}"
          f" on {os.cpu_count()} cores")
    print(f"  PDF workers {pdf_workers(args.items)}, chart workers"
          f" {chart_workers(2 * args.items)} (MICROCRED_PDF_WORKERS, MICROCRED_CHART_WORKERS)")
    print("                               wall      CPU (all processes)")
    print(f"  report data, no charts:      {t1 - t0:6.2f} s  {c1 - c0:6.2f} s")
    print(f"  report data, summary charts: {t2 - t1:6.2f} s  {c2 - c1:6.2f} s")
    print(f"  PDF (item charts, WeasyPrint, pypdf): {t3 - t2:6.2f} s  {c3 - c2:6.2f} s")
    print(f"  CSV zip + JSON:              {t4 - t3:6.2f} s  {c4 - c3:6.2f} s")
    print(f"  report to PDF (data, charts, PDF): {t3 - t1:.2f} s wall, {c3 - c1:.2f} s CPU"
          "  (goal < 20 s wall on a quiet machine)")


if __name__ == "__main__":
    main()
