"""The fast lane: the runner's heartbeat and autosave answered in front of Flask.

Every candidate sends these two all exam long; through Flask each paid for what it does not
need: opening the session and Flask-Login's hooks, the CSRF hook, a Response object, the after
hooks, an ORM session. This WSGI middleware answers exactly those two requests itself, in their
usual case, and hands every other request, and every unusual one, to Flask untouched:

- ``GET /api/attempts/<id>/heartbeat`` and ``POST /api/attempts/<id>/saves`` only (the id as
  Flask's ``int`` converter takes it, within the id range); any other path or method goes on;
- the session cookie is read with Flask's own signing serializer (the app's session interface,
  its salt, key derivation and ``max_age``; a cookie's signature is verified once per process
  and its age at every request); a bad signature, a missing ``_user_id``, a session that fails
  Flask-Login's strong protection (``_id`` against the same identifier of address and user
  agent), one that asks Flask-Login to set or clear the remember cookie, or a permanent one
  (Flask would send it again) goes to Flask;
- a save needs the CSRF token Flask-WTF checks (a ``X-CSRFToken``/``X-CSRF-Token`` header,
  verified with its serializer and salt against the session's token, constant-time); the body
  must be declared JSON, have a length within both limits, be UTF-8 and nest no deeper than
  Flask's parser allows; anything else goes to Flask with the body as it came;
- the statements are the hot path's (:mod:`assessment.delivery.hotpath`), which check in the
  same round trip that the attempt is this user's and that their sign-in still stands; when
  the hot path declines (another's attempt, a finalized one, time up, a pause, a bad save) or
  the database fails, nothing is kept and Flask answers the request from the start, as always;
- the answer is Flask's for the same request: the same JSON (the app's JSON provider), status,
  security headers (``assessment.app.security_headers``), ``Cache-Control: no-store`` and
  ``Vary: Cookie``.

Other packages add their runner's frequent requests through the runner's wiring
(``microcred.web.LaneRoute``: proctoring's camera frames and event batches,
:mod:`proctoring.lane`); the lane hands each route what the two above use: the signed session
and its sign-in (:meth:`HotLane.signed_in`, with :attr:`HotLane.sign_in_holds` for the route's
own statement to check it still stands), the CSRF check, the body within limits, a short read
(:meth:`HotLane.look`) and a write (:meth:`HotLane.write`: the node's writer, the group commit,
or a transaction of its own, as ``microcred.web.write_statements``).

So the lane changes how fast the usual answer comes, never what any answer is; the tests hold
it to that by sending the same requests through the lane and through Flask alone.
The backpressure limit (:mod:`microcred.backpressure`) sits in front of the lane.
"""
from __future__ import annotations

import hmac
import io
import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from hashlib import sha512
from typing import Any

from flask import Flask
from flask.ctx import RequestContext
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import BadData, URLSafeTimedSerializer
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from werkzeug.http import parse_cookie

from assessment.database import unpinged
from assessment.delivery import hotpath
from assessment.delivery.hotpath import SignedIn
from microcred.errors import DomainError
from microcred.inputs import MAX_ID, MAX_JSON_BYTES, MAX_JSON_DEPTH
from microcred.web import LaneRoute, write_statements

_ROUTE = re.compile(r"/api/attempts/([1-9][0-9]{0,9})/(heartbeat|saves)\Z")
#: what the lane keeps of verified cookies and tokens (by their exact text) per process
_MEMO_SIZE = 8192


class _Memo:
    """A bounded map of verified values: the same bytes give the same verdict, so a session
    cookie or CSRF token is verified once per process, not on every beat. Cleared when full."""

    def __init__(self) -> None:
        self._data: dict[Any, Any] = {}
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any:
        return self._data.get(key)

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            if len(self._data) >= _MEMO_SIZE:
                self._data.clear()
            self._data[key] = value


def flask_login_identifier(environ: dict[str, Any]) -> str:
    """Flask-Login's session identifier (``flask_login.utils._create_identifier``) from the WSGI
    environ: sha512 of the first ``X-Forwarded-For`` address (else the peer's) and the user
    agent, each as its bytes' ``repr``, exactly as Flask-Login formats them."""
    address = environ.get("HTTP_X_FORWARDED_FOR", environ.get("REMOTE_ADDR"))
    if address is not None:
        address = address.encode("utf-8").split(b",")[0].strip()
    agent = environ.get("HTTP_USER_AGENT")
    if agent is not None:
        agent = agent.encode("utf-8")
    return sha512(f"{address}|{agent}".encode()).hexdigest()


