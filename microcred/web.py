"""Web plumbing every package's views share: the request's database session, role checks,
JSON errors, and the registry through which packages plug into the exam runner.

The Flask application itself is built in ``assessment.app``; packages with views expose an
``init_app(app)`` that registers their blueprint and their contributions here.
"""
from __future__ import annotations

import functools
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from flask import Request, abort, current_app, g, jsonify, request, url_for
from flask_login import current_user
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from werkzeug.urls import iri_to_uri

from microcred.jobs import hold_jobs, release_jobs
from microcred.writer import FAILED

T = TypeVar("T")


def app_database() -> Any:
    """The app's database (``assessment.database.Database``: engines and session factories)."""
    return current_app.extensions["microcred.database"]


def db_session() -> Session:
    """The request's session: a write session (``BEGIN IMMEDIATE`` on SQLite) for
    non-GET requests, a read session otherwise. Committed by the view, closed at teardown."""
    if "db_session" not in g:
        database = current_app.extensions["microcred.database"]
        g.db_session = database.session(write=request.method not in ("GET", "HEAD", "OPTIONS"))
    return g.db_session


@contextmanager
def reading() -> Iterator[Session]:
    """A session that only reads, closed on leaving: on SQLite it takes no write lock, so a
    write view can look at what it needs before it queues for the lock (the request's own
    ``db_session()`` is a write session on a POST). On PostgreSQL its statements run each on
    its own, with no transaction around them (``Database.glance``)."""
    session = app_database().glance()
    try:
        yield session
    finally:
        session.close()


def write_statements(work: Callable[[Connection], T | None], *, app: Any = None,
                     connect: Callable[[], Any] | None = None) -> T | None:
    """Run ``work(connection)``, plain statements on a Core connection, and commit them;
    returns its answer once committed, or None when ``work`` declined (returned None) or the
    database failed: nothing of it is kept, and the caller takes its full path (the view's
    ORM writes, through :func:`write_together`), which stores the request or says why not.

    ``work`` may run on another thread or in another process: where ``microcred serve``
    started the node's writer (``microcred.writer``), it is sent there, so it must be a
    picklable object the writer carries (``carries``); otherwise, or when the writer fails, on
    SQLite it joins the group commit, whose leading thread runs it inside the shared
    transaction, with no hand-over; on PostgreSQL it is a short transaction of its own. So it
    must not touch the request (``g``, ``current_user``, ``current_app``), only the connection
    and what it was given.

    ``app`` and ``connect`` are for a caller outside Flask's request (the fast lane, which has
    the app and opens its own transaction's connection without the pool's ping)."""
    app = app or current_app
    writer = app.extensions.get("microcred.writer")
    if writer is not None:  # the node's writer process (``microcred.writer``)
        answer = writer.run(work)
        if answer is not FAILED:
            return answer
    committer = app.extensions.get("microcred.group_commit")
    if committer is not None:
        return committer.run(work)
    connect = connect or app.extensions["microcred.database"].write_engine.connect
    try:
        with connect() as conn:  # closing rolls back the rest
            answer = work(conn)
            if answer is not None:
                conn.commit()
            return answer
    except DBAPIError:
        return None


def write_together(work: Callable[[Session], T]) -> T:
    """Run a view's writes, ``work(session)``, and commit them; returns what ``work`` returned.
    ``work`` does all of the request's writing through the session it is given (which is also
    the request's ``db_session()`` meanwhile) and must not commit; its answer must not be None.

    Where the app commits in groups (SQLite: ``microcred.group_commit``, the fast lane's
    :class:`~assessment.delivery.groupcommit.GroupCommitter`), ``work`` runs in a savepoint
    of the transaction shared with the saves and writes that arrive at the same moment, on
    this thread, and returns only after that transaction's COMMIT: one write lock and one
    fsync for all of them. When the shared transaction fails (or a database error undid
    ``work``'s savepoint), ``work`` runs again, alone, in the request's own session and
    transaction, which stores it or raises the error, as a view that commits by itself.
    Elsewhere (PostgreSQL, which commits concurrent transactions in parallel) it is that
    alone. The session is closed afterwards: what ``work`` returns is read before."""
    committer = current_app.extensions.get("microcred.group_commit")
    if committer is not None:
        held: list[Session] = []

        def turn(conn: Any) -> T:
            # on the shared connection (inside the group's transaction and a savepoint of its
            # own, or alone in a transaction this session begins and commits)
            session = Session(bind=conn, expire_on_commit=False)
            hold_jobs(session)  # its jobs are queued once the group has committed
            held.append(session)
            own = g.pop("db_session", None)
            g.db_session = session
            try:
                answer = work(session)
                session.commit()  # into the shared transaction: released with its savepoint
                return answer
            finally:
                g.pop("db_session", None)
                if own is not None:
                    g.db_session = own
                session.close()

        answer = committer.run_here(turn)
        if answer is not None:
            release_jobs(held[-1])
            return answer
    session = db_session()
    answer = work(session)
    session.commit()
    return answer


