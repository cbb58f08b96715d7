"""Proctoring: identity checks, live proctor sessions, integrity events, flags and risk, proctor
actions, post-exam review, the hash-chained audit log, and the pluggy hook specification through
which outside proctoring services plug in.

Domain modules (``states``, ``audit``, ``hooks``, ``flags``, ``faces``, ``images``, ``identity``,
``events``, ``sessions``, ``review``, ``assignments``) import only the shared base
(``microcred``). The wiring to the exam runner lives in ``proctoring.wiring`` (the one module
beside the views that imports ``assessment``), the views in ``proctoring.console`` and
``proctoring.candidate``, and ``proctoring.web.init_app`` registers them.
"""
