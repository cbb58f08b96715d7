"""What the item bank brings to every Microcred process (see ``microcred.packages``): its
tables, migrated for now by the foundation's revisions."""
from microcred.packages import Package

PACKAGE = Package(name="itembank", order=10, models=("itembank.models",))
