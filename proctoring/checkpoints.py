"""Signed checkpoints that anchor the audit chain outside the database.

The hash chain (:mod:`proctoring.audit`) shows edits only to someone who cannot rehash: a
database writer can edit a record and recompute every later hash and the head, or delete the
newest records and move the head back, and the chain verifies. A checkpoint is a statement
"the chain had ``seq`` records ending in hash ``head`` at time ``at``", signed with an Ed25519
key that is not in the database, and appended as one JSON line to a file in the instance
folder (``audit_checkpoints.jsonl``). Since each record's hash covers every record before it,
a stored record ``seq`` whose hash is still the signed ``head`` proves records 1..seq are
unchanged; a log shorter than ``seq`` proves rows were deleted.

Each checkpoint also carries the SHA-256 of the previous checkpoint (``prev``), so an exported
copy shows whether lines were later removed from the file. A checkpoint is signed only after
the records added since the previous one have been checked to extend it: a chain rewritten
behind the last checkpoint is never signed.

The key: ``MICROCRED_AUDIT_SIGNING_KEY`` (the Ed25519 private key's 32 bytes as 64 hex digits),
else ``audit_signing_key`` in the instance folder, generated once (mode 0600). What each kind
of attacker can and cannot hide is in docs/proctoring.md ("Anchoring the audit log").
"""
from __future__ import annotations

import base64
import datetime as dt
import fcntl
import hashlib
import json
import logging
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import select
from sqlalchemy.orm import Session

from microcred.db import utcnow
from microcred.errors import DomainError
from microcred.inputs import is_whole
from microcred.keyfile import read_or_create
from proctoring.audit import GENESIS, HEAD_ID, VerifyReport, canonical, link_hash, verify
from proctoring.models import AuditChainHead, AuditRecord

CHECKPOINT_FILE = "audit_checkpoints.jsonl"
KEY_FILE = "audit_signing_key"
FORMAT = "microcred-audit-checkpoint/1"
EXPORT_FORMAT = "microcred-audit-checkpoints/1"
DEFAULT_EVERY_S = 300

log = logging.getLogger("microcred.audit")


class CheckpointError(DomainError):
    """A checkpoint cannot be written (the chain no longer extends the last one) or read."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Signer:
    """The checkpoint key: signs with the private half; anyone can check with ``public_key``."""

    private_key: Ed25519PrivateKey

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    @property
    def public_key_text(self) -> str:
        return public_key_text(self.public_key)


def public_key_text(key: Ed25519PublicKey) -> str:
    """The public key as 43 base64url characters (its 32 raw bytes)."""
    return _b64(key.public_bytes(Encoding.Raw, PublicFormat.Raw))


def parse_public_key(text: str) -> Ed25519PublicKey:
    """A public key given as base64url (as printed by export) or as 64 hex digits."""
    text = text.strip()
    try:
        raw = bytes.fromhex(text) if len(text) == 64 else _unb64(text)
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise CheckpointError("the public key must be 32 bytes as base64url or 64 hex digits") from None


def key_id(key: Ed25519PublicKey) -> str:
    return hashlib.sha256(key.public_bytes(Encoding.Raw, PublicFormat.Raw)).hexdigest()[:16]


def load_signer(instance_dir: Path, environ: dict[str, str] | None = None) -> Signer:
    """The checkpoint key from ``MICROCRED_AUDIT_SIGNING_KEY``, else the instance folder's
    (created once, 0600, safely when several processes start together)."""
    env = os.environ if environ is None else environ
    raw = env.get("MICROCRED_AUDIT_SIGNING_KEY") or read_or_create(
        Path(instance_dir) / KEY_FILE, lambda: secrets.token_bytes(32).hex())
    try:
        seed = bytes.fromhex(raw.strip())
        return Signer(Ed25519PrivateKey.from_private_bytes(seed))
    except ValueError:
        raise CheckpointError("the audit signing key must be 32 bytes as 64 hex digits "
                              "(MICROCRED_AUDIT_SIGNING_KEY or instance/audit_signing_key)") from None


@dataclass(frozen=True)
class Checkpoint:
    """``seq`` records ending in hash ``head``, at ``at``, after checkpoint ``prev``."""

    seq: int
    head: str
    at: str
    prev: str
    key_id: str
    signature: str = ""

    def body(self) -> bytes:
        """The bytes the signature covers: sorted-key compact JSON of everything else."""
        return json.dumps({"format": FORMAT, "seq": self.seq, "head": self.head, "at": self.at,
                           "prev": self.prev, "key_id": self.key_id},
                          sort_keys=True, separators=(",", ":")).encode()

    def digest(self) -> str:
        """What the next checkpoint's ``prev`` carries."""
        return hashlib.sha256(self.body()).hexdigest()

    def line(self) -> str:
        return json.dumps({"format": FORMAT, "seq": self.seq, "head": self.head, "at": self.at,
                           "prev": self.prev, "key_id": self.key_id,
                           "signature": self.signature}, sort_keys=True)

    @classmethod
    def parse(cls, raw: Any, where: str) -> Checkpoint:
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            raise CheckpointError(f"{where}: not a {FORMAT} checkpoint")
        try:
            cp = cls(seq=raw["seq"], head=raw["head"], at=raw["at"], prev=raw["prev"],
                     key_id=raw["key_id"], signature=raw["signature"])
        except KeyError as exc:
            raise CheckpointError(f"{where}: the field {exc.args[0]!r} is missing") from None
        if not isinstance(cp.seq, int) or isinstance(cp.seq, bool) or cp.seq < 0 or not all(
                isinstance(v, str) for v in (cp.head, cp.at, cp.prev, cp.key_id, cp.signature)):
            raise CheckpointError(f"{where}: a field has the wrong type")
        return cp

    def signed_by(self, key: Ed25519PublicKey) -> bool:
        try:
            key.verify(_unb64(self.signature), self.body())
            return True
        except (InvalidSignature, ValueError):
            return False

    @property
    def time(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.at)