def _depth(value: Any) -> int:
    """How deep arrays and objects nest in a decoded JSON value (``json_depth``'s count)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict):
            deepest = max(deepest, level)
            stack.extend((v, level + 1) for v in node.values())
        elif isinstance(node, list):
            deepest = max(deepest, level)
            stack.extend((v, level + 1) for v in node)
    return deepest


class HotLane:
    """WSGI middleware in front of Flask's ``wsgi_app`` (see the module's docstring)."""

    def __init__(self, app: Flask, wsgi_app: Callable) -> None:
        self.app, self.wsgi_app = app, wsgi_app
        self.database = app.extensions["microcred.database"]
        self.handled = 0  # answered here (the tests read it)
        interface = app.session_interface
        self._serializer = (interface.get_signing_serializer(app)
                            if type(interface) is SecureCookieSessionInterface else None)
        self._grace = app.config["MICROCRED"].save_grace_seconds
        self._cookies = _Memo()
        self._tokens = _Memo()
        # other packages' frequent requests (proctoring's frames and event batches)
        self.routes: list[LaneRoute] = list(app.extensions["microcred.wiring"].lane_routes)

    # ------------------------------------------------------------------ the WSGI call

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if self._serializer is None or not path.startswith("/api/"):
            return self.wsgi_app(environ, start_response)
        method = environ.get("REQUEST_METHOD")
        answer = None
        match = _ROUTE.match(path) if path.startswith("/api/attempts/") else None
        if match is not None:
            attempt_id, kind = int(match.group(1)), match.group(2)
            if attempt_id <= MAX_ID and self._plain_json():
                if kind == "heartbeat" and method == "GET":
                    answer = self._heartbeat(environ, attempt_id)
                elif kind == "saves" and method == "POST":
                    answer = self._saves(environ, attempt_id)
        else:
            for route in self.routes:
                if method == route.method and path.startswith(route.prefix):
                    found = route.pattern.fullmatch(path)
                    if found is not None:
                        if self._plain_json():
                            answer = route.answer(self, environ, found)
                        break
        if answer is None:
            return self.wsgi_app(environ, start_response)
        self.handled += 1
        body = (self.app.json.dumps(answer, separators=(",", ":")) + "\n").encode()
        start_response("200 OK", [
            ("Content-Type", "application/json"), ("Content-Length", str(len(body))),
            *self.app.extensions["microcred.security_headers"],
            ("Cache-Control", "no-store"), ("Vary", "Cookie")])
        return [body]

    def _plain_json(self) -> bool:
        """Flask's JSON answers are compact (not in debug mode, not when configured not to):
        the lane writes them so; otherwise Flask answers."""
        compact = getattr(self.app.json, "compact", None)
        return compact is True or (compact is None and not self.app.debug)

    # ------------------------------------------------------------------ who is asking

    def signed_in(self, environ: dict[str, Any]) -> tuple[dict[str, Any], SignedIn] | None:
        """The signed session (:meth:`_session`) and the sign-in it names, when both pass what
        Flask and Flask-Login check of the cookie; whether that sign-in still stands is the
        database's to say (``sign_in_holds``, inside the route's own statement)."""
        session = self._session(environ)
        who = session and hotpath.signed_in_as(session.get("_user_id"))
        return (session, who) if who else None

    def posting(self, environ: dict[str, Any]) -> SignedIn | None:
        """The sign-in of a request that writes: :meth:`signed_in` with the CSRF token Flask-WTF
        would check (checked before the body is read: a stranger's body goes to Flask unread)."""
        signed = self.signed_in(environ)
        return signed[1] if signed is not None and self.csrf_ok(environ, signed[0]) else None

    #: a SQL condition: the sign-in ``signed_in`` gave still stands, an active candidate
    #: with that sign-in's generation (what ``load_signed_in_user`` and
    #: ``role_required("candidate")`` check), with ``SignedIn.params()`` as its parameters
    sign_in_holds = hotpath.SIGN_IN_HOLDS

    def _session(self, environ: dict[str, Any]) -> dict[str, Any] | None:
        """The signed session's contents, when they pass what Flask and Flask-Login check."""
        raw = environ.get("HTTP_COOKIE")
        if not raw:
            return None
        name = self.app.config["SESSION_COOKIE_NAME"]
        value = parse_cookie(raw).get(name)
        if not value:
            return None
        max_age = int(self.app.permanent_session_lifetime.total_seconds())
        known = self._cookies.get(value)
        if known is None:
            try:
                data, signed_at = self._serializer.loads(value, max_age=max_age,
                                                         return_timestamp=True)
            except BadData:
                return None
            if not isinstance(data, dict):
                return None
            known = (data, int(signed_at.timestamp()))
            self._cookies.put(value, known)
        data, signed_at = known
        # the signature was verified once; its age is checked each time, as itsdangerous does
        if not 0 <= int(time.time()) - signed_at <= max_age:
            return None
        if ("_remember" in data or "_permanent" in data
                or data.get("_id") != flask_login_identifier(environ)):
            # Flask-Login acts on these (strong protection, the remember cookie); Flask sends
            # a permanent session's cookie again on every answer
            return None
        return data

    def csrf_ok(self, environ: dict[str, Any], session: dict[str, Any]) -> bool:
        config = self.app.config
        if config.get("WTF_CSRF_FIELD_NAME", "csrf_token") != "csrf_token":
            return False
        token = None
        for header in config.get("WTF_CSRF_HEADERS", ["X-CSRFToken", "X-CSRF-Token"]):
            token = environ.get("HTTP_" + header.upper().replace("-", "_"))
            if token:
                break
        expected = session.get("csrf_token")
        if not token or not isinstance(expected, str):
            return False
        signed = self._tokens.get(token)
        if signed is None:
            secret = config.get("WTF_CSRF_SECRET_KEY") or self.app.secret_key
            limit = config.get("WTF_CSRF_TIME_LIMIT", 3600)
            try:
                signed = URLSafeTimedSerializer(secret, salt="wtf-csrf-token").loads(
                    token, max_age=limit)
            except BadData:
                return False
            if limit is None and isinstance(signed, str):  # no expiry: the verdict stands
                self._tokens.put(token, signed)
        return isinstance(signed, str) and hmac.compare_digest(expected, signed)

    # ------------------------------------------------------------------ the two requests

    def _heartbeat(self, environ: dict[str, Any], attempt_id: int) -> dict[str, Any] | None:
        signed = self.signed_in(environ)
        if signed is None:
            return None
        session, who = signed
        # other packages' heartbeat parts build URLs (url_for): a request context for them
        ctx = RequestContext(self.app, environ,
                             session=self.app.session_interface.session_class(session))
        ctx.push()
        try:
            return self._read(lambda db: hotpath.heartbeat(db, attempt_id, who, self._grace))
        finally:
            ctx.pop()

    def _saves(self, environ: dict[str, Any], attempt_id: int) -> dict[str, Any] | None:
        who = self.posting(environ)
        payload = self.json(environ) if who is not None else None
        if payload is None:
            return None
        from assessment.delivery.service import parse_saves

        try:
            saves, position = parse_saves(payload)
        except DomainError:
            return None
        return self.write(hotpath.SaveWrite(attempt_id, saves, position, who, self._grace))

    # ------------------------------------------------------------------ for every route

    def body(self, environ: dict[str, Any], mimetypes: tuple[str, ...],
             most: int) -> bytes | None:
        """The body, when its declared type is one of ``mimetypes`` and its length is declared
        and within ``most`` bytes; it is put back for Flask (which may get the request after
        all) either way."""
        mimetype = environ.get("CONTENT_TYPE", "").split(";", 1)[0].strip().lower()
        try:
            length = int(environ.get("CONTENT_LENGTH") or "")
        except ValueError:
            return None
        if (mimetype not in mimetypes or not 0 < length <= most
                or environ.get("HTTP_TRANSFER_ENCODING")):
            return None
        stream = environ["wsgi.input"]
        body = stream.read(length)
        environ["wsgi.input"] = io.BytesIO(body)
        environ["wsgi.input_terminated"] = True
        return body if len(body) == length else None

    def json(self, environ: dict[str, Any]) -> Any:
        """The body as JSON, as Flask's parser would take it (declared JSON, within the app's
        limits, UTF-8, nested no deeper than ``MAX_JSON_DEPTH``); None otherwise."""
        most = min(MAX_JSON_BYTES, self.app.config.get("MAX_CONTENT_LENGTH") or MAX_JSON_BYTES)
        body = self.body(environ, ("application/json",), most)
        if body is None:
            return None
        try:
            payload = json.loads(body.decode("utf-8"))
        except (ValueError, RecursionError):
            return None
        return payload if _depth(payload) <= MAX_JSON_DEPTH else None

    @contextmanager
    def look(self) -> Iterator[Session]:
        """A session for a short read before a write (``Database.glance``: on PostgreSQL each
        statement on its own, no transaction), without the pool's ping (a statement failing on
        a dead connection hands the request to Flask, as a failed ping would)."""
        with unpinged():
            session = self.database.glance()
            try:
                yield session
            finally:
                session.close()

    def write(self, work: Callable[[Connection], dict[str, Any] | None]) -> dict[str, Any] | None:
        """Commit ``work(connection)``'s plain statements and return its answer, or None when
        it declined or the database failed (nothing kept): the node's writer, else the group
        commit, else a transaction of its own (``microcred.web.write_statements``)."""
        return write_statements(work, app=self.app, connect=self._write_connection)

    @contextmanager
    def _write_connection(self) -> Iterator[Connection]:
        with unpinged(), self.database.write_engine.connect() as connection:
            yield connection

    def _read(self, work: Callable) -> dict[str, Any] | None:
        """Run ``work(connection)`` on a Core connection of the short reads' engine
        (``Database.glance_engine``: on PostgreSQL no BEGIN and no ROLLBACK round trip around
        the heartbeat's one statement); None when the hot path declines or the database fails
        (Flask then answers, as it always has)."""
        try:
            # no ping round trip before the statement (PostgreSQL): on a dead connection the
            # statement fails instead, and Flask answers
            with unpinged(), self.database.glance_engine.connect() as connection:
                return work(connection)
        except DBAPIError:
            return None
