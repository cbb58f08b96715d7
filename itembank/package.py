"""What the item bank brings to every Microcred process (see ``microcred.packages``): its
tables, its migration branch (``itembank``; the tables it started with were created by the
foundation's first revision, which the branch depends on), its views (``itembank.web``: media,
the item preview and the rendering of items; ``itembank.builder``: the blueprint editor and the
form builder) and its commands."""
from microcred.packages import Package

PACKAGE = Package(name="itembank", order=10, models=("itembank.models", "itembank.qti.uploads"),
                  migrations="migrations", web="itembank.web:init_app",
                  cli="itembank.cli:register")