def checkpoint_path(instance_dir: Path) -> Path:
    return Path(instance_dir) / CHECKPOINT_FILE


def read_checkpoints(path: Path) -> list[Checkpoint]:
    """The checkpoints of a file: the instance folder's JSON lines, or an export
    (:func:`export`). A missing file has none; a malformed line raises :class:`CheckpointError`."""
    path = Path(path)
    if not path.exists():
        return []
    text = path.read_text()
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        doc = None  # JSON lines
    if isinstance(doc, dict) and doc.get("format") == EXPORT_FORMAT:
        raw_list = doc.get("checkpoints")
        if not isinstance(raw_list, list):
            raise CheckpointError(f"{path}: 'checkpoints' must be a list")
        return [Checkpoint.parse(raw, f"{path} checkpoint {i + 1}")
                for i, raw in enumerate(raw_list)]
    out = []
    for n, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                raw = json.loads(line)
            except json.JSONDecodeError:
                raise CheckpointError(f"{path} line {n}: not JSON") from None
            out.append(Checkpoint.parse(raw, f"{path} line {n}"))
    return out


def _chain_head(session: Session) -> tuple[int, str]:
    head = session.get(AuditChainHead, HEAD_ID, populate_existing=True)
    return (int(head.seq), str(head.hash)) if head else (0, GENESIS)


def _check_extends(session: Session, last: Checkpoint | None, head_seq: int, head_hash: str,
                   batch: int = 5000) -> None:
    """Raise unless the records from ``last`` up to the head extend it, hash by hash."""
    seq, prev = (last.seq, last.head) if last else (0, GENESIS)
    if head_seq < seq:
        raise CheckpointError(f"the audit log has {head_seq} records but the last checkpoint "
                              f"({last.at}) signed {seq}: the newest rows were deleted")
    if seq:
        stored = session.scalar(select(AuditRecord.hash).where(AuditRecord.seq == seq))
        if stored != prev:
            raise CheckpointError(f"audit record {seq} no longer has the hash the last checkpoint "
                                  f"({last.at}) signed: records up to {seq} were rewritten")
    while seq < head_seq:
        rows = list(session.scalars(select(AuditRecord).where(
            AuditRecord.seq > seq, AuditRecord.seq <= head_seq).order_by(AuditRecord.seq)
            .limit(batch).execution_options(populate_existing=True)))
        if not rows:
            break
        for r in rows:
            payload = canonical(r.seq, r.at, r.actor_id, r.actor, r.action, r.subject_type,
                                r.subject_id, r.data)
            if r.seq != seq + 1 or r.prev_hash != prev or link_hash(prev, payload) != r.hash:
                raise CheckpointError(f"audit record {r.seq} does not extend the chain the last "
                                      "checkpoint signed; not signing it (run microcred audit verify)")
            seq, prev = r.seq, r.hash
    if (seq, prev) != (head_seq, head_hash):
        raise CheckpointError("the audit chain head does not match its newest record; not signing "
                              "it (run microcred audit verify)")


