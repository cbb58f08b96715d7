"""Import every registered package's models so that ``Base.metadata`` describes the whole
schema (the packages come from ``microcred.packages``)."""
from __future__ import annotations

import importlib

from microcred.db import Base
from microcred.packages import packages


def load_all() -> type[Base]:
    for package in packages():
        for name in package.models:
            importlib.import_module(name)
    return Base
