"""Fetching a public JSON document for the verifier: a did:web DID document or a Bitstring
Status List credential, over HTTP(S), guarded against server-side request forgery.

A verifier is handed credentials written by strangers, and the URLs in them are the stranger's
choice. So, for every request and every redirect hop:

- only ``http`` and ``https`` URLs without user info; did:web documents only over ``https``;
- the host name is resolved once, every address it resolves to must be a public (global
  unicast) address, and the connection goes to that checked address (no second lookup that a
  rebinding DNS server could answer differently); loopback, private, link-local, shared,
  multicast, reserved and unspecified addresses are refused, IPv4-mapped IPv6 included;
- timeouts on connect and on each read, and one deadline for the whole fetch (the connection
  is shut down when it passes, so a server trickling bytes cannot hold the verifier);
- a size limit, checked against ``Content-Length`` and again while reading; no compression
  is asked for (nothing to inflate);
- at most three redirects, each one checked like the first request.

Loopback can be allowed only explicitly, for tests that serve a document from 127.0.0.1:
``Fetcher(allow_loopback=True)``, or ``MICROCRED_TEST_FETCH_LOOPBACK=1`` for a ``microcred
verify`` run by a test. Private and other addresses are never allowed.
"""
from __future__ import annotations

import http.client
import ipaddress
import json
import os
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

from credentials.errors import CredentialError
from microcred.inputs import is_whole

LOOPBACK_ENV = "MICROCRED_TEST_FETCH_LOOPBACK"
MAX_REDIRECTS = 3
USER_AGENT = "Microcred-verifier/1"


