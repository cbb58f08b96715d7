"""What credentials bring to every Microcred process (see ``microcred.packages``)."""
from microcred.packages import Package

PACKAGE = Package(
    name="credentials",
    order=30,
    models=("credentials.models", "credentials.renewal_models"),
    migrations="migrations",
    receivers="credentials.issuance:connect_receivers",
    web="credentials.web:init_app",
    cli="credentials.cli:register",
    jobs=("credentials.jobs", "credentials.reminders"),
)
