"""The node's writer (``microcred.writer``): one process beside the web workers that commits the
runner's frequent writes together. Here a real writer process on each database, and the app
told its socket as ``microcred serve`` tells its workers: saves are stored by it with the
answers Flask gives; when it is killed the web writes by itself and loses nothing; a message
that would build anything but the writes it carries is refused, and nothing of it runs."""
from __future__ import annotations

import dataclasses
import os
import pickle
import signal
import socket
import struct
import subprocess
import sys

import pytest
from sqlalchemy import select

from assessment.delivery.hotpath import SaveWrite, SignedIn
from assessment.delivery.models import ResponseSave
from assessment.delivery.service import SaveRequest
from microcred import writer as node_writer_module
from microcred.writer import FAILED, RefusedMessage, dumps, loads


@pytest.fixture
def settings(settings, node_writer):
    return dataclasses.replace(settings, writer_socket=node_writer.path)


def _first_item(client, attempt_id):
    return client.get(f"/api/attempts/{attempt_id}/state").json["items"][0]


def _save(client, attempt_id, token, item, seq, value=None):
    value = value or ("B" if item["type"] == "single_choice" else ["A", "C"])
    return client.post(f"/api/attempts/{attempt_id}/saves", headers={"X-CSRFToken": token},
                       json={"saves": [{"seq": seq, "item": item["id"], "value": value,
                                        "flagged": False}]})


def _stored(db, attempt_id):
    db.rollback()
    return {r.seq: r.value for r in db.execute(
        select(ResponseSave.seq, ResponseSave.value).where(ResponseSave.attempt_id == attempt_id))}


def test_saves_are_written_by_the_node_writer_with_flasks_answers(app, client, db, started):
    attempt_id, token = started
    item = _first_item(client, attempt_id)
    to_writer = app.extensions["microcred.writer"]
    assert to_writer.path == app.config["MICROCRED"].writer_socket
    for seq in (1, 2, 3):
        resp = _save(client, attempt_id, token, item, seq)
        assert resp.status_code == 200, resp.json
        assert resp.json["acks"] == [{"seq": seq, "status": "saved"}]
        assert resp.json["last_seq"] == seq
    assert to_writer.sent == 3 and to_writer.failed == 0
    assert sorted(_stored(db, attempt_id)) == [1, 2, 3]
    # a retry is a duplicate, other content under a stored seq a conflict: as Flask answers
    assert _save(client, attempt_id, token, item, 2).json["acks"] == [
        {"seq": 2, "status": "duplicate"}]
    other = "D" if item["type"] == "single_choice" else ["B", "D"]
    assert _save(client, attempt_id, token, item, 2, other).json["acks"] == [
        {"seq": 2, "status": "conflict"}]
    assert client.get(f"/api/attempts/{attempt_id}/state").json["last_seq"] == 3


def test_a_save_the_writer_declines_is_answered_by_flask(app, client, db, started, node_writer):
    attempt_id, token = started
    item = _first_item(client, attempt_id)
    # an item that is not on the attempt: the writer's save declines, nothing is kept, and
    # Flask gives its 422 naming the field
    resp = client.post(f"/api/attempts/{attempt_id}/saves", headers={"X-CSRFToken": token},
                       json={"saves": [{"seq": 1, "item": item["id"] + 10_000, "value": "A",
                                        "flagged": False}]})
    assert resp.status_code == 422 and "saves[0]" in resp.json["message"]
    assert _stored(db, attempt_id) == {}
    # the writer asked directly: None for another's attempt (declined, nothing kept)
    write = SaveWrite(attempt_id, [SaveRequest(1, item["id"], "A", False)], None,
                      SignedIn(user_id=999_999, epoch=0), 2.0)
    assert node_writer.client().run(write) is None
    assert _stored(db, attempt_id) == {}


def test_the_web_writes_by_itself_when_the_writer_is_killed(app, client, db, started,
                                                            node_writer):
    attempt_id, token = started
    item = _first_item(client, attempt_id)
    assert _save(client, attempt_id, token, item, 1).json["acks"][0]["status"] == "saved"
    os.kill(node_writer.process.pid, signal.SIGKILL)
    node_writer.process.wait(10)
    for seq in (2, 3):
        resp = _save(client, attempt_id, token, item, seq)
        assert resp.status_code == 200 and resp.json["acks"] == [{"seq": seq, "status": "saved"}]
    assert app.extensions["microcred.writer"].failed >= 1
    assert sorted(_stored(db, attempt_id)) == [1, 2, 3]


