"""Sign-in throttling: growing delays, counted exactly across workers and nodes.

Each sign-in try first *reserves* a try on its counters, in one atomic step, before the password
is checked: concurrent tries cannot all read "4 failures so far" and all go ahead. The first
``free`` tries on a counter go straight through; from then on each try makes the next one wait
twice as long as the last (``base``, ``2*base``, ... up to ``cap``). A counter is forgotten once
nobody has tried for ``keep`` seconds after its last delay.

Counters, so that a stranger cannot lock a candidate out of an exam:

- per account *and* address: a stranger guessing a candidate's password only slows the stranger's
  own address down; the candidate signing in from their address is not delayed at all;
- per address, with a larger budget: one address cannot spray guesses over many accounts.

A successful sign-in clears its account-and-address counter and gives back its reservation on the
address counter. Counters live in Redis when ``MICROCRED_REDIS_URL`` is set (a Lua script, atomic
on the server), else in the database (one ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING``).
Keys are SHA-256 digests: neither store keeps emails or addresses in the clear.
"""
from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Float, Integer, String, case, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, mapped_column

from assessment.database import Database
from microcred import clock as microcred_clock  # the one clock, which tests move
from microcred.db import Base

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Backoff:
    """How a counter slows tries down: ``free`` tries, then waits doubling from ``base_s`` to
    ``cap_s`` seconds; the counter is kept ``keep_s`` seconds after its last wait ends."""

    free: int
    base_s: float
    cap_s: float
    keep_s: float

    def wait_after(self, tries: int) -> float:
        """The wait imposed after the ``tries``-th try (what the stores compute step by step)."""
        if tries < self.free:
            return 0.0
        return min(self.base_s * 2 ** (tries - self.free), self.cap_s)


def counter_key(kind: str, *parts: str) -> str:
    return hashlib.sha256("\x1f".join((kind, *parts)).encode()).hexdigest()


class SigninCounter(Base):
    """One throttling counter (the database store's row)."""

    __tablename__ = "signin_counters"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    tries: Mapped[int] = mapped_column(Integer)
    wait_s: Mapped[float] = mapped_column(Float)
    blocked_until: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float, index=True)


class DatabaseCounters:
    """Counters in the ``signin_counters`` table, each reservation one atomic upsert."""

    #: Every this many reservations, expired counters are deleted (bounded, in passing).
    PRUNE_EVERY = 200

    def __init__(self, database: Database) -> None:
        self.database = database
        self._reservations = 0

    def _upsert(self, dialect: str, key: str, rule: Backoff, now: float):
        t = SigninCounter.__table__.c
        insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(
            SigninCounter.__table__)
        first_wait = rule.wait_after(1)
        # A try that imposes no wait blocks nobody: blocked_until stays 0, not "now". A
        # concurrent request whose clock reading is a hair older than this one's would otherwise
        # see the counter as still waiting and be refused for no reason.
        stmt = insert.values(key=key, tries=1, wait_s=first_wait,
                             blocked_until=now + first_wait if first_wait else 0.0,
                             expires_at=now + first_wait + rule.keep_s)
        # Evaluated against the row as it was: an expired counter starts again at one try.
        fresh = t.expires_at <= now
        doubled = t.wait_s * 2
        wait = case(
            (fresh, first_wait),
            (t.tries + 1 < rule.free, 0.0),
            (doubled < rule.base_s, rule.base_s),
            (doubled > rule.cap_s, rule.cap_s),
            else_=doubled,
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.key],
            set_={"tries": case((fresh, 1), else_=t.tries + 1), "wait_s": wait,
                  "blocked_until": case((wait > 0, now + wait), else_=0.0),
                  "expires_at": now + wait + rule.keep_s},
            # A counter still waiting is left as it is, and the upsert returns no row.
            where=or_(fresh, t.blocked_until <= now),
        )
        return stmt.returning(t.tries)

    def reserve(self, rules: Sequence[tuple[str, Backoff]], now: float) -> float:
        with self.database.session(write=True) as session:
            dialect = session.get_bind().dialect.name
            for key, rule in rules:
                if session.execute(self._upsert(dialect, key, rule, now)).first() is None:
                    session.rollback()  # give back the reservations already made
                    keys = [k for k, _ in rules]
                    until = session.scalar(select(SigninCounter.blocked_until).where(
                        SigninCounter.key.in_(keys), SigninCounter.blocked_until > now
                    ).order_by(SigninCounter.blocked_until.desc()).limit(1))
                    return max((until or now) - now, 0.001)
            self._reservations += 1
            if self._reservations % self.PRUNE_EVERY == 0:
                session.execute(delete(SigninCounter).where(SigninCounter.expires_at < now))
            session.commit()
        return 0.0

    def clear(self, key: str) -> None:
        with self.database.session(write=True) as session:
            session.execute(delete(SigninCounter).where(SigninCounter.key == key))
            session.commit()

    def give_back(self, key: str) -> None:
        with self.database.session(write=True) as session:
            session.execute(update(SigninCounter).where(
                SigninCounter.key == key, SigninCounter.tries > 0
            ).values(tries=SigninCounter.tries - 1))
            session.commit()


