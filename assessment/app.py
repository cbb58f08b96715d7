"""The Flask application factory: configuration, database, sign-in, security headers, and the
wiring of every registered package's views and receivers (``microcred.packages``)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import (
    Flask,
    current_app,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
)
from flask_login import LoginManager
from flask_wtf.csrf import CSRFError, CSRFProtect
from sqlalchemy.exc import DBAPIError
from werkzeug.exceptions import HTTPException

from assessment.config import Settings
from assessment.database import Database
from assessment.delivery.groupcommit import GroupCommitter
from assessment.delivery.hotlane import HotLane
from assessment.users import User, load_signed_in_user
from microcred.backpressure import InFlightLimit
from microcred.errors import DomainError
from microcred.inputs import IdConverter
from microcred.packages import connect_receivers, hook, packages
from microcred.web import (
    ApiError,
    BodyLimitedRequest,
    RunnerWiring,
    db_session,
    form_error_page,
    wants_json,
)
from microcred.words import plural
from microcred.writer import WriterClient

ROOT = Path(__file__).resolve().parent.parent

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self'; font-src 'self'; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)

csrf = CSRFProtect()
login_manager = LoginManager()
login_manager.login_view = "auth.signin"
login_manager.login_message = "Please sign in to continue."
login_manager.session_protection = "strong"


@login_manager.user_loader
def _load_user(cookie_id: str) -> User | None:
    # None when that sign-in has ended on the server (sign-out, password change, deactivation).
    session = db_session()
    database = current_app.extensions["microcred.database"]
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return load_signed_in_user(session, cookie_id)
    # A request that writes: the user is read in a short transaction of its own and handed to
    # the request's session without a statement, so that session holds no connection and no
    # transaction until the view's first statement, and none at all in a view that writes
    # elsewhere (a camera frame's or a batch's plain statements, ``write_statements``). On
    # SQLite the request session's first statement takes the one write lock (BEGIN IMMEDIATE):
    # loading the user there held the lock through everything the view did before it wrote (a
    # snapshot's decoding and encryption, a batch's parsing). On PostgreSQL it held one of the
    # process's pooled connections idle in a transaction for the whole request, a second beside
    # the look's and the write's: a frame took two of the pool's 30 at once, and the other
    # requests (heartbeats included) waited for the pool.
    with database.glance() as read:
        user = load_signed_in_user(read, cookie_id)
        return None if user is None else session.merge(user, load=False)


def create_app(settings: Settings | None = None, **overrides: Any) -> Flask:
    settings = settings or Settings.from_env()
    connect_receivers()
    app = Flask(
        "assessment",
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
        instance_path=str(settings.instance_dir),
    )
    # every <int:...> in every package's routes: ids beyond the database's range are a 404
    app.url_map.converters["int"] = IdConverter
    app.request_class = BodyLimitedRequest  # per-view body limits, before the CSRF check reads
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        SESSION_COOKIE_SECURE=settings.cookie_secure,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SECURE=settings.cookie_secure,
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        WTF_CSRF_TIME_LIMIT=None,
        WTF_CSRF_SSL_STRICT=False,
        # a form without a field it needs is the client's 400, in debug mode too (Flask's
        # default traps BadRequestKeyError in debug and answers 500)
        TRAP_BAD_REQUEST_ERRORS=False,
        MICROCRED=settings,
    )
    app.config.update(overrides)
    database = Database(settings.database_url)
    app.extensions["microcred.database"] = database
    app.extensions["microcred.wiring"] = RunnerWiring()
    if database.is_sqlite and settings.group_commit:
        # SQLite's writers share one lock and one fsync per commit: the saves, frames and event
        # batches that arrive together commit together (``assessment.delivery.groupcommit``)
        app.extensions["microcred.group_commit"] = GroupCommitter(database.write_engine)
    if settings.writer_socket:
        # ``microcred serve`` started the node's writer: the frequent plain writes go to it
        # (``microcred.writer``); without it, or when it fails, the web writes them itself
        app.extensions["microcred.writer"] = WriterClient(settings.writer_socket)
    csrf.init_app(app)
    login_manager.init_app(app)
    _register_errors(app)
    _register_security_headers(app)
    app.jinja_env.filters["plural"] = plural

    @app.teardown_appcontext
    def _close_session(exc: BaseException | None) -> None:
        session = g.pop("db_session", None)
        if session is not None:
            if exc is not None:
                session.rollback()
            session.close()

    from assessment import admin, api_docs, auth, exam_editor, home
    from assessment.delivery import views as delivery_views
    from assessment.psych import program_views, studies_views
    from assessment.psych import views as psych

    for module in (auth, home, delivery_views, admin, exam_editor, psych, studies_views,
                   program_views, api_docs):
        app.register_blueprint(module.bp)
    # pictures are drawn in one place (the workspace's chart module); the item bank's form
    # builder draws its test information curve through this, importing nothing of the app
    from assessment.psych.charts import information_and_csem

    app.extensions["microcred.information_chart"] = information_and_csem
    for package in packages():
        if package.web:
            hook(package.web)(app)

    @app.context_processor
    def _wiring() -> dict[str, Any]:
        return {"wiring": app.extensions["microcred.wiring"]}

    # the runner's heartbeat and autosave, answered in front of Flask in their usual case
    app.wsgi_app = HotLane(app, app.wsgi_app)
    app.extensions["microcred.hotlane"] = app.wsgi_app
    if settings.max_in_flight:  # beyond it, the runner's API answers 503 at once
        app.wsgi_app = InFlightLimit(app.wsgi_app, limit=settings.max_in_flight,
                                     retry_after_s=settings.retry_after_seconds)
        app.extensions["microcred.backpressure"] = app.wsgi_app
    return app


def _register_errors(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return exc.response()

    @app.errorhandler(DomainError)
    def _domain_error(exc: DomainError):
        """Every package's domain errors end here: nothing of the request is written; a JSON
        caller (or a ``.json`` address) gets ``{"error": code, "message": ...}``, a form post
        goes back to its page with the message (``microcred.web.form_page``), anything else
        gets the error page, each with the error's status."""
        db_session().rollback()
        if wants_json() or request.path.endswith(".json"):
            response = ApiError(exc.status, exc.code, exc.message, **exc.extra).response()
        elif back := form_error_page():
            flash(exc.message, "error")
            return redirect(back)
        else:
            response = make_response(
                render_template("error.html", status=exc.status, message=exc.message), exc.status)
        if "retry_after" in exc.extra:
            response.headers["Retry-After"] = str(exc.extra["retry_after"])
        return response

    @app.errorhandler(DBAPIError)
    def _database_error(exc: DBAPIError):
        """The database failed under the request (disk full, server restarting, network cut):
        the transaction rolled back, nothing of the request is stored, and the caller is told
        so with a status it retries on (the runner keeps the saves queued and sends them
        again). Anything else of the driver's (a bug) stays a 500."""
        if "db_session" in g:
            try:
                g.db_session.rollback()
            except DBAPIError:
                pass  # the connection is gone; the pool drops it
        status, code, message = database_failure(exc)
        if status == 500:
            raise exc
        app.logger.error("database failure on %s %s: %s", request.method, request.path,
                         str(exc.orig or exc).splitlines()[0] if str(exc) else type(exc).__name__)
        if wants_json():
            response = ApiError(status, code, message).response()
        else:
            response = make_response(
                render_template("error.html", status=status, message=message), status)
        response.headers["Retry-After"] = "2"
        return response

    @app.errorhandler(CSRFError)
    def _csrf_error(exc: CSRFError):
        message = f"the request's CSRF token is missing or invalid ({exc.description}); reload the page"
        if wants_json():
            return ApiError(400, "csrf", message).response()
        return render_template("error.html", status=400, message=message), 400

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        if "db_session" in g:  # a failed flush must not break the error page itself
            g.db_session.rollback()
        messages = {
            413: f"the request body is larger than {request.max_content_length} bytes, the "
                 f"most {request.path} accepts",
            404: "there is nothing at this address",
            403: "you may not see this page",
            405: "this address does not accept that method",
        }
        message = messages.get(exc.code or 500, exc.description)
        if wants_json():
            return ApiError(exc.code or 500, (exc.name or "error").lower().replace(" ", "_"),
                            message).response()
        return render_template("error.html", status=exc.code, message=message), exc.code


