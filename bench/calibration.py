"""Benchmark: the microcred IRT engine against girth (and Python mirt when installed).

Runs in one process on the same simulated data (a ~ lognormal(0, 0.3), b ~ N(0, 1),
theta ~ N(0, 1), seed 2024):

* 2PL, 40 items x 5,000 persons and 100 items x 20,000 persons: microcred (with and without
  standard errors), girth.twopl_mml, mirt.fit_mirt if importable; wall time, RMSE of a and b,
  speed ratio girth / microcred. Goal (issue 13): with standard errors at least 10x faster
  than girth at 40 x 5,000 (girth computes none).
* GRM and GPCM, 20 items (4 categories) x 3,000 persons: microcred with and without standard
  errors against girth.grm_mml / girth.pcm_mml, RMSE of a and the thresholds, each side's best
  of 3 runs after an untimed warm-up calibration. Goal: at least 5x faster than girth with
  RMSE no worse.
* 3PL, 100 items x 20,000 persons, 30% of cells missing: microcred wall time (goal < 5 s).
* Mixed format, 50 3PL + 10 GPCM (4 categories) items x 20,000 persons, 30% of cells missing:
  one calibration with the model chosen per item, without and with standard errors (goal < 5 s).
* 2PL, 200 items x 100,000 persons: wall time and peak resident memory of a child process that
  simulates the data and calibrates it with standard errors (goal < 10 s and < 500 MB).

Usage: ``.venv/bin/python bench/calibration.py [--quick] [--only CASE ...]`` (``--quick`` skips
the two big runs; ``--only`` runs the named cases: two_pl, grm, gpcm, three_pl, mixed, memory).
The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from psychometrics import calibrate


def simulate(n_persons: int, n_items: int, *, model="2pl", missing=0.0, seed=2024):
    rng = np.random.default_rng(seed)
    a = rng.lognormal(0.0, 0.3, n_items)
    b = rng.normal(0.0, 1.0, n_items)
    c = rng.uniform(0.1, 0.25, n_items) if model == "3pl" else np.zeros(n_items)
    x = np.empty((n_persons, n_items))
    for start in range(0, n_persons, 10_000):  # chunks keep the simulation's own memory small
        th = rng.normal(size=min(10_000, n_persons - start))
        p = c + (1 - c) / (1 + np.exp(-a * (th[:, None] - b)))
        x[start : start + th.size] = rng.random(p.shape) < p
    if missing:
        x[rng.random(x.shape) < missing] = np.nan
    return x, a, b, c


def simulate_mixed(n_persons: int, n_3pl: int, n_gpcm: int, *, n_cat=4, missing=0.3, seed=2024):
    """3PL items then GPCM items on one theta ~ N(0, 1): 3PL as in :func:`simulate`, GPCM
    a ~ lognormal(0, .25) and ordered thresholds around a N(0, .7) location."""
    rng = np.random.default_rng(seed)
    a3 = rng.lognormal(0.0, 0.3, n_3pl)
    b3 = rng.normal(0.0, 1.0, n_3pl)
    c3 = rng.uniform(0.1, 0.25, n_3pl)
    ag = rng.lognormal(0.0, 0.25, n_gpcm)
    bg = np.sort(rng.normal(0, 1, (n_gpcm, n_cat - 1)), axis=1) * 0.8 + rng.normal(0, 0.7, (n_gpcm, 1))
    th = rng.normal(size=n_persons)
    p3 = c3 + (1 - c3) / (1 + np.exp(-a3 * (th[:, None] - b3)))
    z = ag[None, :, None] * (th[:, None, None] - bg[None])
    num = np.concatenate([np.zeros((n_persons, n_gpcm, 1)), np.cumsum(z, axis=2)], axis=2)
    pg = np.exp(num - num.max(axis=2, keepdims=True))
    pg /= pg.sum(axis=2, keepdims=True)
    xg = (rng.random((n_persons, n_gpcm, 1)) > np.cumsum(pg, axis=2)).sum(axis=2)
    x = np.hstack([(rng.random(p3.shape) < p3).astype(float), xg.astype(float)])
    x[rng.random(x.shape) < missing] = np.nan
    return x, np.r_[a3, ag], b3, c3, bg


def run_mixed():
    x, _, b3, c3, bg = simulate_mixed(20_000, 50, 10)
    models = ["3pl"] * 50 + ["gpcm"] * 10
    out = {"items": "50 3pl + 10 gpcm", "persons": 20_000, "missing": 0.3, "goal_seconds": 5.0}
    for key, se in (("seconds", False), ("seconds_with_se", True)):
        fit, secs = timed(lambda se=se: calibrate(x, models, standard_errors=se))
        out[key] = round(secs, 3)
    out["iterations"] = fit.iterations
    out["converged"] = fit.converged
    out["rmse_b_3pl"] = round(rmse(fit.b[:50, 0], b3), 4)
    out["rmse_c_3pl"] = round(rmse(fit.c[:50], c3), 4)
    out["rmse_b_gpcm"] = round(rmse(fit.b[50:], bg), 4)
    return out


def simulate_polytomous(n_persons, n_items, n_cat=4, *, model="grm", seed=2024):
    """GRM or GPCM responses, ordered thresholds around N(0, 0.7) locations (as the tests)."""
    rng = np.random.default_rng(seed)
    a = rng.lognormal(0.0, 0.25, n_items)
    loc = rng.normal(0.0, 0.7, n_items)
    b = np.sort(rng.normal(0, 1, (n_items, n_cat - 1)), axis=1) * 0.8 + loc[:, None]
    theta = rng.normal(size=n_persons)
    z = a[None, :, None] * (theta[:, None, None] - b[None, :, :])
    u = rng.random((n_persons, n_items, 1))
    if model == "grm":
        x = (u < 1 / (1 + np.exp(-z))).sum(axis=2)
    else:
        num = np.concatenate([np.zeros((n_persons, n_items, 1)), np.cumsum(z, axis=2)], axis=2)
        p = np.exp(num - num.max(axis=2, keepdims=True))
        p /= p.sum(axis=2, keepdims=True)
        x = (u > np.cumsum(p, axis=2)).sum(axis=2)
    return x.astype(float), a, b


def warm_up(model):
    """One small untimed calibration, so a timed run does not pay the process's one-off costs
    (lazy imports, first-touch allocations) when it happens to be the first one run."""
    x, _, _ = simulate_polytomous(200, 5, model=model, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        calibrate(x, model)


def compare_polytomous(model, n_items=20, n_persons=3_000):
    x, a, b = simulate_polytomous(n_persons, n_items, model=model)
    warm_up(model)
    row = {"model": model, "items": n_items, "persons": n_persons, "categories": 4}
    for se in (True, False):
        fit, secs = timed(lambda se=se: calibrate(x, model, standard_errors=se), repeat=REPEAT)
        row["microcred" if se else "microcred_no_se"] = {
            "seconds": round(secs, 3),
            "rmse_a": round(rmse(fit.a, a), 4),
            "rmse_b": round(rmse(fit.b, b), 4),
            "iterations": fit.iterations,
            "converged": fit.converged,
        }
    try:
        import girth
    except ImportError:
        row["girth"] = None
        return row
    fn = girth.grm_mml if model == "grm" else girth.pcm_mml
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res, secs = timed(lambda: fn(x.astype(int).T), repeat=REPEAT)
    row["girth"] = {
        "seconds": round(secs, 3),
        "rmse_a": round(rmse(res["Discrimination"], a), 4),
        "rmse_b": round(rmse(np.asarray(res["Difficulty"])[:, : b.shape[1]], b), 4),
    }
    row["speedup_vs_girth"] = round(secs / row["microcred"]["seconds"], 1)
    row["speedup_vs_girth_no_se"] = round(secs / row["microcred_no_se"]["seconds"], 1)
    return row


def rmse(est, true) -> float:
    return float(np.sqrt(np.mean((np.asarray(est, float) - true) ** 2)))


# the polytomous rows are a fraction of a second: each side's best of REPEAT runs, so one run
# slowed by a busy shared machine does not decide the ratio
REPEAT = 3


def timed(fn, repeat=1):
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return out, best


def run_microcred(x, a, b, model="2pl", standard_errors=True):
    fit, secs = timed(lambda: calibrate(x, model, standard_errors=standard_errors))
    return {
        "seconds": round(secs, 3),
        "rmse_a": round(rmse(fit.a, a), 4),
        "rmse_b": round(rmse(fit.b, b), 4),
        "iterations": fit.iterations,
        "converged": fit.converged,
        "standard_errors": standard_errors,
    }


def run_girth(x, a, b):
    try:
        import girth
    except ImportError:
        return None
    data = x.astype(int).T
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res, secs = timed(lambda: girth.twopl_mml(data))
    return {
        "seconds": round(secs, 3),
        "rmse_a": round(rmse(res["Discrimination"], a), 4),
        "rmse_b": round(rmse(res["Difficulty"], b), 4),
    }


def run_mirt(x, a, b):
    try:
        import mirt  # the Python "mirt" package, optional
    except ImportError:
        return None
    fit_mirt = getattr(mirt, "fit_mirt", None)
    if fit_mirt is None:
        return {"error": "mirt has no fit_mirt"}
    try:
        res, secs = timed(lambda: fit_mirt(x.astype(int), model="2PL"))
    except Exception as exc:  # noqa: BLE001 - report, don't crash the benchmark
        return {"error": f"{type(exc).__name__}: {exc}"}
    out = {"seconds": round(secs, 3)}
    params = getattr(res, "item_parameters", None) or getattr(res, "params", None)
    if isinstance(params, dict) and "a" in params and "b" in params:
        out["rmse_a"] = round(rmse(params["a"], a), 4)
        out["rmse_b"] = round(rmse(params["b"], b), 4)
    return out


def compare_2pl(n_items, n_persons):
    x, a, b, _ = simulate(n_persons, n_items)
    row = {"items": n_items, "persons": n_persons}
    row["microcred"] = run_microcred(x, a, b)
    row["microcred_no_se"] = run_microcred(x, a, b, standard_errors=False)
    row["girth"] = run_girth(x, a, b)
    row["mirt"] = run_mirt(x, a, b)
    if row["girth"]:
        row["speedup_vs_girth"] = round(row["girth"]["seconds"] / row["microcred"]["seconds"], 1)
    if row["mirt"] and "seconds" in row["mirt"]:
        row["speedup_vs_mirt"] = round(row["mirt"]["seconds"] / row["microcred"]["seconds"], 1)
    return row


def memory_child() -> None:
    """Entry point of the memory run (a separate process so its peak RSS is its own)."""
    x, a, b, _ = simulate(100_000, 200)
    cpu = time.process_time()
    fit, secs = timed(lambda: calibrate(x, "2pl"))
    cpu = time.process_time() - cpu  # on a shared machine wall time also counts waiting
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "items": 200,
                "persons": 100_000,
                "seconds": round(secs, 2),
                "cpu_seconds": round(cpu, 2),
                "peak_rss_mb": round(peak_mb, 1),
                "rmse_a": round(rmse(fit.a, a), 4),
                "rmse_b": round(rmse(fit.b, b), 4),
                "converged": fit.converged,
            }
        )
    )


def run_memory():
    proc = subprocess.run(
        [sys.executable, __file__, "--memory-child"], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        return {"error": proc.stderr.strip()[-500:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


CASES = ["two_pl", "grm", "gpcm", "three_pl", "mixed", "memory"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="skip the 100x20,000 and memory runs")
    parser.add_argument(
        "--only", nargs="+", choices=CASES, default=CASES, help="run these cases only"
    )
    parser.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child()
        return
    only = set(args.only)
    report = {"numpy": np.__version__, "two_pl": []}
    sizes = [(40, 5_000)] if args.quick else [(40, 5_000), (100, 20_000)]
    for n_items, n_persons in sizes if "two_pl" in only else []:
        row = compare_2pl(n_items, n_persons)
        report["two_pl"].append(row)
        print(f"2PL {n_items} x {n_persons}: " + json.dumps(row), flush=True)
    report["polytomous"] = []
    for model in [m for m in ("grm", "gpcm") if m in only]:
        row = compare_polytomous(model)
        report["polytomous"].append(row)
        print(f"{model.upper()} 20 x 3000: " + json.dumps(row), flush=True)
    if "three_pl" in only:
        run_three_pl(report)
    if "mixed" in only:
        report["mixed_format_missing"] = run_mixed()
        print("Mixed 50 3PL + 10 GPCM x 20000, 30% missing: "
              + json.dumps(report["mixed_format_missing"]), flush=True)
    if not args.quick and "memory" in only:
        report["memory_200x100000"] = run_memory()
        print("2PL 200 x 100000 memory: " + json.dumps(report["memory_200x100000"]), flush=True)
    print(json.dumps(report))


def run_three_pl(report):
    x, a, b, c = simulate(20_000, 100, model="3pl", missing=0.3)
    fit, secs = timed(lambda: calibrate(x, "3pl"))
    report["three_pl_missing"] = {
        "items": 100,
        "persons": 20_000,
        "missing": 0.3,
        "seconds": round(secs, 3),
        "rmse_a": round(rmse(fit.a, a), 4),
        "rmse_b": round(rmse(fit.b, b), 4),
        "rmse_c": round(rmse(fit.c, c), 4),
        "converged": fit.converged,
        "goal_seconds": 5.0,
    }
    print("3PL 100 x 20000, 30% missing: " + json.dumps(report["three_pl_missing"]), flush=True)


if __name__ == "__main__":
    main()