class FetchError(CredentialError):
    """A document could not be fetched, or the fetch was refused; the message says why."""


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def refused_reason(ip: IPAddress, *, allow_loopback: bool = False) -> str | None:
    """Why a connection to ``ip`` is refused, or None when it is a public address."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return None if allow_loopback else "a loopback address"
    for kind, flag in (("an unspecified", ip.is_unspecified), ("a private", ip.is_private),
                       ("a link-local", ip.is_link_local), ("a multicast", ip.is_multicast),
                       ("a reserved", ip.is_reserved)):
        if flag:
            return f"{kind} address"
    if not ip.is_global:
        return "not a public address"
    return None


def _connect(addresses: list[str], port: int, timeout: float) -> socket.socket:
    """A connection to the first of the checked addresses that answers."""
    error: OSError | None = None
    for address in addresses:
        try:
            return socket.create_connection((address, port), timeout)
        except OSError as exc:
            error = exc
    raise error or OSError("no address to connect to")


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection to addresses already checked, whatever the host name says now."""

    def __init__(self, host: str, port: int, addresses: list[str], timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._addresses = addresses
        #: the socket, kept after http.client lets go of it (the response still reads it)
        self.opened: socket.socket | None = None

    def connect(self) -> None:
        self.sock = self.opened = _connect(self._addresses, self.port, self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, addresses: list[str], timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._addresses = addresses
        #: the socket, kept after http.client lets go of it (the response still reads it)
        self.opened: socket.socket | None = None

    def connect(self) -> None:
        sock = _connect(self._addresses, self.port, self.timeout)
        self.sock = self.opened = self._context.wrap_socket(sock, server_hostname=self.host)


def _cut_at(conn: _PinnedHTTPConnection | _PinnedHTTPSConnection,
            seconds: float) -> threading.Timer:
    """Shut the connection down after ``seconds``: a server trickling its headers or body a
    byte at a time (each inside the read timeout) still meets the deadline."""
    def cut() -> None:
        if conn.opened is not None:
            try:
                conn.opened.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    timer = threading.Timer(seconds, cut)
    timer.daemon = True
    timer.start()
    return timer


@dataclass(frozen=True)
class Fetcher:
    """Fetches JSON documents under the guard above."""

    timeout: float = 5.0  # seconds, for connecting and for each read
    deadline: float = 10.0  # seconds, for the whole fetch with its redirects
    max_bytes: int = 1024 * 1024
    allow_loopback: bool = False

    @classmethod
    def from_env(cls) -> Fetcher:
        flag = os.environ.get(LOOPBACK_ENV, "").strip().lower() in {"1", "true", "yes", "on"}
        return cls(allow_loopback=flag)

    def check_url(self, url: str, *,
                  https_only: bool = False) -> tuple[str, str, int, list[str]]:
        """(scheme, host, port, checked addresses) for ``url``, or FetchError saying why not."""
        parts = urlsplit(url)
        schemes = ("https",) if https_only else ("http", "https")
        if parts.scheme not in schemes:
            raise FetchError(f"{url!r}: only {' and '.join(schemes)} URLs are fetched")
        if parts.username is not None or parts.password is not None:
            raise FetchError(f"{url!r}: URLs with user information are not fetched")
        host = parts.hostname
        if not host:
            raise FetchError(f"{url!r} names no host")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise FetchError(f"{url!r} has an invalid port") from None
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise FetchError(f"cannot resolve the host {host!r}: {exc}") from None
        addresses = list(dict.fromkeys(info[4][0] for info in infos))
        if not addresses:
            raise FetchError(f"the host {host!r} has no address")
        for address in addresses:
            reason = refused_reason(ipaddress.ip_address(address.split("%", 1)[0]),
                                    allow_loopback=self.allow_loopback)
            if reason:
                raise FetchError(f"refused to fetch {url}: {host} resolves to {address}, "
                                 f"{reason} (a credential may only point at public hosts)")
        return parts.scheme, host, port, addresses

    def fetch(self, url: str, *, https_only: bool = False) -> bytes:
        """The body of a 200 answer to GET ``url``, following at most three redirects."""
        started = time.monotonic()
        for _ in range(MAX_REDIRECTS + 1):
            scheme, host, port, addresses = self.check_url(url, https_only=https_only)
            left = self.deadline - (time.monotonic() - started)
            if left <= 0:
                raise FetchError(f"{url} took longer than {self.deadline:g} s")
            cls = _PinnedHTTPSConnection if scheme == "https" else _PinnedHTTPConnection
            conn = cls(host, port, addresses, self.timeout)
            timer = _cut_at(conn, left)
            parts = urlsplit(url)
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            try:
                conn.request("GET", target, headers={
                    "Accept": "application/json, application/ld+json, application/vc+ld+json",
                    "Accept-Encoding": "identity", "User-Agent": USER_AGENT})
                response = conn.getresponse()
                if response.status in (301, 302, 303, 307, 308):
                    location = response.getheader("Location")
                    if not location:
                        raise FetchError(f"{url} redirects without a Location")
                    url = urljoin(url, location)
                    continue
                if response.status != 200:
                    raise FetchError(f"{url} answered {response.status} {response.reason}")
                body = self._read(response, url)
                if time.monotonic() - started >= self.deadline:
                    raise FetchError(f"{url} took longer than {self.deadline:g} s")
                return body
            except (OSError, http.client.HTTPException) as exc:
                if time.monotonic() - started >= self.deadline:
                    raise FetchError(f"{url} took longer than {self.deadline:g} s") from None
                raise FetchError(f"could not fetch {url}: {exc}") from None
            finally:
                timer.cancel()
                conn.close()
        raise FetchError(f"{url}: more than {MAX_REDIRECTS} redirects")

    def _read(self, response: http.client.HTTPResponse, url: str) -> bytes:
        length = response.getheader("Content-Length")
        if length and is_whole(length) and int(length) > self.max_bytes:
            raise FetchError(f"{url} is larger than {self.max_bytes} bytes ({length})")
        body = bytearray()
        while chunk := response.read1(64 * 1024):
            body += chunk
            if len(body) > self.max_bytes:
                raise FetchError(f"{url} is larger than {self.max_bytes} bytes")
        return bytes(body)

    def json(self, url: str, *, https_only: bool = False) -> dict[str, Any]:
        """The JSON object at ``url``."""
        body = self.fetch(url, https_only=https_only)
        try:
            doc = json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise FetchError(f"{url} is not JSON: {str(exc)[:200]}") from None
        if not isinstance(doc, dict):
            raise FetchError(f"{url} is not a JSON object")
        return doc
