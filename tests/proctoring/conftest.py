"""Fixtures for the proctoring tests: images, an image vault, and proctored sessions."""
from __future__ import annotations

import secrets
from pathlib import Path

import cv2
import numpy as np
import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def face_jpeg() -> bytes:
    """A photograph with exactly one face (public domain, see data/README.md)."""
    return (DATA / "astronaut.jpg").read_bytes()


@pytest.fixture(scope="session")
def two_faces_jpeg(face_jpeg: bytes) -> bytes:
    img = cv2.imdecode(np.frombuffer(face_jpeg, np.uint8), cv2.IMREAD_COLOR)
    _ok, buf = cv2.imencode(".jpg", np.hstack([img, img]))
    return buf.tobytes()


@pytest.fixture(scope="session")
def blank_jpeg() -> bytes:
    _ok, buf = cv2.imencode(".jpg", np.full((240, 320, 3), 200, np.uint8))
    return buf.tobytes()


@pytest.fixture
def vault():
    from proctoring.images import ImageVault

    return ImageVault(secrets.token_bytes(32))


@pytest.fixture
def check_faces(database):
    """Run the face checker over every owed snapshot of an app's uploads (what ``microcred
    proctoring faces`` does beside the server); returns how many were checked."""
    from proctoring import face_checks

    def run(app) -> int:
        with database.session() as session:
            return face_checks.run_pending(session, app.extensions["microcred.proctoring"].vault)

    return run


@pytest.fixture(autouse=True)
def _fresh_plugin_manager():
    """Each test sees the installed plugins only (a test may register its own)."""
    from proctoring import hooks

    hooks.set_plugin_manager(None)
    yield
    hooks.set_plugin_manager(None)


@pytest.fixture
def proctored(db, make_user, build_exam):
    """``proctored(policy=None, code="P-EXAM")`` -> namespace(exam, candidate, proctor, admin,
    other_proctor) with the proctor assigned to the exam."""
    from types import SimpleNamespace

    from proctoring.assignments import assign

    def make(policy: dict | None = None, code: str = "P-EXAM"):
        pol = {"identity": "proctor", "review": "flagged", "fullscreen": True,
               "snapshot_interval_s": 30, **(policy or {})}
        exam = build_exam(db, code=code, policy={"proctoring": pol})
        ns = SimpleNamespace(
            exam=exam,
            candidate=make_user("candidate"),
            proctor=make_user("proctor"),
            other_proctor=make_user("proctor"),
            admin=make_user("admin"),
        )
        assign(db, ns.proctor, exam, ns.admin)
        db.commit()
        return ns

    return make


PLUGIN_SRC = Path(__file__).parent / "plugin_pkg"


@pytest.fixture
def test_plugin(tmp_path, monkeypatch):
    """Install the test plugin the way a real provider is installed: a distribution on sys.path
    whose ``entry_points.txt`` names it in the ``microcred.proctoring`` group. Returns the module
    (its ``CALLS`` list records every hook call)."""
    import importlib
    import sys

    dist = tmp_path / "microcred_test_provider-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: microcred-test-provider\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[microcred.proctoring]\nacme_live = microcred_test_provider\n")
    monkeypatch.syspath_prepend(str(PLUGIN_SRC))
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    sys.modules.pop("microcred_test_provider", None)
    module = importlib.import_module("microcred_test_provider")
    module.CALLS.clear()
    yield module
    sys.modules.pop("microcred_test_provider", None)


@pytest.fixture
def proctored_runner(app, client, proctored, signin, csrf_token):
    """A candidate signed in, running a proctored exam (camera on, no identity check): the
    people (``ns``), the client and its CSRF token, the attempt, its items, the proctoring
    extras of the heartbeat, and the session with its frames' and events' addresses."""
    import re
    from types import SimpleNamespace

    ns = proctored({"identity": "none", "snapshot_interval_s": 30})
    signin(client, ns.candidate)
    token = csrf_token(client)
    started = client.post(f"/exams/{ns.exam.code}/start", data={"agree": "yes", "csrf_token": token})
    assert started.status_code == 302, started.get_data(as_text=True)[:300]
    attempt_id = int(re.search(r"/attempts/(\d+)", started.headers["Location"]).group(1))
    extras = client.get(f"/api/attempts/{attempt_id}/heartbeat").json["extras"]["proctoring"]
    state = client.get(f"/api/attempts/{attempt_id}/state").json
    return SimpleNamespace(
        ns=ns, client=client, token=token, attempt_id=attempt_id,
        items=[it["id"] for it in state["items"]], extras=extras,
        session_id=int(re.search(r"/sessions/(\d+)/", extras["snapshots_url"]).group(1)),
        frames=extras["snapshots_url"], events=extras["events_url"])

