"""What the psychometrics library brings to the ``microcred`` command (see
``microcred.packages``): ``calibrate``, ``score``, ``item-analysis``, ``conversion-table``,
``equate`` and ``model-fit``."""
from microcred.packages import Package

PACKAGE = Package(name="psychometrics", order=40, cli="psychometrics.cli:register")
