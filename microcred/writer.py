"""The node's writer: the runner's frequent writes committed by one process of its own.

On SQLite a node's writers share one write lock, and at a few thousand candidates what a
writer does while it holds the lock is what the node holds. In a web worker that was mostly
waiting: the thread leading a group commit gave Python's lock (the GIL) up to SQLite at every
statement, and with dozens of request threads busy beside it, waited up to the interpreter's
switch interval (5 ms) to get it back, every statement, the write lock held all along (a
group's hold: p50 5 ms, p99 74 ms, for about four writes at 5,000 candidates; COMMIT's fsync
~1 ms of it; ``docs/scale-out.md``).

So ``microcred serve`` starts one writer process beside the web workers (``microcred
writer``), with a single thread: nothing competes with it for its interpreter, and its
statements run back to back. PostgreSQL would commit the web's transactions in parallel, but
there each of a write's round trips gave the GIL up too, and a request thread waited for it
back while its transaction held a row lock; so it gets the writer as well (on PostgreSQL the
writer waits for a row lock at most a fifth of a second, then hands the write back: see
``assessment.cli._writer_gives_way``). A web worker sends it a write that is plain values and a
function of a connection (a save: ``assessment.delivery.hotpath.SaveWrite``; a camera frame
or a batch of events in their usual case: ``proctoring.hotwrites``) over a Unix socket, and
waits for the answer. The writer takes what has arrived from every worker as one group
(``GroupCommitter.commit_works``: one transaction, one fsync; a write that declines is undone
alone), and answers each after the COMMIT returned. What the web waits for meanwhile holds no
lock.

- **Same answers.** The writer runs the same functions the web would; an answer it sends is
  committed; None means declined (nothing kept): the web takes its full path, as always.
- **Faults.** If the writer is not there, dies, or answers with a failure, the web runs the
  write itself (its own group commit), as without a writer; a write the writer committed but
  whose answer was lost is stored again idempotently (a save's or frame's seq, a batch's rule
  state: the second run sees the first and answers ``duplicate`` or from the full path).
- **Trust.** The messages are pickles, read back only through an unpickler that builds the
  classes registered here (:func:`carries`) and plain values, nothing else: a message naming
  any other class is refused and its connection closed. The socket is made in a directory
  only its owner can enter (``microcred serve`` makes it, 0700).

Messages are a 4-byte big-endian length and the pickle; each connection has at most one
request in flight (one per web thread).
"""
from __future__ import annotations

import io
import logging
import os
import pickle
import selectors
import socket
import struct
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

#: the environment variable through which ``microcred serve`` tells its web workers the socket
SOCKET_ENV = "MICROCRED_WRITER_SOCKET"
#: the largest message either side takes (a camera frame's sealed image is the largest write)
MAX_MESSAGE = 8 * 1024 * 1024
#: how long a web thread waits for its answer before running the write itself
ANSWER_TIMEOUT_S = 30.0
#: how long the writer waits for the rest of a message it began to read, or to send an answer
IO_TIMEOUT_S = 5.0

_HEADER = struct.Struct(">I")

#: (module, name) of every class a message may build: the registered writes and what they hold
_CARRIED: set[tuple[str, str]] = {
    ("datetime", "datetime"), ("datetime", "date"), ("datetime", "timedelta"),
    ("datetime", "timezone"), ("builtins", "set"), ("builtins", "frozenset"),
    ("builtins", "bytearray"),
}
#: the answer a write gets when the writer could not run it (the web then runs it itself)
FAILED = object()


def carries(*classes: type) -> None:
    """Let messages to and from the writer hold these classes (a write and the values in it).
    Called at import by the module that defines them; the writer imports those modules
    through each package's ``writes`` (``microcred.packages``)."""
    for cls in classes:
        _CARRIED.add((cls.__module__, cls.__qualname__))


class RefusedMessage(pickle.UnpicklingError):
    """A message that would build something the writer does not carry."""


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _CARRIED:
            raise RefusedMessage(f"a writer message may not hold {module}.{name}")
        return super().find_class(module, name)


def dumps(value: Any) -> bytes:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    if len(data) > MAX_MESSAGE:
        raise ValueError(f"a writer message is at most {MAX_MESSAGE} bytes, this is {len(data)}")
    return data


def loads(data: bytes) -> Any:
    """A message's value; raises :class:`RefusedMessage` for a class not carried."""
    return _Unpickler(io.BytesIO(data)).load()


def _send(sock: socket.socket, value: Any) -> None:
    data = dumps(value)
    sock.sendall(_HEADER.pack(len(data)) + data)


def _receive_exactly(sock: socket.socket, n: int) -> bytes:
    parts, left = [], n
    while left:
        chunk = sock.recv(min(left, 1 << 20))
        if not chunk:
            raise ConnectionError("the other side closed the connection")
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