def body_limit(max_bytes: int) -> Callable:
    """Let this view take a request body of up to ``max_bytes`` (photos) instead of the app-wide
    ``MAX_CONTENT_LENGTH``. Every view that takes a large body declares it here, and only here:
    :class:`BodyLimitedRequest` applies it before anything reads the body."""

    def decorator(view: Callable) -> Callable:
        view.max_body_bytes = max_bytes  # type: ignore[attr-defined]
        return view

    return decorator


def declared_body_limit(endpoint: str | None) -> int | None:
    """The limit the endpoint's view declared with :func:`body_limit`, or None."""
    view = current_app.view_functions.get(endpoint) if endpoint else None
    return getattr(view, "max_body_bytes", None)


class BodyLimitedRequest(Request):
    """A request whose body limit is its view's declared one (:func:`body_limit`), else the
    app's ``MAX_CONTENT_LENGTH``.

    The limit is the request's own property, known from the matched endpoint as soon as the URL
    is routed, so it holds for the first reader of the body whoever that is: the CSRF check
    parses the form in a ``before_request`` hook, before the view could raise its limit."""

    @property
    def max_content_length(self) -> int | None:
        if self._max_content_length is not None:
            return self._max_content_length
        if current_app:
            declared = declared_body_limit(self.endpoint)
            if declared is not None:
                return declared
        return super().max_content_length

    @max_content_length.setter
    def max_content_length(self, value: int | None) -> None:
        self._max_content_length = value


