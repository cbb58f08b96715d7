"""What the foundation brings to every Microcred process (see ``microcred.packages``): users,
exams and delivery's tables, the foundation's migrations, delivery's receiver of a proctor's
review, the records other packages read (``assessment.records``), and the retake rules of an
exam's policy. Its own views and commands are the app and the command themselves."""
from microcred.packages import Package

PACKAGE = Package(
    name="assessment",
    order=0,
    models=("assessment.users", "assessment.signin_throttle", "assessment.exams",
            "assessment.delivery.models", "assessment.psych.runs",
            "assessment.psych.cuts", "assessment.psych.studies",
            "assessment.candidate_attributes", "assessment.psych.report_pdfs"),
    migrations="migrations/versions",
    receivers="assessment.delivery.service:connect_receivers",
    records="assessment.records:RECORDS",
    policy={"retake": "assessment.retakes:parse_retake_policy"},
    jobs=("assessment.psych.jobs",),
    writes=("assessment.delivery.hotpath",),
)