def test_on_postgresql_the_writer_gives_way_to_a_row_another_transaction_holds(
        app, client, db, started, node_writer):
    """The writer's group holds several candidates' rows at once; waiting long for one another
    transaction holds could close a deadlock cycle, which PostgreSQL breaks after a second by
    aborting either side. The writer waits at most its lock timeout (``assessment.cli``), then
    hands the write back: Flask stores it once the row is free, and answers as always."""
    import threading
    import time

    from assessment.cli import WRITER_LOCK_TIMEOUT_MS
    from assessment.delivery.models import Attempt

    database = app.extensions["microcred.database"]
    if database.is_sqlite:
        pytest.skip("SQLite locks the database, not rows: the writer holds its one write lock")
    attempt_id, token = started
    item = _first_item(client, attempt_id)
    holder = database.session()
    assert holder.get(Attempt, attempt_id, with_for_update=True) is not None
    write = SaveWrite(attempt_id, [SaveRequest(1, item["id"], "B" if item["type"] ==
                                               "single_choice" else ["A", "C"], False)],
                      None, _signed_in(db, attempt_id), 2.0)
    began = time.monotonic()
    assert node_writer.client().run(write) is None  # handed back: nothing of it kept
    waited = time.monotonic() - began
    assert WRITER_LOCK_TIMEOUT_MS / 1000 * 0.9 < waited < 5, waited
    # through the app: the writer gives way, Flask's own transaction waits for the row and
    # stores the save once the other transaction ends
    threading.Timer(0.5, holder.rollback).start()
    resp = _save(client, attempt_id, token, item, 1)
    holder.close()
    assert resp.status_code == 200 and resp.json["acks"] == [{"seq": 1, "status": "saved"}]
    assert sorted(_stored(db, attempt_id)) == [1]


def _signed_in(db, attempt_id):
    from assessment.delivery.models import Attempt
    from assessment.users import User

    user = db.get(User, db.get(Attempt, attempt_id).candidate_id)
    return SignedIn(user_id=user.id, epoch=user.session_epoch)


class _Planted:
    """What an attacker would send: unpickling it would run a shell command."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _raw(path: str, payload: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(path)
        sock.sendall(payload)
        return sock.recv(100)


def test_a_message_building_anything_else_is_refused_and_nothing_of_it_runs(
        node_writer, tmp_path):
    marker = tmp_path / "ran"
    planted = pickle.dumps(_Planted(str(marker)))
    with pytest.raises(RefusedMessage, match="may not hold posix.system"):
        loads(planted)
    # the writer closes the connection without an answer
    assert _raw(node_writer.path, struct.pack(">I", len(planted)) + planted) == b""
    # a length past the limit, and a message that is no write, likewise
    assert _raw(node_writer.path, struct.pack(">I", node_writer_module.MAX_MESSAGE + 1)) == b""
    plain = pickle.dumps({"not": "a write"})
    assert _raw(node_writer.path, struct.pack(">I", len(plain)) + plain) == b""
    assert not marker.exists()
    # and it goes on serving: a declined write is answered (None)
    write = SaveWrite(1, [], None, SignedIn(user_id=1, epoch=0), 2.0)
    assert node_writer.client().run(write) is None
    assert "refused a message" in node_writer.stop()


def test_a_write_round_trips_and_a_writer_that_is_not_there_is_failed():
    write = SaveWrite(7, [SaveRequest(3, 11, ["A", "C"], True)], 2, SignedIn(5, 1), 2.5)
    assert loads(dumps(write)) == write
    from microcred.writer import WriterClient

    assert WriterClient("/nonexistent/writer.sock").run(write) is FAILED


def test_the_writer_refuses_a_socket_others_could_reach(tmp_path, database_url):
    open_folder = tmp_path / "open"
    open_folder.mkdir(mode=0o755)
    os.chmod(open_folder, 0o755)
    env = {**os.environ, "MICROCRED_DATABASE_URL": database_url,
           "MICROCRED_INSTANCE_DIR": str(tmp_path / "instance")}
    done = subprocess.run([sys.executable, "-m", "assessment.cli", "writer", "--socket",
                           str(open_folder / "writer.sock")], env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 2
    assert "--socket" in done.stderr and "only its owner can enter" in done.stderr
    assert not (open_folder / "writer.sock").exists()


def test_a_writer_whose_server_was_killed_stops_and_leaves_no_folder(tmp_path, short_tmp,
                                                                     database_url):
    """``microcred serve`` makes the socket's folder and starts the writer with
    ``--exit-with-parent --remove-folder``: killed with -9, serve can clean nothing up, so the
    writer stops by itself and takes its socket and folder away."""
    import time

    folder = short_tmp / "writer"  # short: a socket's path is under 108 bytes
    folder.mkdir(mode=0o700)
    path = folder / "writer.sock"
    env = {**os.environ, "MICROCRED_DATABASE_URL": database_url,
           "MICROCRED_INSTANCE_DIR": str(tmp_path / "instance")}
    starter = subprocess.Popen([sys.executable, "-c", (
        "import subprocess, sys, time; subprocess.Popen([sys.executable, '-m', "
        f"'assessment.cli', 'writer', '--socket', {str(path)!r}, '--exit-with-parent', "
        "'--remove-folder']); time.sleep(120)")], env=env)
    try:
        deadline = time.monotonic() + 60
        while not path.exists():
            assert time.monotonic() < deadline and starter.poll() is None, "no writer started"
            time.sleep(0.05)
        starter.kill()
        starter.wait(10)
        deadline = time.monotonic() + 20
        while folder.exists():
            assert time.monotonic() < deadline, sorted(p.name for p in folder.iterdir())
            time.sleep(0.1)
    finally:
        if starter.poll() is None:
            starter.kill()

