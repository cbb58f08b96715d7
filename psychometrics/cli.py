"""Command-line face of the psychometrics library: ``calibrate``, ``score``, ``item-analysis``,
``conversion-table``, ``equate``, ``model-fit``, ``person-fit`` and ``cut-score``.

The application's ``microcred`` click group adds these with :func:`register`; ``python -m
psychometrics`` offers the same commands standalone. Every command reads a responses CSV (a header
of item ids, an optional first column ``person_id``, one row per person, integer scores, an empty
cell for not presented), writes JSON to ``--out`` or stdout, and exits non-zero with the row and
column at fault when the CSV is bad. Item parameters come from the JSON ``calibrate`` writes.
"""

from __future__ import annotations

import csv
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
from psychometrics.cut_scores import ROUNDING_RULES, ScaleTransform, carry_cut, theta_cut_from_raw
from psychometrics.data import read_responses_csv
from psychometrics.decision_consistency import cut_report, lee, rudner
from psychometrics.equating import conversion_table as build_conversion_table
from psychometrics.equating import observed_score_equating, true_score_equating
from psychometrics.errors import PsychometricsError
from psychometrics.global_fit import m2
from psychometrics.irt.models import MODELS
from psychometrics.local_dependence import local_dependence
from psychometrics.personfit import PersonFitRules, person_fit
from psychometrics.rasch import item_infit_outfit
from psychometrics.reliability import marginal_reliability, summed_score_reliability
from psychometrics.scoring import METHODS
from psychometrics.scoring import score as score_persons
from psychometrics.standard_setting import angoff_cut

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


def _read_params(path: str):
    """Item ids, ItemParameters and the whole document of a ``calibrate`` JSON file."""
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
        ids, params = parameters_from_dict(doc)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise click.ClickException(f"{path}: {exc}") from exc
    return ids, params, doc


_out_option = click.option(
    "--out",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the JSON here instead of stdout.",
)


def _params_option(help: str):
    """The ``--params`` option: a calibration JSON written by ``calibrate``."""
    return click.option(
        "--params", "params_path", type=click.Path(dir_okay=False), required=True, help=help
    )


def _latent(doc: dict) -> tuple[float, float]:
    """Mean and SD of the latent distribution a ``calibrate`` JSON was fitted on (0, 1 unset)."""
    latent = doc.get("latent") or {}
    return float(latent.get("mean") or 0.0), float(latent.get("sd") or 1.0)


