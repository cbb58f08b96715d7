"""The JSON API described in OpenAPI 3, served at ``/api/openapi.json``.

The document (``openapi.json`` beside this module) is written by hand: it says what each JSON
route accepts, and the test suite fuzzes every route it describes with schemathesis, and checks
that every JSON route of the app is in it. A package left out of an installation (proctoring,
credentials) leaves its paths out of the served document.
"""
from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, current_app

DOCUMENT = Path(__file__).with_name("openapi.json")

bp = Blueprint("api_docs", __name__)


@cache
def _written() -> dict[str, Any]:
    return json.loads(DOCUMENT.read_text(encoding="utf-8"))


def openapi_path(rule: str) -> str:
    """``/status/<int:list_id>/<purpose>`` -> ``/status/{list_id}/{purpose}``."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def document(app: Flask) -> dict[str, Any]:
    written = _written()
    routed = {openapi_path(rule.rule) for rule in app.url_map.iter_rules()}
    return {**written, "paths": {p: v for p, v in written["paths"].items() if p in routed}}


@bp.get("/api/openapi.json")
def openapi() -> dict[str, Any]:
    return document(current_app)
