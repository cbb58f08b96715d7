"""Redis down mid-use (issue 15, goals 5 and 8): the sign-in throttle's counters live in Redis
when ``MICROCRED_REDIS_URL`` is set, and fall back to the database when Redis stops answering:
sign-in is never refused for good, the throttle keeps counting, and when Redis is back the
counters go to Redis again. A ``redis-server`` of the test's own, stopped in the middle (the
machine's Redis is never touched). Saves never touch Redis (``test_scale_out.py`` stops Redis
mid-exam and checks every acknowledged save)."""
from __future__ import annotations

import dataclasses

from sqlalchemy import func, select

from assessment.signin_throttle import (
    DatabaseCounters,
    RedisCounters,
    SigninCounter,
    SigninThrottle,
)
from tests.conftest import PASSWORD, csrf_token
from tests.scale.cluster import Redis


def _stored(db) -> int:
    db.rollback()  # a fresh snapshot: the app wrote through its own sessions
    return db.scalar(select(func.count()).select_from(SigninCounter))


def _throttle(app, redis_url: str) -> SigninThrottle:
    settings = dataclasses.replace(app.config["MICROCRED"], redis_url=redis_url,
                                   signin_max_failures_per_account=3)
    throttle = SigninThrottle.from_settings(settings, app.extensions["microcred.database"])
    app.extensions["microcred.signin_throttle"] = throttle
    return throttle


def test_signin_throttle_moves_to_the_database_when_redis_stops(app, db, make_user, tmp_path):
    redis = Redis(tmp_path)
    redis.start()
    try:
        throttle = _throttle(app, redis.url)
        assert isinstance(throttle.counters, RedisCounters)
        assert isinstance(throttle.counters.fallback, DatabaseCounters)
        user, other = make_user("candidate"), make_user("candidate")
        client = app.test_client()

        def signin(password: str) -> int:
            return client.post("/signin", data={"email": user.email, "password": password,
                                                "csrf_token": csrf_token(client)}).status_code

        # Two wrong tries, counted in Redis: nothing in the database.
        assert [signin("wrong one"), signin("wrong two")] == [401, 401]
        assert _stored(db) == 0
        keys = throttle.counters.client.keys(throttle.counters.prefix + "*")
        assert len(keys) == 2  # the account+address counter and the address counter

        redis.stop()  # mid-use: the next tries find nobody on the port
        # Sign-in goes on, counted in the database now: the right password gets in.
        assert signin("wrong three") == 401
        assert _stored(db) == 2
        assert signin(PASSWORD) == 302
        client.post("/signout", data={"csrf_token": csrf_token(client)})
        # Throttling still works without Redis: from the 3rd failure on, tries wait.
        codes = [signin(f"wrong again {i}") for i in range(4)]
        assert codes[:3] == [401, 401, 401] and codes[3] == 429, codes

        redis.start()  # back: counters go to Redis again (a fresh server: none there yet)
        assert client.post("/signin", data={"email": other.email, "password": "nope",
                                            "csrf_token": csrf_token(client)}).status_code == 401
        assert throttle.counters.client.keys(throttle.counters.prefix + "*")
    finally:
        redis.stop()
