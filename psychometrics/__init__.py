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
    select_anchor,
)
from psychometrics.equating import (
    ConversionTable,
    EquatingTable,
    conversion_table,
    equipercentile,
    observed_score_distribution,
    observed_score_equating,
    raw_for_theta,
    raw_score_sem,
    theta_for_raw,
    true_score_equating,
)
from psychometrics.errors import (
    CalibrationWarning,
    ConvergenceWarning,
    PsychometricsError,
    ResponseDataError,
)
from psychometrics.fit import s_x2
from psychometrics.global_fit import M2Fit, m2
from psychometrics.irt.information import (
    conditional_sem,
    item_information,
    test_characteristic_curve,
    test_information,
)
from psychometrics.irt.models import ItemParameters
from psychometrics.linking import AnchorDrift, LinkingConstants, anchor_drift, link
from psychometrics.local_dependence import (
    LDChi2,
    LocalDependence,
    ld_chi2,
    local_dependence,
    yen_q3,
)
from psychometrics.multigroup import (
    IRTLikelihoodRatioDIF,
    MultipleGroupCalibration,
    calibrate_groups,
    irt_lr_dif,
)
from psychometrics.personfit import PersonFit, PersonFitRules, person_fit
from psychometrics.rasch import ItemResidualFit, WrightMap, item_infit_outfit, wright_map
from psychometrics.reliability import (
    ConditionalSEMCurve,
    SummedScoreReliability,
    conditional_sem_curve,
    empirical_reliability,
    marginal_reliability,
    summed_score_reliability,
)
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
    "ConditionalSEMCurve",
    "ConvergenceWarning",
    "ConversionTable",
    "DIFPurification",
    "EquatingTable",
    "FlagRules",
    "IRTLikelihoodRatioDIF",
    "ItemAnalysis",
    "ItemParameters",
    "ItemResidualFit",
    "LDChi2",
    "LikelihoodRatioTest",
    "LinkingConstants",
    "LocalDependence",
    "M2Fit",
    "MantelHaenszelTest",
    "MultipleGroupCalibration",
    "PersonFit",
    "PersonFitRules",
    "PolytomousDIFResult",
    "PsychometricsError",
    "ResponseDataError",
    "ResponseMatrix",
    "SummedScoreReliability",
    "SummedScoreTable",
    "WrightMap",
    "anchor_drift",
    "calibrate",
    "calibrate_groups",
    "check_responses",
    "cochran_mantel_haenszel",
    "conditional_sem",
    "conditional_sem_curve",
    "conversion_table",
    "cronbach_alpha",
    "empirical_reliability",
    "equipercentile",
    "irt_lr_dif",
    "item_analysis",
    "item_infit_outfit",
    "item_information",
    "ld_chi2",
    "likelihood_ratio_test",
    "link",
    "local_dependence",
    "logistic_dif",
    "lord_wingersky",
    "m2",
    "mantel_haenszel",
    "mantel_haenszel_test",
    "marginal_reliability",
    "observed_score_distribution",
    "observed_score_equating",
    "ordinal_logistic_dif",
    "parameters_from_dict",
    "person_fit",
    "polytomous_dif",
    "purify_dif",
    "raw_for_theta",
    "raw_score_sem",
    "read_responses_csv",
    "s_x2",
    "score",
    "select_anchor",
    "summed_score_reliability",
    "summed_score_table",
    "test_characteristic_curve",
    "test_information",
    "theta_eap",
    "theta_for_raw",
    "theta_map",
    "theta_mle",
    "theta_wle",
    "true_score_equating",
    "wright_map",
    "yen_q3",
]
