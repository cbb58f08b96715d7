"""WLE standard errors: 1/sqrt(information) and the curvature ("hessian") definition mirt uses.

mirt's ``fscores(method = "WLE")`` maximises log L + log sqrt(I(theta)) with ``nlm`` and reports
1 / sqrt of the numerical Hessian of that criterion (R/fscores.internal.R, ``WLE.mirt``). No
published WLE standard error for a data set we can ship was found, so the check is against
that definition computed independently here: a numerical second derivative of the criterion
on the LSAT7 2PL (for the 2PL Warm's J equals I', so the criteria coincide).
"""

from __future__ import annotations

import numpy as np
import pytest

from psychometrics import ItemParameters, calibrate, test_information, theta_wle


def _criterion(x, params, t):
    p = params.prob(np.atleast_1d(t))[:, 1, 0]
    loglik = np.sum(x * np.log(p) + (1 - x) * np.log1p(-p))
    return loglik + 0.5 * np.log(test_information(params, t)[0])


def test_hessian_se_is_the_curvature_of_mirts_wle_criterion(lsat7, sim):
    params = calibrate(lsat7, "2pl", tol=1e-6).params
    patterns = sim.lsat6_patterns()[[0, 5, 13, 22, 31]]
    est = theta_wle(patterns, params, se="hessian")
    assert est.se_method == "hessian" and est.to_dict()["se_method"] == "hessian"
    h = 1e-3
    for x, t, se in zip(patterns, est.theta, est.se):
        curv = (
            _criterion(x, params, t + h)
            - 2 * _criterion(x, params, t)
            + _criterion(x, params, t - h)
        ) / h**2
        assert se == pytest.approx(1 / np.sqrt(-curv), rel=1e-4)
    info = theta_wle(patterns, params)
    assert info.se_method == "information"
    np.testing.assert_allclose(info.theta, est.theta)
    np.testing.assert_allclose(
        info.se, 1 / np.sqrt(test_information(params, info.theta)), rtol=1e-6
    )
    # the curvature adds the penalty's own curvature: the two definitions differ, modestly
    assert np.all(np.abs(est.se / info.se - 1) < 0.3) and np.any(
        np.abs(est.se / info.se - 1) > 1e-3
    )


def test_hessian_se_for_gpcm_items_matches_the_criterion_too(sim):
    """For the GPCM (an exponential family) Warm's J is also I', so the definitions agree."""
    x, true = sim.polytomous(4, 8, 4, model="gpcm", seed=2)
    params = ItemParameters("gpcm", true["a"], true["b"])
    est = theta_wle(x, params, se="hessian")

    def criterion(row, t):
        logp = params.log_prob(np.atleast_1d(t))[:, :, 0]
        loglik = logp[np.arange(row.size), row.astype(int)].sum()
        return loglik + 0.5 * np.log(test_information(params, t)[0])

    h = 1e-3
    for row, t, se in zip(x, est.theta, est.se):
        curv = (criterion(row, t + h) - 2 * criterion(row, t) + criterion(row, t - h)) / h**2
        assert se == pytest.approx(1 / np.sqrt(-curv), rel=1e-3)


def test_bad_se_name_is_refused():
    params = ItemParameters("2pl", [1.0, 1.0], [0.0, 1.0])
    with pytest.raises(ValueError, match="se must be one of"):
        theta_wle([[1, 0]], params, se="sandwich")
