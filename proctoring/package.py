"""What proctoring brings to every Microcred process (see ``microcred.packages``)."""
from microcred.packages import Package

PACKAGE = Package(
    name="proctoring",
    order=20,
    models=("proctoring.models",),
    migrations="migrations",
    receivers="proctoring.wiring:connect_receivers",
    web="proctoring.web:init_app",
    cli="proctoring.cli:register",
    policy={"proctoring": "proctoring.policy:parse_policy"},
    jobs=("proctoring.hook_outbox",),
    writes=("proctoring.hotwrites",),
)