def _receive(sock: socket.socket) -> Any:
    (size,) = _HEADER.unpack(_receive_exactly(sock, _HEADER.size))
    if size > MAX_MESSAGE:
        raise RefusedMessage(f"a writer message is at most {MAX_MESSAGE} bytes, this says {size}")
    return loads(_receive_exactly(sock, size))


# ---------------------------------------------------------------- the web's side


class WriterClient:
    """A web process's way to the writer: one connection per thread, made when first needed
    and made again after a failure."""

    def __init__(self, path: str, *, timeout: float = ANSWER_TIMEOUT_S) -> None:
        self.path, self.timeout = path, timeout
        self._local = threading.local()
        # what the tests and benchmarks read
        self.sent = 0
        self.failed = 0

    def run(self, work: Callable) -> Any:
        """``work``'s answer from the writer once committed; None: declined (nothing kept);
        :data:`FAILED`: the writer could not be asked or could not run it (nothing is known to
        be kept: the caller runs ``work`` itself)."""
        sock = getattr(self._local, "sock", None)
        try:
            if sock is None:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(self.timeout)
                sock.connect(self.path)
                self._local.sock = sock
            _send(sock, work)
            status, answer = _receive(sock)
        except (OSError, EOFError, pickle.UnpicklingError, ValueError, struct.error) as exc:
            self._drop(sock)
            self.failed += 1
            log.debug("the writer could not be asked (%s): the web writes itself", exc)
            return FAILED
        self.sent += 1
        return answer if status == "ok" else FAILED

    def _drop(self, sock: socket.socket | None) -> None:
        self._local.sock = None
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass


# ---------------------------------------------------------------- the writer's side


class Writer:
    """The writer process's loop: one thread, a selector over the listening socket and the
    web threads' connections; what arrived together is committed together."""

    def __init__(self, path: str, commit: Callable[[list[Callable]], list[tuple[Any, Any]]],
                 *, max_group: int = 256) -> None:
        self.path, self.commit, self.max_group = path, commit, max_group
        self.selector = selectors.DefaultSelector()
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if os.path.exists(path):
            os.unlink(path)  # a socket left by a writer that was killed
        self.listener.bind(path)
        os.chmod(path, 0o600)
        self.listener.listen(1024)
        self.listener.setblocking(False)
        self.selector.register(self.listener, selectors.EVENT_READ)
        self._stop = threading.Event()
        self.groups = 0
        self.written = 0

    def stop(self) -> None:
        self._stop.set()

    def serve(self) -> None:
        try:
            while not self._stop.is_set():
                arrived = self._gather(timeout=0.5)
                while arrived:
                    group, arrived = arrived[:self.max_group], arrived[self.max_group:]
                    self._commit(group)
        finally:
            self.close()

    def close(self) -> None:
        for key in list(self.selector.get_map().values()):
            key.fileobj.close()
        self.selector.close()
        try:
            os.unlink(self.path)
        except OSError:
            pass

    def _gather(self, timeout: float) -> list[tuple[socket.socket, Callable]]:
        """The writes that have arrived (waiting up to ``timeout`` for a first one)."""
        arrived = []
        for key, _ in self.selector.select(timeout):
            sock = key.fileobj
            if sock is self.listener:
                self._accept()
                continue
            try:
                work = _receive(sock)
            except RefusedMessage as exc:
                log.warning("writer: refused a message (%s); its connection is closed", exc)
                self._close(sock)
                continue
            except (OSError, EOFError, pickle.UnpicklingError, struct.error):
                self._close(sock)  # the web thread went away (or sent something broken)
                continue
            if not callable(work):
                log.warning("writer: a message that is no write (%s); its connection is closed",
                            type(work).__name__)
                self._close(sock)
                continue
            arrived.append((sock, work))
        return arrived

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            sock.settimeout(IO_TIMEOUT_S)
            self.selector.register(sock, selectors.EVENT_READ)

    def _commit(self, group: list[tuple[socket.socket, Callable]]) -> None:
        results = self.commit([work for _, work in group])
        self.groups += 1
        self.written += len(group)
        for (sock, _), (answer, error) in zip(group, results, strict=True):
            if error is not None:
                log.warning("writer: a write raised %r; the web runs it itself", error)
            reply = ("failed", None) if error is not None else ("ok", answer)
            try:
                _send(sock, reply)
            except (OSError, ValueError):
                self._close(sock)  # its thread gave up waiting: it writes itself, idempotently

    def _close(self, sock: socket.socket) -> None:
        try:
            self.selector.unregister(sock)
        except (KeyError, ValueError):
            pass
        sock.close()
