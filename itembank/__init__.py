"""The item bank: items and their immutable published versions, item types, blueprints, forms."""