class ApiError(Exception):
    """An error a JSON endpoint returns as ``{"error": code, "message": ...}`` with ``status``."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra

    def response(self):
        resp = jsonify({"error": self.code, "message": self.message, **self.extra})
        resp.status_code = self.status
        return resp


#: How many rounds of percent-decoding ``safe_next`` looks through (``%2525...`` nests).
_DECODE_ROUNDS = 4


def _same_site_path(value: str) -> bool:
    """``value`` is a path on this site: no control, separator or invisible characters
    (browsers drop tab, CR and LF, so a tab between two slashes makes ``//evil``), no
    backslash (browsers read it as ``/``), no surrounding spaces, no scheme, no host, one
    leading slash."""
    if any(unicodedata.category(ch)[0] in "CZ" and ch != " " for ch in value):
        return False
    if "\\" in value or value != value.strip() or value.startswith("//"):
        return False
    parts = urlsplit(value)
    return (
        not parts.scheme
        and not parts.netloc
        and parts.path.startswith("/")
        and not parts.path.startswith("//")
    )


def safe_next(value: str | None, default: str) -> str:
    """Where to send the browser after a form: ``value`` when it is a path on this site, else
    ``default``. Every ``next`` a request carries goes through here (sign-in, proctor actions),
    so none can send a signed-in user to another site or break the Location header.

    The value is checked as sent, after each round of percent-decoding (``/%2F%2Fevil``) and
    after Unicode compatibility folding (a fullwidth solidus is a ``/`` to some parsers); the
    path that passes is returned as an ASCII URI."""
    if not value or len(value) > 2000:
        return default
    seen = value
    for _ in range(_DECODE_ROUNDS + 1):
        if not (_same_site_path(seen) and _same_site_path(unicodedata.normalize("NFKC", seen))):
            return default
        decoded = unquote(seen)
        if decoded == seen:
            break
        seen = decoded
    else:
        return default  # still percent-encoded after all rounds: nobody links like that
    return iri_to_uri(value)


def same_site_referrer(default: str) -> str:
    """The page a form was posted from, as a path on this site, else ``default``."""
    referrer = request.referrer or ""
    parts = urlsplit(referrer)
    if parts.scheme not in ("http", "https") or parts.netloc != request.host:
        return default
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return safe_next(path, default)


def form_page(endpoint: str | None = None) -> Callable:
    """Declare the page a form posted to this view goes back to when the request fails with a
    :class:`~microcred.errors.DomainError`: the app's one handler rolls back, flashes the
    error's message and redirects to the page the form was posted from, or, when the browser
    named none, to this page (``endpoint``, which takes no arguments; None: the view's own
    address, a page that shows its form). Views keep no ``try``/``except`` of their own."""

    def decorator(view: Callable) -> Callable:
        view.form_page = endpoint or ""  # type: ignore[attr-defined]
        return view

    return decorator


def form_error_page() -> str:
    """Where the one handler sends a failed form post: the same-site page it came from, else
    the page its view declared with :func:`form_page`; empty when neither (an error page)."""
    if request.method != "POST":
        return ""
    view = current_app.view_functions.get(request.endpoint) if request.endpoint else None
    declared = getattr(view, "form_page", None)
    fallback = "" if declared is None else url_for(declared) if declared else request.path
    return same_site_referrer(fallback)


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.is_json


def role_required(*roles: str) -> Callable:
    """Allow the view only to signed-in users with one of ``roles`` (403 otherwise)."""

    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                if wants_json():
                    raise ApiError(401, "not_signed_in", "sign in first")
                return current_app.login_manager.unauthorized()
            if roles and current_user.role not in roles:
                if wants_json():
                    raise ApiError(403, "forbidden", "your role may not do this")
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator


@dataclass(frozen=True)
class HeartbeatPart:
    """What a package adds to the runner's heartbeat inside the heartbeat's one statement
    (``assessment.delivery.hotpath``): ``join(attempt_id_column)`` -> ``(table, onclause)`` of
    an outer join on the package's own table, ``columns()`` -> the labelled columns it reads
    there, ``extras(session, row, now)`` -> the dict merged into the heartbeat's ``extras``
    (from the row; a further query only when there is something rare to read). A heartbeat is
    also the page's sign of life: ``extras`` may note it (proctoring's connection column)."""

    join: Callable
    columns: Callable
    extras: Callable


@dataclass(frozen=True)
class LaneRoute:
    """A request the fast lane (``assessment.delivery.hotlane``, WSGI middleware in front of
    Flask) answers itself in its usual case: ``method`` and a path matching ``pattern`` (a
    compiled regex, matched in full; every path under ``prefix``). ``answer(lane, environ,
    match)`` returns the JSON body of a 200 answer, exactly what the route's Flask view would
    send, or None to hand the request to Flask untouched (anything unusual: Flask then answers,
    as it always has). ``lane`` gives what every such answer needs: the signed session and its
    sign-in (``lane.signed_in``), the CSRF check, the body within limits, a short read and a
    write (see the lane's class)."""

    method: str
    prefix: str
    pattern: Any
    answer: Callable


@dataclass
class RunnerWiring:
    """What other packages add to the candidate's exam flow.

    - ``start_gates``: ``f(session, user, exam) -> str | None``; a URL to send the candidate to
      before the attempt may start (e.g. the identity check), or None to let it start.
    - ``state_contributors``: ``f(session, attempt_id) -> dict``; merged into the runner's state
      under ``extras`` (e.g. ``{"proctoring": {...}}``) when the runner loads it.
    - ``heartbeat_parts``: :class:`HeartbeatPart`; the same extras for every heartbeat, read in
      the heartbeat's own statement (a package with a state contributor gives one too).
    - ``runner_scripts``: static URLs of extra ES modules the runner page loads.
    - ``nav_links``: ``(role, endpoint, label)`` shown in the header for that role.
    - ``result_links``: ``f(session, result_id) -> [(label, url)]``; links shown on the
      candidate's result page (e.g. the badge the result earned).
    - ``lane_routes``: :class:`LaneRoute`; the runner's frequent requests of another package
      (proctoring's camera frames and event batches) answered in front of Flask.
    """

    start_gates: list[Callable] = field(default_factory=list)
    state_contributors: list[Callable] = field(default_factory=list)
    heartbeat_parts: list[HeartbeatPart] = field(default_factory=list)
    runner_scripts: list[str] = field(default_factory=list)
    nav_links: list[tuple[str, str, str]] = field(default_factory=list)
    result_links: list[Callable] = field(default_factory=list)
    lane_routes: list[LaneRoute] = field(default_factory=list)


def runner_wiring() -> RunnerWiring:
    return current_app.extensions["microcred.wiring"]
