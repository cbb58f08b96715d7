"""Microcred psychometrics: classical item analysis, IRT calibration, scoring, fit, DIF, linking.

A pure numerical library (numpy, scipy): arrays in, plain results out, every result a dataclass
with ``to_dict()``. Response matrices are persons x items with NaN for items not presented.

    >>> from psychometrics import calibrate, theta_eap
    >>> fit = calibrate(X, model="2pl")          # doctest: +SKIP
    >>> theta_eap(X, fit.params).theta            # doctest: +SKIP
"""

from psychometrics.calibration import (
    Calibration,
    LikelihoodRatioTest,
    calibrate,
    likelihood_ratio_test,
    parameters_from_dict,
)
from psychometrics.ctt import FlagRules, ItemAnalysis, cronbach_alpha, item_analysis
from psychometrics.data import ResponseMatrix, check_responses, read_responses_csv
from psychometrics.dif import (
    CochranMantelHaenszel,
    DIFPurification,
    MantelHaenszelTest,
    PolytomousDIFResult,
    cochran_mantel_haenszel,
    logistic_dif,
    mantel_haenszel,
    mantel_haenszel_test,
    ordinal_logistic_dif,
    polytomous_dif,
    purify_dif,
)
from psychometrics.errors import (
    CalibrationWarning,
    ConvergenceWarning,
    PsychometricsError,
    ResponseDataError,
)
from psychometrics.fit import s_x2
from psychometrics.irt.information import (
    conditional_sem,
    item_information,
    test_characteristic_curve,
    test_information,
)
from psychometrics.irt.models import ItemParameters
from psychometrics.linking import AnchorDrift, LinkingConstants, anchor_drift, link
from psychometrics.scoring import (
    AbilityEstimates,
    SummedScoreTable,
    lord_wingersky,
    score,
    summed_score_table,
    theta_eap,
    theta_map,
    theta_mle,
    theta_wle,
)

__all__ = [
    "AbilityEstimates",
    "AnchorDrift",
    "Calibration",
    "CalibrationWarning",
    "CochranMantelHaenszel",
    "ConvergenceWarning",
    "DIFPurification",
    "FlagRules",
    "ItemAnalysis",
    "ItemParameters",
    "LikelihoodRatioTest",
    "LinkingConstants",
    "MantelHaenszelTest",
    "PolytomousDIFResult",
    "PsychometricsError",
    "ResponseDataError",
    "ResponseMatrix",
    "SummedScoreTable",
    "anchor_drift",
    "calibrate",
    "check_responses",
    "cochran_mantel_haenszel",
    "conditional_sem",
    "cronbach_alpha",
    "item_analysis",
    "item_information",
    "likelihood_ratio_test",
    "link",
    "logistic_dif",
    "lord_wingersky",
    "mantel_haenszel",
    "mantel_haenszel_test",
    "ordinal_logistic_dif",
    "parameters_from_dict",
    "polytomous_dif",
    "purify_dif",
    "read_responses_csv",
    "s_x2",
    "score",
    "summed_score_table",
    "test_characteristic_curve",
    "test_information",
    "theta_eap",
    "theta_map",
    "theta_mle",
    "theta_wle",
]
