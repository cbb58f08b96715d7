"""Cut benchmark: what a cut costs where it runs, on a real (SQLite) database.

* the adoption page's proposal (raw cuts, CSEM, pass rates, four decision-consistency methods)
  for two 36-item forms with N delivered results;
* judging one finalized attempt by the adopted cut (the part of finalization this adds:
  the current cut, the approved parameters, EAP);
* the cut rescoring's preview and its application over the N results.

The exam is Kolen & Brennan's (2014, ch. 6) Forms X and Y (``tests/cut_exam.py``); results are
written as rows (``deliver``) so the figure is the cut's, not the delivery services'.

    python bench/cuts.py                   # 2,000 results
    python bench/cuts.py --results 10000
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--results", type=int, default=2000)
    args = parser.parse_args()
    os.environ.setdefault("MICROCRED_INSTANCE_DIR", tempfile.mkdtemp())

    from assessment.database import Database
    from assessment.delivery.rescore import apply_cut_rescoring, preview_cut_rescoring
    from assessment.migrate import upgrade
    from assessment.psych.cuts import adopt, parse_cut, propose
    from assessment.psych.cuts_scoring import judge
    from assessment.users import create_user
    from microcred.packages import connect_receivers
    from tests.cut_exam import KB_FORM_X, KB_FORM_Y, build_kb_exam, deliver, form_of, simulate

    connect_receivers()
    PASSWORD = "correct horse battery staple"
    url = f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    upgrade(url)
    db = Database(url)
    session = db.session()
    psych = create_user(session, email="p@example.org", password=PASSWORD,
                        role="psychometrician", display_name="P")
    people = [create_user(session, email=f"c{i}@example.org", password=PASSWORD,
                          role="candidate", display_name=f"C{i}").id for i in range(20)]
    exam = build_kb_exam(session)
    half = args.results // 2
    for name, rows, seed in (("X", KB_FORM_X, 1), ("Y", KB_FORM_Y, 2)):
        deliver(session, exam, form_of(session, exam, name),
                [people[i % len(people)] for i in range(half)], simulate(rows, half, seed))
    session.commit()

    t = time.perf_counter()
    proposal = propose(session, exam, parse_cut({"theta": "1.102159"}))
    print(f"proposal page numbers, {proposal.n_results} results: "
          f"{time.perf_counter() - t:.2f} s")
    cut = adopt(session, exam, parse_cut({"theta": "1.102159"}), by=psych, reason="bench")
    session.commit()

    form = form_of(session, exam, "X")
    scored = [(fi.item_version_id, float(k % 2), 1.0) for k, fi in enumerate(form.items)]
    judge(session, exam, form.id, scored)  # warm
    n = 200
    t = time.perf_counter()
    for _ in range(n):
        judge(session, exam, form.id, scored)
    print(f"judging one attempt by the cut (IRT, 36 items): "
          f"{1000 * (time.perf_counter() - t) / n:.2f} ms")

    t = time.perf_counter()
    preview = preview_cut_rescoring(session, exam)
    print(f"rescoring preview, {len(preview.changes)} results, {len(preview.flips)} flips: "
          f"{time.perf_counter() - t:.2f} s")
    t = time.perf_counter()
    apply_cut_rescoring(session, exam, by=psych, reason="bench", digest=preview.digest)
    session.commit()
    print(f"rescoring applied (new results, item scores, releases): "
          f"{time.perf_counter() - t:.2f} s  (cut {cut.id})")
    session.close()
    db.dispose()


if __name__ == "__main__":
    main()
