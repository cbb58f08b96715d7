"""Shared foundations every Microcred package may import: the database base and the signals.

This package holds only what the domain packages (``itembank``, ``proctoring``, ``credentials``)
need in common without depending on the Flask application in ``assessment``.
"""
