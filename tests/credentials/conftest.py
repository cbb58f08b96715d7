"""Fixtures for the credentials tests that need no database: an issuer with a did:key, its
status lists, and a signed OpenBadgeCredential."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pytest

from credentials import dataintegrity, keys, openbadge, statuslist
from credentials.verify import Resolver

BASE = "https://badges.example.test"
NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


@dataclass
class Issued:
    private_key: Any
    did: str
    vm: str
    credential: dict
    unsigned: dict
    revocation: statuslist.Bitstring
    suspension: statuslist.Bitstring
    list_url: str
    index: int

    def signed_list(self, purpose: str) -> dict:
        bits = self.revocation if purpose == "revocation" else self.suspension
        url = self.list_url if purpose == "revocation" else self.suspension_url
        doc = statuslist.list_credential(list_url=url, issuer=self.did, purpose=purpose,
                                         bitstring=bits, valid_from="2026-01-01T00:00:00Z")
        return dataintegrity.add_proof(doc, self.private_key, verification_method=self.vm,
                                       created=NOW)

    @property
    def suspension_url(self) -> str:
        return self.list_url.replace("/revocation", "/suspension")

    def resolver(self) -> Resolver:
        return Resolver(status_lists={self.list_url: self.signed_list("revocation"),
                                      self.suspension_url: self.signed_list("suspension")})


def make_issued(valid_until: str | None = "2028-03-01T12:00:00Z", index: int = 42,
                extra: dict | None = None) -> Issued:
    key = keys.generate_private_key()
    did = keys.did_key(key)
    vm = keys.did_key_verification_method(key)
    list_url = f"{BASE}/status/1/revocation"
    achievement = openbadge.AchievementInfo(
        id=f"{BASE}/achievements/PY-101",
        name="Python Fundamentals",
        description="Can write, test and debug small Python programs.",
        criteria="Pass the proctored Python Fundamentals exam with a scaled score of 70.",
        image=f"{BASE}/achievements/PY-101/image.png",
        domains=[openbadge.Domain("SYN", "Syntax", "Core syntax"),
                 openbadge.Domain("TST", "Testing")],
        required_score=70,
        exam_title="Python Fundamentals Exam",
    )
    unsigned = openbadge.build_credential(
        credential_id=f"{BASE}/badges/3f1c5b0e-1111-4a4a-9b9b-000000000001",
        issuer=openbadge.IssuerInfo(id=did, name="Microcred Test Board", url=BASE),
        achievement=achievement,
        valid_from="2026-02-01T10:00:00Z",
        valid_until=valid_until,
        identifier=openbadge.identity_object("Ada@Example.org", "c0ffee"),
        score=81.5,
        evidence=[openbadge.EvidenceInfo(
            name="Python Fundamentals Exam", narrative="Identity verified and proctored.")],
        credential_status=[
            statuslist.entry(list_url.replace("/revocation", f"/{purpose}"), index, purpose)
            for purpose in statuslist.PURPOSES],
    )
    if extra:
        unsigned.update(extra)
    signed = dataintegrity.add_proof(unsigned, key, verification_method=vm, created=NOW)
    return Issued(key, did, vm, signed, unsigned, statuslist.Bitstring(),
                  statuslist.Bitstring(), list_url, index)


@pytest.fixture(scope="session")
def issued_template() -> Issued:
    return make_issued()


@pytest.fixture
def issued(issued_template: Issued) -> Issued:
    import copy

    # fresh bitstrings per test, same (expensive to canonicalize) signed credential
    item = copy.copy(issued_template)
    item.credential = copy.deepcopy(issued_template.credential)
    item.revocation = statuslist.Bitstring()
    item.suspension = statuslist.Bitstring()
    return item


@pytest.fixture
def now() -> dt.datetime:
    return NOW


@pytest.fixture
def make_issued_credential():
    return make_issued


# --- database-backed helpers (use the suite's ``db``, ``make_user`` and ``build_exam``) ------

def take_exam(session, candidate, exam, *, correct: bool = True, during=None):
    """Sit ``exam`` through delivery's services, answering everything right (or wrong), and
    submit: delivery releases the result and sends ``result_released``. ``during(attempt)``
    runs between the start and the answers (e.g. camera snapshots)."""
    from assessment.delivery import service
    from itembank.models import ItemVersion

    attempt = service.start_attempt(session, candidate, exam, grace_seconds=5)
    if during is not None:
        during(attempt)
    saves = []
    for n, version_id in enumerate(attempt.item_order, start=1):
        version = session.get(ItemVersion, version_id)
        if version.item_type == "multiple_response":
            value = ["A", "C"] if correct else ["B", "D"]
        else:
            value = "B" if correct else "D"
        saves.append(service.SaveRequest(n, version_id, value, False))
    service.save_responses(session, attempt, saves, grace_seconds=5)
    result = service.submit_attempt(session, attempt, grace_seconds=5)
    session.commit()
    return result


@pytest.fixture
def cred_cfg():
    from credentials.config import current

    return current()


@pytest.fixture(name="take_exam")
def take_exam_fixture():
    return take_exam
