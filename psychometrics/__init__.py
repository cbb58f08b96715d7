"""Microcred psychometrics: classical item analysis, IRT calibration, scoring, fit, DIF, linking.

A pure numerical library (numpy, scipy): arrays in, plain results out, every result a dataclass
with ``to_dict()``. Response matrices are persons x items with NaN for items not presented.
"""

from psychometrics.calibration import Calibration, calibrate, likelihood_ratio_test
from psychometrics.irt.models import ItemParameters

__all__ = ["Calibration", "ItemParameters", "calibrate", "likelihood_ratio_test"]
