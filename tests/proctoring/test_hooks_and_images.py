"""Plugin discovery through entry points, isolation of failing plugins, and image encryption."""
from __future__ import annotations

import datetime as dt
import secrets
from typing import ClassVar

import pytest

from proctoring import hooks
from proctoring.images import ImageGone, ImageVault, load_key, parse_key, purge


def test_builtin_verifiers_are_entry_point_plugins():
    from importlib.metadata import entry_points

    names = {ep.name for ep in entry_points(group="microcred.proctoring")}
    assert {"proctor", "face_count"} <= names
    pm = hooks.make_plugin_manager()
    assert pm.get_plugin("proctor") is not None and pm.get_plugin("face_count") is not None


def test_installed_plugin_is_discovered_and_called(test_plugin):
    plugin = test_plugin
    pm = hooks.make_plugin_manager()
    assert pm.get_plugin("acme_live") is plugin
    hooks.set_plugin_manager(pm)
    info = hooks.SessionInfo(1, 2, 3, 4, "in_progress")
    out = hooks.call("microcred_integrity_event", session=info,
                     event=hooks.EventInfo("right_click", 7, dt.datetime.now(dt.UTC), None))
    assert out and out[0][0] == "acme_live" and out[0][1][0].rule == "acme_context_menu"
    assert plugin.CALLS == [("integrity_event", {"kind": "right_click", "seq": 7})]


def test_a_failing_plugin_is_skipped_not_fatal():
    class Broken:
        @hooks.hookimpl
        def microcred_session_started(self, session):
            raise RuntimeError("provider down")

    class Fine:
        seen: ClassVar[list[int]] = []

        @hooks.hookimpl
        def microcred_session_started(self, session):
            self.seen.append(session.session_id)
            return "ok"

    pm = hooks.make_plugin_manager(load_entry_points=False)
    pm.register(Broken(), name="broken")
    pm.register(Fine(), name="fine")
    hooks.set_plugin_manager(pm)
    out = hooks.call("microcred_session_started", session=hooks.SessionInfo(9, 1, 1, 1, "x"))
    assert Fine.seen == [9]
    assert ("fine", "ok") in out and any(hooks.failed(r) for _, r in out)


def test_calls_go_through_pluggy_so_wrappers_and_firstresult_work():
    """hooks.call is pm.hook.<name>(...) (issue 10, item 9): a hookwrapper sees and may add to
    the answers, a firstresult hook stops at the first answer, and a failing plugin is still
    skipped rather than fatal in both."""

    class Extra:
        @hooks.hookspec(firstresult=True)
        def microcred_pick(self, n):
            """A firstresult hook, for this test."""

    class Wrapper:
        @hooks.hookimpl(wrapper=True)
        def microcred_session_started(self, session):
            answers = yield
            return [*answers, hooks.Answer("wrapper", f"saw {len(answers)}")]

    class Fine:
        @hooks.hookimpl
        def microcred_session_started(self, session):
            return "ok"

        @hooks.hookimpl
        def microcred_pick(self, n):
            return n * 2

    class Broken:
        @hooks.hookimpl
        def microcred_session_started(self, session):
            raise RuntimeError("provider down")

        @hooks.hookimpl
        def microcred_pick(self, n):
            raise RuntimeError("provider down")

    class Silent:
        @hooks.hookimpl
        def microcred_pick(self, n):
            return None

    pm = hooks.make_plugin_manager(load_entry_points=False)
    pm.add_hookspecs(Extra)
    for name, plugin in (("fine", Fine()), ("broken", Broken()), ("silent", Silent()),
                         ("wrap", Wrapper())):
        pm.register(plugin, name=name)
    hooks.set_plugin_manager(pm)
    try:
        out = hooks.call("microcred_session_started", session=hooks.SessionInfo(9, 1, 1, 1, "x"))
        assert out[-1] == ("wrapper", "saw 2")
        assert ("fine", "ok") in out and hooks.failed(dict(out)["broken"])
        assert hooks.call("microcred_pick", n=21) == [("fine", 42)]
    finally:
        hooks.set_plugin_manager(None)


def test_keys(tmp_path):
    key = load_key(tmp_path, environ={})
    assert len(key) == 32 and load_key(tmp_path, environ={}) == key  # generated once, kept
    assert (tmp_path / "proctoring_key").stat().st_mode & 0o077 == 0
    hexkey = secrets.token_bytes(32)
    assert load_key(tmp_path, environ={"MICROCRED_PROCTORING_KEY": hexkey.hex()}) == hexkey
    with pytest.raises(ValueError, match="32 bytes"):
        parse_key("abcd")


def test_images_are_encrypted_bound_and_purged(db, face_jpeg, proctored):
    from proctoring.models import StoredImage
    from proctoring.policy import parse_policy
    from proctoring.sessions import create_session

    ns = proctored()
    ps = create_session(db, candidate_id=ns.candidate.id, exam_id=ns.exam.id,
                        policy=parse_policy({"identity": "proctor"}))
    vault = ImageVault(secrets.token_bytes(32))
    row = vault.store(db, session_id=ps.id, kind="selfie", image=face_jpeg)
    db.commit()
    assert b"JFIF" not in row.ciphertext and row.ciphertext[:3] != b"\xff\xd8\xff"
    assert vault.open(row)[:3] == b"\xff\xd8\xff"
    with pytest.raises(ValueError, match="another key"):
        ImageVault(secrets.token_bytes(32)).open(row)
    forged = StoredImage(id=row.id, session_id=row.session_id + 1, kind=row.kind, key_id=row.key_id,
                         nonce=row.nonce, ciphertext=row.ciphertext)
    with pytest.raises(ValueError, match="altered"):
        vault.open(forged)
    assert purge(db, older_than_days=30) == 0
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=31)
    assert purge(db, older_than_days=30, now=later) == 1
    db.commit()
    db.refresh(row)
    assert row.ciphertext is None and row.purged_at is not None
    with pytest.raises(ImageGone):
        vault.open(row)
