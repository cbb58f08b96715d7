"""What the item bank brings to every Microcred process (see ``microcred.packages``): its
tables and its migration branch (``itembank``; the tables it started with were created by the
foundation's first revision, which the branch depends on) and its screens (``itembank.builder``:
the blueprint editor and the form builder)."""
from microcred.packages import Package

PACKAGE = Package(name="itembank", order=10, models=("itembank.models", "itembank.qti.uploads"),
                  migrations="migrations", web="itembank.builder:init_app",
                  cli="itembank.cli:register")
