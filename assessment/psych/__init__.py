"""The psychometrician's workspace, one module per idea:

- :mod:`~assessment.psych.views`: the blueprint (``/psych``), thin views that load what each page
  shows in a fixed number of queries;
- :mod:`~assessment.psych.results`: which results count, and the exam overview;
- :mod:`~assessment.psych.response_matrix`: counted results as a persons x item versions matrix;
- :mod:`~assessment.psych.item_statistics`: classical item analysis, pooled and per form;
- :mod:`~assessment.psych.calibration`: IRT calibration of an exam (stores nothing);
- :mod:`~assessment.psych.runs`: calibration runs, their tables, and approving or rejecting them.

The workspace never writes ``ItemParameter`` rows itself: approving a run hands its estimates to
:func:`itembank.parameters.supersede_parameters`, the item bank's one writer of them. Reports and
standard setting join here as modules of their own.
"""
