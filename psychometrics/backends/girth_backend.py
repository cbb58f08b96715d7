"""girth (Ryan Sanchez's GIRTH, 0.8) as an alternative estimation engine: ``backend="girth"``.

girth fits by marginal maximum likelihood too, on items x persons arrays with missing cells
tagged ``girth.INVALID_RESPONSE``. Status under numpy 2.x / scipy 1.17 (checked by the test suite):

* ``onepl_mml`` (our "1pl" and "rasch"), ``twopl_mml`` ("2pl"), ``grm_mml`` ("grm") and
  ``pcm_mml`` (generalized partial credit, "gpcm") run.
* ``threepl_mml`` raises ``ValueError: setting an array element with a sequence`` under numpy 2;
  ``backend="girth"`` with ``model="3pl"`` therefore falls back to the microcred engine and says
  so in a warning and in the result's ``warnings``.

Only the point estimates come from girth; the log-likelihood, AIC/BIC and standard errors are
computed by this library at girth's estimates so the two engines report comparable figures.
"""

from __future__ import annotations

import warnings

import numpy as np

from psychometrics.errors import CalibrationWarning
from psychometrics.irt.models import xi_from_irt

GIRTH_FUNCTIONS = {
    "rasch": "onepl_mml",
    "1pl": "onepl_mml",
    "2pl": "twopl_mml",
    "3pl": "threepl_mml",
    "grm": "grm_mml",
    "gpcm": "pcm_mml",
}


def girth_available() -> bool:
    try:
        import girth  # noqa: F401
    except ImportError:
        return False
    return True


def girth_estimates(x: np.ndarray, model: str, n_quad: int = 61, bound: float = 6.0) -> dict:
    """Call girth's estimator for ``model`` on a persons x items matrix (NaN = missing)."""
    import girth

    data = np.where(np.isnan(x), girth.INVALID_RESPONSE, x).astype(int).T
    fn = getattr(girth, GIRTH_FUNCTIONS[model])
    options = {"quadrature_n": int(n_quad), "quadrature_bounds": (-bound, bound)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(data, options=options)


def girth_xi(x, model, n_cat, width, messages: list[str]) -> np.ndarray | None:
    """Slope-intercept estimates from girth, or None (with a message) when girth fails."""
    name = GIRTH_FUNCTIONS[model]
    if not girth_available():
        msg = "girth is not installed; used the microcred engine"
    else:
        try:
            res = girth_estimates(x, model)
            j = x.shape[1]
            a = np.broadcast_to(np.asarray(res["Discrimination"], dtype=float), (j,)).copy()
            b = np.asarray(res["Difficulty"], dtype=float)
            c = np.asarray(res.get("Guessing", np.zeros(j)), dtype=float)
            if model not in ("grm", "gpcm"):
                return xi_from_irt(model, a, b.reshape(-1), c)
            b = b.reshape(j, -1)
            full = np.full((j, width - 1), np.nan)
            full[:, : min(b.shape[1], width - 1)] = b[:, : width - 1]
            return xi_from_irt(model, a, full)
        except Exception as exc:  # noqa: BLE001 - girth fails with arbitrary numpy errors
            msg = f"girth.{name} failed ({type(exc).__name__}: {exc}); used the microcred engine"
    messages.append(msg)
    warnings.warn(msg, CalibrationWarning, stacklevel=3)
    return None
