"""CSV reading with row/column errors, and the command line through CliRunner and a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import numpy as np
import pytest
from click.testing import CliRunner

from psychometrics import calibrate
from psychometrics.cli import main, register
from psychometrics.data import read_responses_csv
from psychometrics.errors import ResponseDataError

ROOT = Path(__file__).resolve().parents[2]


def calibrate_to_file(runner: CliRunner, path: Path) -> Path:
    """Calibrate the responses CSV at ``path`` with the ``calibrate`` command into ``fit.json``
    beside it (the ``--params`` file of the other commands)."""
    fit_path = path.parent / "fit.json"
    result = runner.invoke(main, ["calibrate", str(path), "--out", str(fit_path)])
    assert result.exit_code == 0, result.output
    return fit_path


def write_csv(path, x, ids=None, person=True):
    ids = ids or [f"q{j + 1}" for j in range(x.shape[1])]
    lines = [",".join((["person_id"] if person else []) + ids)]
    for i, row in enumerate(x):
        cells = ["" if np.isnan(v) else str(int(v)) for v in row]
        lines.append(",".join(([f"p{i + 1}"] if person else []) + cells))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    "text, row, column, message",
    [
        ("q1,q2\n1,0\n1\n", 3, None, "ragged row"),
        ("person_id,q1,q2\np1,1,0\np2,1,x\n", 3, "3 (q2)", "not an integer"),
        ("q1,q2\n1,0\n2,1\n", 3, "1 (q1)", "outside the item's categories"),
        ("q1,q2\n", 2, None, "no persons"),
        ("q1,q2,q1\n1,0,1\n", 1, 3, "duplicate item id 'q1'"),
        ("q1,q2\n1,0.5\n", 2, "2 (q2)", "not an integer"),
    ],
)
def test_bad_csv_names_row_and_column(tmp_path, text, row, column, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(ResponseDataError, match=message) as info:
        read_responses_csv(path, model="2pl")
    assert info.value.row == row
    assert info.value.column == column


def test_csv_reads_missing_cells_and_person_ids(tmp_path):
    path = tmp_path / "ok.csv"
    path.write_text("person_id,a,b\nx,1,\ny,,0\n")
    data = read_responses_csv(path)
    assert data.item_ids == ["a", "b"] and data.person_ids == ["x", "y"]
    assert np.isnan(data.scores[0, 1]) and data.scores[1, 1] == 0


def test_calibrate_command_prints_the_json_contract(tmp_path, sim):
    x, _ = sim.dichotomous(400, 6, missing=0.1, seed=31)
    path = write_csv(tmp_path / "r.csv", x)
    result = CliRunner().invoke(main, ["calibrate", str(path), "--model", "2pl"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    for key in (
        "model",
        "n_persons",
        "n_items",
        "loglik",
        "aic",
        "bic",
        "converged",
        "iterations",
        "items",
    ):
        assert key in doc
    assert doc["n_persons"] == 400 and doc["n_items"] == 6 and doc["model"] == "2pl"
    item = doc["items"][0]
    for key in ("id", "a", "b", "c", "se_a", "se_b", "se_c"):
        assert key in item
    assert item["id"] == "q1"
    direct = calibrate(x, "2pl", item_ids=[f"q{j + 1}" for j in range(6)]).to_dict()
    assert doc == json.loads(json.dumps(direct))


def test_calibrate_out_file_and_polytomous(tmp_path, sim):
    x, _ = sim.polytomous(300, 4, 3, model="gpcm", seed=32)
    path = write_csv(tmp_path / "p.csv", x, person=False)
    out = tmp_path / "fit.json"
    result = CliRunner().invoke(
        main, ["calibrate", str(path), "--model", "gpcm", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert isinstance(doc["items"][0]["b"], list) and len(doc["items"][0]["b"]) == 2


def test_bad_csv_exits_nonzero_with_position(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("person_id,q1,q2\np1,1,0\np2,1,3\n")
    result = CliRunner().invoke(main, ["calibrate", str(path), "--model", "2pl"])
    assert result.exit_code != 0
    assert "row 3, column 3 (q2)" in result.output


def test_score_and_item_analysis_commands(tmp_path, sim):
    x, true = sim.dichotomous(300, 8, seed=33)
    path = write_csv(tmp_path / "r.csv", x)
    runner = CliRunner()
    fit_path = calibrate_to_file(runner, path)
    result = runner.invoke(main, ["score", str(path), "--params", str(fit_path), "--method", "wle"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["method"] == "wle" and doc["persons"][0]["person_id"] == "p1"
    theta = np.array([p["theta"] for p in doc["persons"]])
    assert np.corrcoef(theta, true["theta"])[0, 1] > 0.7
    result = runner.invoke(main, ["item-analysis", str(path), "--p-min", "0.3"])
    assert result.exit_code == 0, result.output
    ia = json.loads(result.stdout)
    assert ia["flag_rules"]["p_min"] == 0.3 and len(ia["items"]) == 8


def test_register_adds_the_commands_to_a_group():
    group = click.Group("microcred")
    register(group)
    assert {
        "calibrate", "score", "item-analysis", "conversion-table", "equate", "model-fit"
    } <= set(group.commands)


def test_python_dash_m_runs_in_a_real_process(tmp_path, sim):
    x, _ = sim.dichotomous(200, 5, seed=34)
    path = write_csv(tmp_path / "r.csv", x)
    proc = subprocess.run(
        [sys.executable, "-m", "psychometrics", "calibrate", str(path), "--model", "rasch"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["model"] == "rasch"
    bad = tmp_path / "bad.csv"
    bad.write_text("q1,q1\n1,0\n")
    proc = subprocess.run(
        [sys.executable, "-m", "psychometrics", "calibrate", str(bad)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode != 0 and "duplicate item id" in proc.stderr


def test_conversion_table_equate_and_model_fit_commands(tmp_path, sim):
    x, _ = sim.dichotomous(500, 8, seed=35)
    path = write_csv(tmp_path / "r.csv", x)
    runner = CliRunner()
    fit_path = calibrate_to_file(runner, path)
    args = ["conversion-table", str(fit_path), "--slope", "10", "--intercept", "50"]
    result = runner.invoke(main, args + ["--decimals", "0", "--scale-min", "30"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["rows"]
    assert [r["raw"] for r in rows] == list(range(9))
    assert all(r["scale"] >= 30 and r["scale"] == round(r["scale"]) for r in rows)
    assert all(r["csem_scale"] > 0 and r["csem_raw"] > 0 for r in rows)
    result = runner.invoke(main, ["equate", str(fit_path), str(fit_path)])
    assert result.exit_code == 0, result.output
    table = json.loads(result.stdout)
    assert table["method"] == "irt-true-score"
    assert [round(r["equivalent"], 6) for r in table["rows"]] == list(range(9))
    result = runner.invoke(
        main, ["equate", str(fit_path), str(fit_path), "--method", "observed-score"]
    )
    assert result.exit_code == 0 and json.loads(result.stdout)["method"] == "irt-observed-score"
    result = runner.invoke(main, ["model-fit", str(path), "--params", str(fit_path)])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["m2"]["df"] == 36 - 16 and doc["m2"]["M2"] > 0
    assert len(doc["local_dependence"]["pairs"]) == 28
    assert 0 < doc["reliability"]["marginal"] < 1
    assert 0 < doc["reliability"]["summed_score"]["rxx"] < 1
    other = write_csv(tmp_path / "other.csv", x[:, :7])
    result = runner.invoke(main, ["model-fit", str(other), "--params", str(fit_path)])
    assert result.exit_code != 0 and "are not those of" in result.output