def database_failure(exc: DBAPIError) -> tuple[int, str, str]:
    """(status, code, message) for a database error the caller should retry: 507 when SQLite's
    disk is full (or a write to the file failed), 503 when the database cannot be reached;
    (500, ...) for anything else."""
    text = str(exc.orig if exc.orig is not None else exc).lower()
    if "disk is full" in text or "disk i/o error" in text or "no space left" in text:
        return (507, "storage_full", ("the server could not write to its database (its disk "
                "is full or failing): nothing of this request was stored; it will be sent again"))
    if exc.connection_invalidated or any(words in text for words in (
            "connection", "server closed", "terminating", "shutting down", "starting up",
            "timeout", "could not receive", "could not send")):
        return (503, "database_unavailable", ("the server cannot reach its database right now: "
                "nothing of this request was stored; it will be sent again"))
    return (500, "internal_server_error", str(exc))


#: every response's security headers, in this order (a view may set its own CSP and
#: Permissions-Policy first); the fast lane (``assessment.delivery.hotlane``) sends the same
SECURITY_HEADERS = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("X-Frame-Options", "DENY"),
    ("Permissions-Policy", "camera=(self), microphone=(), geolocation=()"),
)
_VIEW_MAY_SET = {"Content-Security-Policy", "Permissions-Policy"}


def _register_security_headers(app: Flask) -> None:
    app.extensions["microcred.security_headers"] = SECURITY_HEADERS

    @app.after_request
    def _headers(response):
        for name, value in SECURITY_HEADERS:
            if name in _VIEW_MAY_SET:
                response.headers.setdefault(name, value)
            else:
                response.headers[name] = value
        if request.path.startswith("/api/") or request.endpoint and "attempt" in request.endpoint:
            response.headers["Cache-Control"] = "no-store"
        return response

