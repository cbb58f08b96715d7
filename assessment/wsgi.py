"""The WSGI entry points ``microcred serve`` serves: ``app`` (gunicorn) and ``granian_app``."""
import os
from collections.abc import Callable, Iterable
from typing import Any

from assessment.app import create_app
from microcred.heap import settle

app = create_app()
settle()  # the start's objects out of the collector's walks (microcred.heap says why)

#: set by ``microcred serve`` for granian's workers: gunicorn's workers leave when their master
#: is gone, granian's kept serving (and holding the port) after ``serve`` was killed with -9
STOP_WITH_SERVER_ENV = "MICROCRED_STOP_WITH_SERVER"


def _leave() -> None:
    """The server that started this worker is gone: stop (no master is left to stop us
    gracefully; what was acknowledged is stored, the rest the runner sends again).

    SIGTERM lets granian close its connections; the kernel ends the process 5 s later in any
    case (SIGALRM, whose default action is to terminate: Python installs no handler for it),
    where a sleep then ``os._exit`` in this daemon thread depended on the interpreter still
    running its threads while it shut down."""
    import signal

    signal.alarm(5)
    os.kill(os.getpid(), signal.SIGTERM)


_server = os.environ.get(STOP_WITH_SERVER_ENV, "")
if _server:
    from microcred.commands import stop_with_parent
    from microcred.inputs import is_whole

    # the server's own pid: a worker still starting when the server was killed finds its
    # parent replaced already, and leaves at once (it watched the new parent, forever)
    stop_with_parent(_leave, parent=int(_server) if is_whole(_server) else None)

#: granian starts every request's environ from a copy of the server's process environment, so
#: a variable of the server named like a header (HTTP_PROXY, HTTP_X_FORWARDED_FOR) would read as
#: one the client sent: Flask-Login's identifier and the sign-in throttle take the address
#: from X-Forwarded-For. A header the request sends replaces the copy.
_SERVER_HEADERS = {k: v for k, v in os.environ.items() if k.startswith("HTTP_")}


def granian_app(environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
    """``app`` for granian: without the server's own environment posing as request headers
    (a header equal to the server's variable is dropped too: it can only say the same)."""
    if _SERVER_HEADERS:
        for key, value in _SERVER_HEADERS.items():
            if environ.get(key) == value:
                del environ[key]
    return app(environ, start_response)
