"""Fetching status lists (and did:web documents) over HTTP for ``microcred verify``, behind the
SSRF guard: a real HTTP server on 127.0.0.1, allowed only through the explicit test setting;
loopback, private and other non-public addresses are refused by default, before any
connection."""
from __future__ import annotations

import ipaddress
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from credentials import remote, statuslist
from credentials.remote import Fetcher, FetchError
from credentials.resolution import NetworkResolver
from credentials.verify import verify


class Site:
    """A tiny local web server: ``routes[path] = (status, headers, body)``; counts requests."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.hits: list[str] = []
        self.trickle: float = 0.0
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                site.hits.append(self.path)
                status, headers, body = site.routes.get(self.path, (404, {}, b"{}"))
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                if "Content-Length" not in headers and "X-No-Length" not in headers:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if site.trickle:
                    for i in range(len(body)):
                        self.wfile.write(body[i:i + 1])
                        self.wfile.flush()
                        time.sleep(site.trickle)
                else:
                    self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()

    def serve_json(self, path: str, doc: dict) -> str:
        self.routes[path] = (200, {"Content-Type": "application/json"}, json.dumps(doc).encode())
        return self.base + path

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def site() -> Iterator[Site]:
    s = Site()
    yield s
    s.close()


LOOPBACK_OK = Fetcher(allow_loopback=True, timeout=2, deadline=3)


# --- the guard ---------------------------------------------------------------------------------

def test_loopback_is_refused_by_default_and_nothing_is_requested(site):
    url = site.serve_json("/status/1/revocation", {"id": "x"})
    with pytest.raises(FetchError, match="resolves to 127.0.0.1, a loopback address"):
        Fetcher().json(url)
    assert site.hits == []
    assert LOOPBACK_OK.json(url) == {"id": "x"} and site.hits == ["/status/1/revocation"]


@pytest.mark.parametrize("host", [
    "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
    "[::1]", "[::ffff:127.0.0.1]", "[::ffff:10.0.0.1]", "[fe80::1]", "[fc00::1]",
    "224.0.0.1", "240.0.0.1", "localhost", "127.0.0.2",
])
def test_non_public_addresses_are_refused_before_connecting(host):
    # IP literals (and localhost) resolve without DNS; the guard refuses before any connect,
    # so no packet leaves for these addresses. Private ones stay refused with loopback allowed.
    for fetcher in (Fetcher(), LOOPBACK_OK):
        try:
            fetcher.check_url(f"http://{host}/status/1/revocation")
        except FetchError as exc:
            assert "refused to fetch" in str(exc)
        else:
            ip = ipaddress.ip_address(host.strip("[]").replace("localhost", "127.0.0.1"))
            mapped = getattr(ip, "ipv4_mapped", None) or ip
            assert fetcher.allow_loopback and mapped.is_loopback, host


def test_public_addresses_pass_the_guard():
    for address in ("93.184.215.14", "2606:4700::6810:84e5", "8.8.8.8"):
        assert remote.refused_reason(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize("url,message", [
    ("ftp://example.org/list", "only http and https"),
    ("file:///etc/passwd", "only http and https"),
    ("http://user:pw@example.org/list", "user information"),
    ("http:///list", "names no host"),
])
def test_only_plain_http_urls_are_fetched(url, message):
    with pytest.raises(FetchError, match=message):
        Fetcher().check_url(url)


def test_did_web_is_https_only_and_guarded():
    resolver = NetworkResolver(Fetcher())
    with pytest.raises(FetchError, match="private address"):
        resolver.did_document("did:web:10.1.2.3")
    with pytest.raises(FetchError, match="only https"):
        Fetcher().check_url("http://example.org/.well-known/did.json", https_only=True)


def test_a_redirect_is_checked_like_the_first_request(site):
    site.routes["/moved"] = (302, {"Location": "http://10.0.0.1/status/1/revocation"}, b"")
    with pytest.raises(FetchError, match="10.0.0.1, a private address"):
        LOOPBACK_OK.json(site.base + "/moved")
    site.serve_json("/there", {"ok": True})
    site.routes["/here"] = (301, {"Location": "/there"}, b"")
    assert LOOPBACK_OK.json(site.base + "/here") == {"ok": True}
    site.routes["/loop"] = (302, {"Location": "/loop"}, b"")
    with pytest.raises(FetchError, match="more than 3 redirects"):
        LOOPBACK_OK.json(site.base + "/loop")


def test_size_limit_with_and_without_content_length(site):
    small = Fetcher(allow_loopback=True, max_bytes=1000)
    site.routes["/big"] = (200, {}, b'{"a": "' + b"x" * 5000 + b'"}')
    with pytest.raises(FetchError, match="larger than 1000 bytes"):
        small.json(site.base + "/big")
    site.routes["/sneaky"] = (200, {"X-No-Length": "1", "Connection": "close"},
                              b'{"a": "' + b"x" * 5000 + b'"}')
    with pytest.raises(FetchError, match="larger than 1000 bytes"):
        small.json(site.base + "/sneaky")


def test_a_server_trickling_its_headers_meets_the_deadline():
    """The deadline holds in the header phase too, where no body read loop runs."""
    import socket

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    stop = threading.Event()

    def trickle() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(4096)
            conn.sendall(b"HTTP/1.1 200 OK\r\n")
            while not stop.is_set():
                try:
                    conn.sendall(b"X-Slow: 1\r\n")
                except OSError:
                    return
                time.sleep(0.2)

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    started = time.monotonic()
    try:
        with pytest.raises(FetchError, match="took longer than 1 s"):
            Fetcher(allow_loopback=True, timeout=0.5, deadline=1).json(
                f"http://127.0.0.1:{port}/status/1/revocation")
        assert time.monotonic() - started < 2.5
    finally:
        stop.set()
        listener.close()


def test_a_slow_server_meets_the_deadline(site):
    site.routes["/slow"] = (200, {}, b'{"a": "' + b"x" * 100 + b'"}')
    site.trickle = 0.05  # about 5.5 s for the whole body, each byte well inside the timeout
    started = time.monotonic()
    with pytest.raises(FetchError, match="took longer than 1 s"):
        Fetcher(allow_loopback=True, timeout=0.5, deadline=1).json(site.base + "/slow")
    assert time.monotonic() - started < 2.5


def test_errors_say_what_was_wrong(site):
    with pytest.raises(FetchError, match="answered 404"):
        LOOPBACK_OK.json(site.base + "/nothing")
    site.routes["/text"] = (200, {}, b"not json")
    with pytest.raises(FetchError, match="is not JSON"):
        LOOPBACK_OK.json(site.base + "/text")
    site.routes["/deep"] = (200, {}, b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(FetchError, match="is not JSON"):
        LOOPBACK_OK.json(site.base + "/deep")


# --- the verifier reads status lists over HTTP --------------------------------------------------

def _served(site: Site, make_issued_credential):
    """A credential whose status lists live on the local site, and the site serving them."""
    revocation_url = site.base + "/status/7/revocation"
    entries = [statuslist.entry(revocation_url.replace("revocation", p), 42, p)
               for p in statuslist.PURPOSES]
    issued = make_issued_credential(extra={"credentialStatus": entries})
    issued.list_url = revocation_url

    def publish() -> None:
        site.serve_json("/status/7/revocation", issued.signed_list("revocation"))
        site.serve_json("/status/7/suspension", issued.signed_list("suspension"))

    publish()
    return issued, publish


def test_verify_fetches_both_status_lists(site, make_issued_credential, now):
    issued, publish = _served(site, make_issued_credential)
    report = verify(issued.credential, NetworkResolver(LOOPBACK_OK), now=now)
    assert report.verified, report.to_dict()
    assert sorted(site.hits) == ["/status/7/revocation", "/status/7/suspension"]
    issued.suspension.set(issued.index)
    publish()
    report = verify(issued.credential, NetworkResolver(LOOPBACK_OK), now=now)
    assert report.status == "suspended" and report.step("status").ok is False


def _cli(tmp_path: Path, credential: dict, monkeypatch, *, loopback: bool):
    """``microcred verify`` as a user runs it, with no migrated database to ask."""
    from click.testing import CliRunner

    from assessment.cli import main

    path = tmp_path / "credential.json"
    path.write_text(json.dumps(credential))
    monkeypatch.setenv("MICROCRED_DATABASE_URL", f"sqlite:///{tmp_path / 'no-database.db'}")
    if loopback:
        monkeypatch.setenv(remote.LOOPBACK_ENV, "1")
    else:
        monkeypatch.delenv(remote.LOOPBACK_ENV, raising=False)
    return CliRunner().invoke(main, ["verify", str(path)])


def test_cli_without_a_database_checks_status_over_http(site, make_issued_credential,
                                                        tmp_path, monkeypatch):
    issued, publish = _served(site, make_issued_credential)
    result = _cli(tmp_path, issued.credential, monkeypatch, loopback=True)
    assert result.exit_code == 0, result.output
    assert "[ok  ] status: not revoked or suspended" in result.output
    issued.revocation.set(issued.index)
    publish()
    result = _cli(tmp_path, issued.credential, monkeypatch, loopback=True)
    assert result.exit_code == 1 and "NOT VERIFIED (revoked)" in result.output, result.output
    # without the explicit test setting, loopback is refused like any private address
    hits = len(site.hits)
    result = _cli(tmp_path, issued.credential, monkeypatch, loopback=False)
    assert result.exit_code == 1 and "a loopback address" in result.output, result.output
    assert len(site.hits) == hits