def write_checkpoint(session: Session, instance_dir: Path, *, signer: Signer | None = None,
                     now: dt.datetime | None = None) -> Checkpoint:
    """Sign the chain's current head and append it to the instance folder's checkpoint file.
    The file is locked while the last checkpoint is read and the new one appended, so two
    writers (the sweeper and a command) never both chain from the same one."""
    signer = signer or load_signer(instance_dir)
    path = checkpoint_path(instance_dir)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o640)
    with os.fdopen(fd, "r+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        existing = read_checkpoints(path)
        last = existing[-1] if existing else None
        head_seq, head_hash = _chain_head(session)
        _check_extends(session, last, head_seq, head_hash)
        cp = Checkpoint(seq=head_seq, head=head_hash,
                        at=(now or utcnow()).astimezone(dt.UTC).isoformat(timespec="seconds"),
                        prev=last.digest() if last else GENESIS, key_id=key_id(signer.public_key))
        cp = Checkpoint(**{**cp.__dict__, "signature": _b64(signer.private_key.sign(cp.body()))})
        fh.write(cp.line() + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return cp


def checkpoint_every_s(environ: dict[str, str] | None = None) -> int:
    """``MICROCRED_AUDIT_CHECKPOINT_SECONDS``: the most time between two checkpoints (300)."""
    env = os.environ if environ is None else environ
    raw = env.get("MICROCRED_AUDIT_CHECKPOINT_SECONDS", "").strip() or str(DEFAULT_EVERY_S)
    if not is_whole(raw) or int(raw) < 1:
        raise ValueError(
            f"MICROCRED_AUDIT_CHECKPOINT_SECONDS must be a whole number of at least 1, got {raw!r}")
    return int(raw)


def checkpoint_if_due(session: Session, instance_dir: Path, *, every_s: int | None = None,
                      now: dt.datetime | None = None) -> Checkpoint | None:
    """What the sweeper calls: a checkpoint when the chain has grown and the last one is older
    than ``every_s`` (``MICROCRED_AUDIT_CHECKPOINT_SECONDS``, 300). Never raises: a chain that
    no longer extends the last checkpoint is logged as an error, every time, and not signed."""
    now = now or utcnow()
    every = every_s if every_s is not None else checkpoint_every_s()
    try:
        existing = read_checkpoints(checkpoint_path(instance_dir))
        last = existing[-1] if existing else None
        head_seq, _ = _chain_head(session)
        if last is not None and (head_seq == last.seq
                                 or (now - last.time).total_seconds() < every):
            return None
        if last is None and head_seq == 0:
            return None
        return write_checkpoint(session, instance_dir, now=now)
    except CheckpointError as exc:
        log.error("audit checkpoint refused: %s", exc)
        return None


@dataclass
class AnchoredReport(VerifyReport):
    """:func:`proctoring.audit.verify`'s report, checked against the signed checkpoints too."""

    checkpoints: int = 0
    last_checkpoint: Checkpoint | None = None
    notes: list[str] = field(default_factory=list)


def verify_anchored(session: Session, checkpoints: list[Checkpoint],
                    public_key: Ed25519PublicKey) -> AnchoredReport:
    """Verify the chain, then check it against every checkpoint: each must be signed by
    ``public_key`` and follow the one before it, and the stored record at each checkpoint's
    ``seq`` must still carry the signed hash."""
    base = verify(session)
    report = AnchoredReport(records=base.records, problems=list(base.problems),
                            checkpoints=len(checkpoints))
    if not checkpoints:
        report.notes.append("no signed checkpoint yet: the chain was checked against itself only, "
                            "which a database writer can forge (microcred audit checkpoint)")
        return report
    report.problems += _checkpoint_problems(checkpoints, public_key)
    head_seq, _ = _chain_head(session)
    stored = _hashes_at(session, {cp.seq for cp in checkpoints if cp.seq})
    for cp in checkpoints:
        if cp.seq > head_seq:
            report.problems.append(
                f"checkpoint of {cp.at} signed {cp.seq} records, but the log now has {head_seq}: "
                "the newest rows were deleted and the chain head moved back")
            break
        if cp.seq and stored.get(cp.seq) != cp.head:
            report.problems.append(
                f"record seq {cp.seq} does not carry the hash the checkpoint of {cp.at} signed: "
                f"records up to seq {cp.seq} were rewritten (and rehashed)")
            break
    report.last_checkpoint = checkpoints[-1]
    return report


def _checkpoint_problems(checkpoints: list[Checkpoint], key: Ed25519PublicKey) -> list[str]:
    problems = []
    prev, seq, at = GENESIS, 0, ""
    for n, cp in enumerate(checkpoints, start=1):
        if cp.key_id != key_id(key) or not cp.signed_by(key):
            problems.append(f"checkpoint {n} ({cp.at}) is not signed by the audit key "
                            f"{key_id(key)}: the checkpoint file was edited")
        if cp.prev != prev:
            problems.append(f"checkpoint {n} ({cp.at}) does not follow checkpoint {n - 1}: "
                            "checkpoints were removed or reordered")
        if cp.seq < seq or cp.at < at:
            problems.append(f"checkpoint {n} ({cp.at}) goes back in records or time")
        prev, seq, at = cp.digest(), cp.seq, cp.at
    return problems


def _hashes_at(session: Session, seqs: Iterable[int]) -> dict[int, str]:
    wanted, out = sorted(seqs), {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start:start + 500]
        out.update({seq: h for seq, h in session.execute(
            select(AuditRecord.seq, AuditRecord.hash).where(AuditRecord.seq.in_(chunk)))})
    return out


def export(instance_dir: Path, signer: Signer | None = None) -> dict[str, Any]:
    """The checkpoints and the public key that checks them, as one JSON document to keep
    somewhere the server cannot write (and to give to ``microcred audit verify --checkpoints``)."""
    signer = signer or load_signer(instance_dir)
    return {"format": EXPORT_FORMAT, "public_key": signer.public_key_text,
            "key_id": key_id(signer.public_key),
            "checkpoints": [json.loads(cp.line())
                            for cp in read_checkpoints(checkpoint_path(instance_dir))]}
