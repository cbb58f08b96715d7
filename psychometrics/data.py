"""Response data: validation of persons x items score matrices, CSV reading with row and column
errors, and collapsing of identical response patterns.

Convention everywhere in :mod:`psychometrics`: a response matrix is a float array of shape
(persons, items) holding non-negative integer scores, with NaN where an item was not presented
(LOFT forms, pretest items, several forms). Missing-by-design cells are never imputed.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass

import numpy as np

from psychometrics.errors import ResponseDataError
from psychometrics.irt.models import DICHOTOMOUS_MODELS

MAX_CATEGORIES = 50
CHECK_BLOCK = 10_000


@dataclass
class ResponseMatrix:
    """Scores read from a file: ``scores`` (N, J) float with NaN for not presented."""

    scores: np.ndarray
    item_ids: list[str]
    person_ids: list[str] | None = None


def check_responses(
    responses, *, model: str | None = None, name: str = "responses", min_persons: int = 1
) -> np.ndarray:
    """Validate a persons x items score matrix and return it as float64 with NaN for missing.

    Raises :class:`ResponseDataError` naming ``name`` and the (0-based) row and column at fault.
    Dichotomous models accept only 0 and 1; other uses accept integers 0..MAX_CATEGORIES-1.
    """
    try:
        x = np.asarray(responses, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ResponseDataError(f"{name} must be a numeric persons x items array ({exc})") from exc
    if x.ndim != 2:
        raise ResponseDataError(f"{name} must be 2-dimensional (persons x items); got {x.ndim}-d")
    if x.shape[0] < min_persons:
        raise ResponseDataError(f"{name} has no persons (need at least {min_persons})")
    if x.shape[1] == 0:
        raise ResponseDataError(f"{name} has no items")
    upper = 1 if model in DICHOTOMOUS_MODELS else MAX_CATEGORIES - 1
    any_observed = False
    # row blocks keep the temporaries small for 100,000-person matrices
    for start in range(0, x.shape[0], CHECK_BLOCK):
        block = x[start : start + CHECK_BLOCK]
        bad = np.isinf(block)
        if bad.any():
            i, j = np.argwhere(bad)[0]
            raise ResponseDataError(
                f"{name} holds an infinite score", row=int(start + i), column=int(j)
            )
        obs = ~np.isnan(block)
        any_observed = any_observed or bool(obs.any())
        vals = np.where(obs, block, 0.0)
        bad = obs & ((vals != np.round(vals)) | (vals < 0) | (vals > upper))
        if bad.any():
            i, j = np.argwhere(bad)[0]
            allowed = "0 or 1" if upper == 1 else f"an integer 0..{upper}"
            raise ResponseDataError(
                f"{name} score {block[i, j]!r} is not {allowed}"
                + (f" (model {model!r})" if model else ""),
                row=int(start + i),
                column=int(j),
            )
    if not any_observed:
        raise ResponseDataError(f"{name} has no observed scores")
    return x


def read_responses_csv(source, *, model: str | None = None) -> ResponseMatrix:
    """Read a responses CSV: a header of item ids, an optional first column ``person_id``, one
    row per person, integer scores, an empty cell meaning not presented.

    Errors name the file row (the header is row 1) and the column (1-based number and header).
    """
    text = _read_text(source)
    rows = list(csv.reader(io.StringIO(text)))
    while rows and not any(cell.strip() for cell in rows[-1]):
        rows.pop()
    if not rows:
        raise ResponseDataError("the file is empty: expected a header row of item ids", row=1)
    header = [h.strip() for h in rows[0]]
    has_person = bool(header) and header[0].lower() == "person_id"
    first = 1 if has_person else 0
    item_ids = header[first:]
    if not item_ids:
        raise ResponseDataError("the header names no items", row=1)
    seen: dict[str, int] = {}
    for pos, item in enumerate(item_ids, start=first + 1):
        if not item:
            raise ResponseDataError("empty item id in the header", row=1, column=pos)
        if item in seen:
            raise ResponseDataError(
                f"duplicate item id {item!r} (also column {seen[item]})", row=1, column=pos
            )
        seen[item] = pos
    body = rows[1:]
    if not body:
        raise ResponseDataError("no persons: the file has a header but no data rows", row=2)
    n_items = len(item_ids)
    scores = np.full((len(body), n_items), np.nan)
    person_ids: list[str] | None = [] if has_person else None
    upper = 1 if model in DICHOTOMOUS_MODELS else MAX_CATEGORIES - 1
    for r, row in enumerate(body):
        line = r + 2
        if len(row) != len(header):
            raise ResponseDataError(
                f"ragged row: {len(row)} cells where the header has {len(header)}", row=line
            )
        if person_ids is not None:
            person_ids.append(row[0].strip())
        for c, cell in enumerate(row[first:]):
            cell = cell.strip()
            if cell == "":
                continue
            col = f"{c + first + 1} ({item_ids[c]})"
            try:
                value = int(cell)
            except ValueError:
                raise ResponseDataError(
                    f"score {cell!r} is not an integer", row=line, column=col
                ) from None
            if value < 0 or value > upper:
                allowed = "0 or 1" if upper == 1 else f"0..{upper}"
                raise ResponseDataError(
                    f"score {value} is outside the item's categories ({allowed}"
                    + (f" for model {model!r})" if model else ")"),
                    row=line,
                    column=col,
                )
            scores[r, c] = value
    if np.isnan(scores).all():
        raise ResponseDataError("no persons with any observed score", row=2)
    return ResponseMatrix(scores=scores, item_ids=item_ids, person_ids=person_ids)


def _read_text(source) -> str:
    if hasattr(source, "read"):
        data = source.read()
        return data.decode("utf-8-sig") if isinstance(data, bytes) else data
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"source must be a path or a file object, got {type(source).__name__}")
    with open(source, encoding="utf-8-sig", newline="") as fh:
        return fh.read()


@dataclass
class ResponsePatterns:
    """Distinct response patterns of a score matrix, the unit the EM algorithm works on.

    ``codes`` (U, J) int16 with -1 for not presented; ``freq`` (U,) how many persons share each
    pattern; ``inverse`` (N,) maps persons to patterns; ``indicators[k-1]`` (U, J) float32 is 1 where
    the score is k (k >= 1); ``observed`` (U, J) float32 is 1 where presented, or None when every
    cell is observed (a fast path: no masks in the E-step).
    """

    codes: np.ndarray
    freq: np.ndarray
    inverse: np.ndarray
    n_cat: np.ndarray
    indicators: list[np.ndarray]
    observed: np.ndarray | None

    @property
    def n_persons(self) -> int:
        return int(self.inverse.size)

    @property
    def n_items(self) -> int:
        return int(self.codes.shape[1])

    def observed_mask(self) -> np.ndarray:
        if self.observed is None:
            return np.ones(self.codes.shape, dtype=float)
        return self.observed


def collapse_patterns(
    x: np.ndarray, n_cat: np.ndarray | None = None, collapse: bool = True
) -> ResponsePatterns:
    """Group identical rows of a validated score matrix ``x`` (N, J)."""
    codes = np.empty(x.shape, dtype=np.int16)
    for i in range(0, x.shape[0], CHECK_BLOCK):
        block = x[i : i + CHECK_BLOCK]
        codes[i : i + CHECK_BLOCK] = np.where(np.isnan(block), -1, block)
    if collapse and codes.shape[1] > 16:
        # sorting long rows is wasted when nearly every pattern is unique; a random projection
        # bounds the number of distinct rows from below at the cost of one product
        weights = np.random.default_rng(0).random(codes.shape[1])
        key = np.concatenate(
            [
                codes[i : i + CHECK_BLOCK].astype(np.float64) @ weights
                for i in range(0, codes.shape[0], CHECK_BLOCK)
            ]
        )
        collapse = np.unique(key).size < 0.8 * codes.shape[0]
    if collapse:
        uniq, inverse, freq = np.unique(codes, axis=0, return_inverse=True, return_counts=True)
        inverse = inverse.reshape(-1)
    else:
        uniq, inverse, freq = codes, np.arange(codes.shape[0]), np.ones(codes.shape[0], int)
    if n_cat is None:
        n_cat = np.maximum(codes.max(axis=0), 1) + 1
    n_cat = np.asarray(n_cat, dtype=int)
    k_max = int(n_cat.max())
    # 0/1 matrices are exact in float32 and take half the memory (160 -> 80 MB at 100,000 x 200);
    # the products that use them are carried out in float64, a pattern block at a time
    indicators = [(uniq == k).astype(np.float32) for k in range(1, k_max)]
    observed = None if (uniq >= 0).all() else (uniq >= 0).astype(np.float32)
    return ResponsePatterns(
        codes=uniq,
        freq=freq.astype(float),
        inverse=inverse,
        n_cat=n_cat,
        indicators=indicators,
        observed=observed,
    )
