"""What the item bank brings to every Microcred process (see ``microcred.packages``): its
tables, its migration branch (``itembank``; the tables it started with were created by the
foundation's first revision, which the branch depends on) and its screens (``itembank.web``:
the item list, the editor and the review queue; it also plugs in ``itembank.builder``: the
blueprint editor and the form builder)."""
from microcred.packages import Package

PACKAGE = Package(name="itembank", order=10, models=("itembank.models",),
                  migrations="migrations", web="itembank.web:init_app",
                  cli="itembank.cli:register")
