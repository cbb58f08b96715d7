"""Command-line face of the psychometrics library: ``calibrate``, ``score``, ``item-analysis``.

The application's ``microcred`` click group adds these with :func:`register`; ``python -m
psychometrics`` offers the same commands standalone. Every command reads a responses CSV (a header
of item ids, an optional first column ``person_id``, one row per person, integer scores, an empty
cell for not presented), writes JSON to ``--out`` or stdout, and exits non-zero with the row and
column at fault when the CSV is bad.
"""

from __future__ import annotations

import json
import sys
import time
import warnings

import click
import numpy as np

from psychometrics.calibration import calibrate as calibrate_items
from psychometrics.calibration import parameters_from_dict
from psychometrics.ctt import FlagRules
from psychometrics.ctt import item_analysis as run_item_analysis
from psychometrics.data import read_responses_csv
from psychometrics.errors import PsychometricsError
from psychometrics.irt.models import MODELS
from psychometrics.scoring import METHODS
from psychometrics.scoring import score as score_persons

PROGRESS_INTERVAL = 1.0  # seconds between progress lines on stderr


def _emit(doc: dict, out: str | None) -> None:
    text = json.dumps(doc, indent=2, allow_nan=False)
    if out:
        with open(out, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
        click.echo(f"wrote {out}", err=True)
    else:
        click.echo(text)


def _read(path: str, model: str | None = None):
    try:
        return read_responses_csv(path, model=model)
    except PsychometricsError as exc:
        raise click.ClickException(f"{path}: {exc}") from exc
    except OSError as exc:
        raise click.ClickException(f"{path}: {exc.strerror or exc}") from exc


class _Progress:
    """Prints EM progress to stderr once a calibration has run for a while."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.last = self.start

    def __call__(self, iteration: int, loglik: float, change: float) -> None:
        now = time.monotonic()
        if now - self.last >= PROGRESS_INTERVAL:
            self.last = now
            click.echo(
                f"calibrate: iteration {iteration}, loglik {loglik:.3f}, max change {change:.2g}"
                f" ({now - self.start:.1f}s)",
                err=True,
            )


@click.command("calibrate")
@click.argument("responses", type=click.Path(dir_okay=False))
@click.option(
    "--model",
    type=click.Choice(MODELS, case_sensitive=False),
    default="2pl",
    show_default=True,
    help="IRT model.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the JSON here instead of stdout.",
)
@click.option("--n-quad", type=int, default=61, show_default=True, help="Quadrature points.")
@click.option("--max-iter", type=int, default=500, show_default=True, help="EM iteration cap.")
@click.option("--tol", type=float, default=1e-4, show_default=True, help="EM tolerance.")
@click.option(
    "--backend",
    type=click.Choice(["microcred", "girth"]),
    default="microcred",
    show_default=True,
    help="Estimation engine.",
)
def calibrate(responses, model, out, n_quad, max_iter, tol, backend):
    """Calibrate item parameters by marginal maximum likelihood from RESPONSES (CSV)."""
    model = model.lower()
    data = _read(responses, model)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fit = calibrate_items(
                data.scores,
                model,
                item_ids=data.item_ids,
                n_quad=n_quad,
                max_iter=max_iter,
                tol=tol,
                backend=backend,
                progress=_Progress(),
            )
        except PsychometricsError as exc:
            raise click.ClickException(f"{responses}: {exc}") from exc
    _warn(fit.messages + [str(w.message) for w in caught])
    _emit(fit.to_dict(), out)


def _warn(messages) -> None:
    """Every warning of a result on stderr, once each, in order (never silent)."""
    for msg in dict.fromkeys(messages):
        click.echo(f"warning: {msg}", err=True)


@click.command("score")
@click.argument("responses", type=click.Path(dir_okay=False))
@click.option(
    "--params",
    "params_path",
    type=click.Path(dir_okay=False),
    required=True,
    help="Calibration JSON written by `calibrate`.",
)
@click.option(
    "--method",
    type=click.Choice(METHODS, case_sensitive=False),
    default="eap",
    show_default=True,
    help="Ability estimator.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the JSON here instead of stdout.",
)
def score(responses, params_path, method, out):
    """Estimate ability for every person in RESPONSES with calibrated item parameters."""
    try:
        with open(params_path, encoding="utf-8") as fh:
            ids, params = parameters_from_dict(json.load(fh))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise click.ClickException(f"{params_path}: {exc}") from exc
    data = _read(responses, params.model)
    position = {item: j for j, item in enumerate(ids)}
    unknown = [item for item in data.item_ids if item not in position]
    if unknown:
        col = data.item_ids.index(unknown[0]) + 1 + (data.person_ids is not None)
        raise click.ClickException(
            f"{responses}: row 1, column {col}: item {unknown[0]!r} is not in {params_path}"
        )
    cols = [position[item] for item in data.item_ids]
    x = data.scores
    try:
        est = score_persons(x, params.subset(cols), method.lower())
    except PsychometricsError as exc:
        raise click.ClickException(f"{responses}: {exc}") from exc
    persons = []
    for i in range(x.shape[0]):
        pid = data.person_ids[i] if data.person_ids is not None else str(i + 1)
        theta, se = est.theta[i], est.se[i]
        persons.append(
            {
                "person_id": pid,
                "theta": float(theta) if np.isfinite(theta) else None,
                "se": float(se) if np.isfinite(se) else None,
                "summed_score": float(np.nansum(x[i])),
                "n_items": int((~np.isnan(x[i])).sum()),
                "no_response": bool(est.no_response[i]),
            }
        )
    if est.no_response.any():
        what = "the prior" if est.method in ("eap", "map") else "no estimate (null)"
        _warn([f"{int(est.no_response.sum())} person(s) answered no item: they get {what}"])
    _emit(
        {
            "method": est.method,
            "model": params.model,
            "n_persons": len(persons),
            "n_items": len(cols),
            "persons": persons,
        },
        out,
    )


@click.command("item-analysis")
@click.argument("responses", type=click.Path(dir_okay=False))
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the JSON here instead of stdout.",
)
@click.option(
    "--p-min",
    type=float,
    default=FlagRules.p_min,
    show_default=True,
    help="Flag items with difficulty p below this.",
)
@click.option(
    "--p-max",
    type=float,
    default=FlagRules.p_max,
    show_default=True,
    help="Flag items with difficulty p above this.",
)
@click.option(
    "--r-min",
    type=float,
    default=FlagRules.corrected_r_min,
    show_default=True,
    help="Flag items with corrected item-total r below this.",
)
def item_analysis(responses, out, p_min, p_max, r_min):
    """Classical item analysis (difficulty, discrimination, alpha, flags) of RESPONSES."""
    data = _read(responses)
    try:
        rules = FlagRules(p_min=p_min, p_max=p_max, corrected_r_min=r_min)
        result = run_item_analysis(data.scores, item_ids=data.item_ids, rules=rules)
    except PsychometricsError as exc:
        raise click.ClickException(f"{responses}: {exc}") from exc
    doc = result.to_dict()
    doc["n_persons"] = int(data.scores.shape[0])
    doc["n_items"] = int(data.scores.shape[1])
    _emit(doc, out)


COMMANDS = (calibrate, score, item_analysis)


def register(group: click.Group) -> None:
    """Add ``calibrate``, ``score`` and ``item-analysis`` to the application's click group."""
    for command in COMMANDS:
        group.add_command(command)


@click.group("psychometrics")
def main() -> None:
    """Microcred psychometrics: calibrate items, score persons, analyse items."""


register(main)

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