# KEYS: the counters; ARGV: now, then free, base, cap, keep for each key. Returns the seconds to
# wait ("0" when the try is reserved on every counter). Lua runs atomically on the server.
_RESERVE = """
local now = tonumber(ARGV[1])
local wait = 0
for i, key in ipairs(KEYS) do
  local blocked = tonumber(redis.call('HGET', key, 'blocked_until') or '0')
  if blocked > now then wait = math.max(wait, blocked - now) end
end
if wait > 0 then return tostring(wait) end
for i, key in ipairs(KEYS) do
  local o = 1 + (i - 1) * 4
  local free, base = tonumber(ARGV[o + 1]), tonumber(ARGV[o + 2])
  local cap, keep = tonumber(ARGV[o + 3]), tonumber(ARGV[o + 4])
  local tries = redis.call('HINCRBY', key, 'tries', 1)
  local delay = tonumber(redis.call('HGET', key, 'wait') or '0')
  if tries < free then delay = 0 else delay = math.min(math.max(delay * 2, base), cap) end
  local hold = 0
  if delay > 0 then hold = now + delay end
  redis.call('HSET', key, 'wait', tostring(delay), 'blocked_until', tostring(hold))
  redis.call('PEXPIRE', key, math.ceil((delay + keep) * 1000))
end
return '0'
"""
_GIVE_BACK = """
if tonumber(redis.call('HGET', KEYS[1], 'tries') or '0') > 0 then
  redis.call('HINCRBY', KEYS[1], 'tries', -1)
end
return 0
"""


class RedisCounters:
    """Counters in Redis, shared by every node. Should Redis not answer, the database counters
    take over (logged): sign-in keeps working and stays exact, only without Redis's speed."""

    def __init__(self, url: str, fallback: DatabaseCounters, prefix: str = "microcred:signin:"):
        import redis

        # A reply that times out may come from a script that ran: the fallback then counts the
        # try again (one try too few, never one too many), so the timeout is generous.
        self.client = redis.Redis.from_url(url, socket_timeout=3, socket_connect_timeout=1)
        self._errors = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
        self._reserve = self.client.register_script(_RESERVE)
        self._give_back = self.client.register_script(_GIVE_BACK)
        self.fallback, self.prefix = fallback, prefix

    def _down(self, exc: Exception) -> None:
        log.warning("sign-in throttling: Redis did not answer (%s); using the database", exc)

    def reserve(self, rules: Sequence[tuple[str, Backoff]], now: float) -> float:
        args: list[float | int] = [now]
        for _, rule in rules:
            args += [rule.free, rule.base_s, rule.cap_s, rule.keep_s]
        try:
            wait = float(self._reserve(keys=[self.prefix + k for k, _ in rules], args=args))
        except self._errors as exc:
            self._down(exc)
            return self.fallback.reserve(rules, now)
        return wait

    def clear(self, key: str) -> None:
        try:
            self.client.delete(self.prefix + key)
        except self._errors as exc:
            self._down(exc)
            self.fallback.clear(key)

    def give_back(self, key: str) -> None:
        try:
            self._give_back(keys=[self.prefix + key])
        except self._errors as exc:
            self._down(exc)
            self.fallback.give_back(key)


class SigninThrottle:
    """The throttle the sign-in view asks before checking a password, and tells after."""

    def __init__(self, counters: DatabaseCounters | RedisCounters, *, per_account: Backoff,
                 per_address: Backoff) -> None:
        self.counters, self.per_account, self.per_address = counters, per_account, per_address

    @classmethod
    def from_settings(cls, settings, database: Database) -> SigninThrottle:
        counters: DatabaseCounters | RedisCounters = DatabaseCounters(database)
        if settings.redis_url:
            counters = RedisCounters(settings.redis_url, fallback=counters)
        base, cap = settings.signin_backoff_base_seconds, settings.signin_backoff_cap_seconds
        keep = settings.signin_window_seconds
        return cls(
            counters,
            per_account=Backoff(settings.signin_max_failures_per_account, base, cap, keep),
            per_address=Backoff(settings.signin_max_failures_per_address, base, cap, keep),
        )

    @staticmethod
    def _keys(email: str, address: str) -> tuple[str, str]:
        return counter_key("account+address", email, address), counter_key("address", address)

    def reserve(self, email: str, address: str) -> int:
        """Reserve one try for ``email`` from ``address``: 0 when it may go ahead, else the
        whole seconds to wait (nothing is counted then)."""
        pair, addr = self._keys(email, address)
        wait = self.counters.reserve([(addr, self.per_address), (pair, self.per_account)],
                                     microcred_clock.timestamp())
        return 0 if wait <= 0 else max(1, math.ceil(wait))

    def succeeded(self, email: str, address: str) -> None:
        pair, addr = self._keys(email, address)
        self.counters.clear(pair)
        self.counters.give_back(addr)