def _read_for_params(responses: str, params_path: str):
    """Item ids, ItemParameters, the calibration document and the responses read for them; the
    responses must have exactly the calibration's items, in its order."""
    ids, params, doc = _read_params(params_path)
    data = _read(responses, params.model)
    if data.item_ids != ids:
        raise click.ClickException(
            f"{responses}: its items {data.item_ids[:5]} are not those of {params_path}"
            f" {ids[:5]} in the same order"
        )
    return ids, params, doc, data


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
    "--item-model",
    "item_models",
    multiple=True,
    metavar="ITEM=MODEL",
    help="Model for one item of a mixed-format test (repeatable); other items take --model.",
)
@_out_option
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
def calibrate(responses, model, item_models, out, n_quad, max_iter, tol, backend):
    """Calibrate item parameters by marginal maximum likelihood from RESPONSES (CSV)."""
    model = model.lower()
    data = _read(responses, None if item_models else model)
    spec = _item_model_spec(model, item_models, data.item_ids) if item_models else model
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fit = calibrate_items(
                data.scores,
                spec,
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


def _item_model_spec(default: str, pairs, item_ids: list[str]) -> dict[str, str]:
    """{item id: model} from ``--item-model ITEM=MODEL`` options, ``default`` for the rest."""
    spec = dict.fromkeys(item_ids, default)
    for pair in pairs:
        item, sep, name = pair.partition("=")
        if not sep or not item.strip() or not name.strip():
            raise click.BadParameter(f"{pair!r} is not ITEM=MODEL", param_hint="--item-model")
        if item.strip() not in spec:
            raise click.BadParameter(
                f"item {item.strip()!r} is not a column of the responses", param_hint="--item-model"
            )
        if name.strip().lower() not in MODELS:
            raise click.BadParameter(
                f"model {name.strip()!r} is not one of {', '.join(MODELS)}",
                param_hint="--item-model",
            )
        spec[item.strip()] = name.strip().lower()
    return spec


@click.command("score")
@click.argument("responses", type=click.Path(dir_okay=False))
@_params_option("Calibration JSON written by `calibrate`.")
@click.option(
    "--method",
    type=click.Choice(METHODS, case_sensitive=False),
    default="eap",
    show_default=True,
    help="Ability estimator.",
)
@_out_option
def score(responses, params_path, method, out):
    """Estimate ability for every person in RESPONSES with calibrated item parameters."""
    ids, params, _ = _read_params(params_path)
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
@_out_option
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


@click.command("conversion-table")
@click.argument("params_path", metavar="PARAMS", type=click.Path(dir_okay=False))
@click.option(
    "--slope", type=float, default=1.0, show_default=True, help="Scale = slope * theta + intercept."
)
@click.option("--intercept", type=float, default=0.0, show_default=True, help="See --slope.")
@click.option("--decimals", type=int, default=None, help="Round scale scores to N decimals.")
@click.option("--scale-min", type=float, default=None, help="Lowest reported scale score.")
@click.option("--scale-max", type=float, default=None, help="Highest reported scale score.")
@click.option(
    "--theta-from",
    type=click.Choice(["eap", "tcc"]),
    default="eap",
    show_default=True,
    help="EAP by summed score, or the test characteristic curve's inverse.",
)
@_out_option
def conversion_table(
    params_path, slope, intercept, decimals, scale_min, scale_max, theta_from, out
):
    """Raw-to-scale conversion table with conditional SEMs for the items in PARAMS (JSON)."""
    _, params, doc = _read_params(params_path)
    limits = None
    if scale_min is not None or scale_max is not None:
        limits = (
            -np.inf if scale_min is None else scale_min,
            np.inf if scale_max is None else scale_max,
        )
    latent_mean, latent_sd = _latent(doc)
    try:
        table = build_conversion_table(
            params,
            scale=(slope, intercept),
            decimals=decimals,
            scale_limits=limits,
            theta_from=theta_from,
            latent_mean=latent_mean,
            latent_sd=latent_sd,
        )
    except PsychometricsError as exc:
        raise click.ClickException(f"{params_path}: {exc}") from exc
    _emit(table.to_dict(), out)


@click.command("equate")
@click.argument("form_x", type=click.Path(dir_okay=False))
@click.argument("form_y", type=click.Path(dir_okay=False))
@click.option(
    "--method",
    type=click.Choice(["true-score", "observed-score"]),
    default="true-score",
    show_default=True,
    help="IRT true-score or observed-score equating.",
)
@_out_option
def equate(form_x, form_y, method, out):
    """Form-Y equivalents of every FORM_X raw score; both calibrations (JSON) on one scale."""
    _, params_x, _ = _read_params(form_x)
    _, params_y, _ = _read_params(form_y)
    try:
        if method == "true-score":
            table = true_score_equating(params_x, params_y)
        else:
            table = observed_score_equating(params_x, params_y)
    except PsychometricsError as exc:
        raise click.ClickException(str(exc)) from exc
    _emit(table.to_dict(), out)


@click.command("model-fit")
@click.argument("responses", type=click.Path(dir_okay=False))
@_params_option("Calibration JSON written by `calibrate` from these responses.")
@_out_option
def model_fit(responses, params_path, out):
    """M2 global fit, local dependence (Q3, LD X2) and reliability of a calibration."""
    ids, params, doc, data = _read_for_params(responses, params_path)
    mu, sd = _latent(doc)
    status = [item.get("status", "estimated") for item in doc["items"]]
    x = data.scores
    out_doc: dict = {"n_persons": int(x.shape[0]), "n_items": len(ids)}
    try:
        out_doc["m2"] = m2(
            x,
            params,
            free=[s == "estimated" for s in status],
            latent_mean=mu,
            latent_sd=sd,
            estimated_latent="fixed" in status,
        ).to_dict()
        out_doc["local_dependence"] = local_dependence(
            x, params, item_ids=ids, latent_mean=mu, latent_sd=sd
        ).to_dict()
        reliability = {"marginal": marginal_reliability(params, latent_mean=mu, latent_sd=sd)}
        complete = ~np.isnan(x).any(axis=1)
        if complete.any():
            summed = summed_score_reliability(x[complete], params, latent_mean=mu, latent_sd=sd)
            reliability["summed_score"] = summed.to_dict()
        out_doc["reliability"] = reliability
    except PsychometricsError as exc:
        raise click.ClickException(f"{responses}: {exc}") from exc
    _emit(out_doc, out)


@click.command("person-fit")
@click.argument("responses", type=click.Path(dir_okay=False))
@_params_option("Calibration JSON written by `calibrate`.")
@click.option(
    "--method",
    type=click.Choice(METHODS),
    default="eap",
    show_default=True,
    help="Ability estimates the statistics are taken at.",
)
@click.option("--all-persons", is_flag=True, help="List every person, not only the flagged ones.")
@_out_option
def person_fit_command(responses, params_path, method, all_persons, out):
    """Person fit (lz / Zh, infit, outfit) with its flag list, and item infit/outfit."""
    ids, params, _, data = _read_for_params(responses, params_path)
    people = data.person_ids or [str(i + 1) for i in range(data.scores.shape[0])]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            fit = person_fit(data.scores, params, method=method, rules=PersonFitRules())
            items = item_infit_outfit(data.scores, params, theta=fit.theta, item_ids=ids)
    except PsychometricsError as exc:
        raise click.ClickException(f"{responses}: {exc}") from exc
    doc = fit.to_dict()
    listing = [fit.row(i) | {"person": people[i]} for i in range(len(people))]
    doc["persons"] = listing if all_persons else fit.flag_list(people)
    doc["flagged"] = [people[i] for i in fit.flagged]
    doc["n_persons"] = len(people)
    doc["method"] = method
    doc["items"] = [i.to_dict() for i in items]
    _emit(doc, out)


def _read_ratings(path: str, item_ids: list[str]):
    """Angoff ratings CSV -> (rounds x panelists x items array, panelist ids).

    Header: ``panelist``, an optional ``round`` column, then one column per item of the reference
    form (every item, any order). One row per panelist and round.
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except OSError as exc:
        raise click.ClickException(f"{path}: {exc.strerror or exc}") from exc
    if not rows:
        raise click.ClickException(f"{path}: the file is empty")
    header = [h.strip() for h in rows[0]]
    if not header or header[0] != "panelist":
        raise click.ClickException(f"{path}: row 1: the first column must be 'panelist'")
    has_round = len(header) > 1 and header[1] == "round"
    cols = header[2:] if has_round else header[1:]
    unknown = [c for c in cols if c not in item_ids]
    missing = [i for i in item_ids if i not in cols]
    if unknown or missing:
        raise click.ClickException(
            f"{path}: row 1: the item columns must be the reference form's items; "
            + (f"unknown {', '.join(unknown[:5])}; " if unknown else "")
            + (f"missing {', '.join(missing[:5])}" if missing else "")
        )
    order = [cols.index(i) for i in item_ids]
    offset = 2 if has_round else 1
    table: dict[int, dict[str, list[float]]] = {}
    for r, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise click.ClickException(
                f"{path}: row {r}: {len(row)} cells, header has {len(header)}"
            )
        who = row[0].strip()
        try:
            rnd = int(row[1]) if has_round else 1
        except ValueError:
            raise click.ClickException(f"{path}: row {r}, column round: not an integer") from None
        values = []
        for k in order:
            try:
                values.append(float(row[offset + k]))
            except ValueError:
                raise click.ClickException(
                    f"{path}: row {r}, column {cols[k]}: {row[offset + k]!r} is not a number"
                ) from None
        if who in table.setdefault(rnd, {}):
            raise click.ClickException(f"{path}: row {r}: panelist {who!r} rated round {rnd} twice")
        table[rnd][who] = values
    if not table:
        raise click.ClickException(f"{path}: no ratings")
    rounds = sorted(table)
    panelists = list(table[rounds[0]])
    for rnd in rounds:
        if set(table[rnd]) != set(panelists):
            raise click.ClickException(
                f"{path}: round {rnd} does not have the same panelists as round {rounds[0]}"
            )
    data = np.array([[table[rnd][p] for p in panelists] for rnd in rounds])
    return data, panelists


@click.command("cut-score")
@click.argument("ratings", type=click.Path(dir_okay=False))
@_params_option("Calibration JSON of the reference form the panel rated.")
@click.option(
    "--form",
    "forms",
    multiple=True,
    metavar="NAME=FIT.json",
    help="Another form (calibration on the same scale) to carry the cut to (repeatable).",
)
@click.option("--yes-no", is_flag=True, help="Ratings are Yes/No (0/1) judgments.")
@click.option(
    "--rounding",
    type=click.Choice(ROUNDING_RULES),
    default="ceil",
    show_default=True,
    help="How the expected score at the theta cut becomes a whole raw cut.",
)
@click.option(
    "--scale-cut", type=float, default=350.0, show_default=True, help="Scale score at the cut."
)
@click.option(
    "--scale-slope",
    type=float,
    default=50.0,
    show_default=True,
    help="Scale points per theta unit.",
)
@click.option(
    "--scale-min", type=float, default=100.0, show_default=True, help="Lowest scale score."
)
@click.option(
    "--scale-max", type=float, default=500.0, show_default=True, help="Highest scale score."
)
@_out_option
def cut_score(
    ratings, params_path, forms, yes_no, rounding, scale_cut, scale_slope, scale_min, scale_max, out
):
    """Angoff cut from RATINGS (CSV: panelist[,round],item...) carried to theta and every form,
    with Rudner and Lee decision accuracy/consistency and the CSEM at the cut."""
    ids, params, doc = _read_params(params_path)
    data, panelists = _read_ratings(ratings, ids)
    all_forms = {"reference": params}
    for spec in forms:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise click.ClickException(f"--form {spec!r}: expected NAME=FIT.json")
        if name in all_forms:
            raise click.ClickException(f"--form {spec!r}: form name {name!r} given twice")
        all_forms[name] = _read_params(path)[1]
    mean, sd = _latent(doc)
    try:
        angoff = angoff_cut(
            data,
            item_max=params.n_categories - 1,
            yes_no=yes_no,
            panelist_ids=panelists,
            item_ids=ids,
        )
        theta_c = theta_cut_from_raw(params, angoff.cut)
        scale = ScaleTransform(theta_c, scale_cut, scale_slope, (scale_min, scale_max), 0)
        carried = carry_cut(theta_c, all_forms, rounding=rounding, scale=scale)
        decisions = {}
        for f in carried.forms:
            p = all_forms[f.form]
            decisions[f.form] = {
                "rudner": rudner(theta_c, params=p, latent_mean=mean, latent_sd=sd).to_dict(),
                "lee": lee(p, f.raw_cut, latent_mean=mean, latent_sd=sd).to_dict(),
                "at_cut": cut_report(
                    p, theta_c, raw_cut=f.raw_cut, latent_mean=mean, latent_sd=sd
                ).to_dict(),
            }
    except PsychometricsError as exc:
        raise click.ClickException(f"{ratings}: {exc}") from exc
    _emit({"angoff": angoff.to_dict(), "carried": carried.to_dict(), "decisions": decisions}, out)


COMMANDS = (
    calibrate,
    score,
    item_analysis,
    conversion_table,
    equate,
    model_fit,
    person_fit_command,
    cut_score,
)


def register(group: click.Group) -> None:
    """Add the psychometrics commands (``COMMANDS``) to the application's click group."""
    for command in COMMANDS:
        group.add_command(command)


@click.group("psychometrics")
def main() -> None:
    """Microcred psychometrics: calibrate, score, analyse items, equate, check model and person
    fit, set and carry cut scores."""


register(main)

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
