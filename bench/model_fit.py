"""Benchmark: M2, local dependence, reliability and equating on calibrated 2PL forms.

Simulated data (a ~ lognormal(0, 0.3), b ~ N(0, 1), theta ~ N(0, 1), seed 2024), 5,000 persons,
20, 40 and 60 items; for each the wall time of ``m2`` (its moment covariance has J^2 / 2 rows,
so it grows as J^4 in memory and about J^6 in time), ``local_dependence`` (Q3 and LD X2 for all
pairs), ``summed_score_reliability``, ``conversion_table`` and ``true_score_equating``.

Small LAPACK calls are very slow when OpenBLAS threads compete with other processes for few
cores; ``--threads 1`` (the default) pins BLAS to one thread before numpy loads.

Usage: ``.venv/bin/python bench/model_fit.py [--threads N]``. The last line printed is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads (default 1)")
    args = parser.parse_args()
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    import numpy as np

    from psychometrics import (
        calibrate,
        conversion_table,
        local_dependence,
        m2,
        summed_score_reliability,
        true_score_equating,
    )

    figures = {}
    rng = np.random.default_rng(2024)
    for n_items in (20, 40, 60):
        a = rng.lognormal(0.0, 0.3, n_items)
        b = rng.normal(0.0, 1.0, n_items)
        theta = rng.normal(size=5000)
        p = 1 / (1 + np.exp(-a * (theta[:, None] - b)))
        x = (rng.random(p.shape) < p).astype(float)
        fit = calibrate(x, "2pl", standard_errors=False)
        row = {}
        for name, run, run_args in (
            ("m2_s", m2, (x, fit)),
            ("local_dependence_s", local_dependence, (x, fit)),
            ("summed_score_reliability_s", summed_score_reliability, (x, fit)),
            ("conversion_table_s", conversion_table, (fit.params,)),
            ("true_score_equating_s", true_score_equating, (fit.params, fit.params)),
        ):
            start = time.perf_counter()
            run(*run_args)
            row[name] = round(time.perf_counter() - start, 3)
        figures[f"{n_items}x5000"] = row
        print(f"{n_items:3d} items x 5,000: " + ", ".join(f"{k} {v}" for k, v in row.items()))
    print(json.dumps({"threads": args.threads, "figures": figures}))


if __name__ == "__main__":
    main()
