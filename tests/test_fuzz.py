"""Finding 8 of issue 9, as a class: no route answers 5xx, whatever it is sent.

schemathesis generates requests from the OpenAPI document the app serves (assessment/openapi.json)
for every JSON operation, valid and invalid, against random ids and the ids of real rows, as
every role; hypothesis does the same for every HTML form route. Bounded: a few examples per
operation and role, no deadline; the JSON API on SQLite only, the forms on both databases.

A small populated Microcred is built first: one user of each role signed in on its own client,
a proctored exam with an attempt in progress (and its proctoring session), a plain exam with an
achievement, and an issued credential (so status lists, issuers and badges exist).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from sqlalchemy import select

ROLES = ("anonymous", "candidate", "proctor", "admin", "psychometrician")


@dataclass
class Visitor:
    role: str
    client: Any
    csrf: str = ""

    def headers(self) -> dict[str, str]:
        """The headers a request outside the test client needs to act as this visitor (with
        :meth:`cookies`): the CSRF token, and the test client's User-Agent and address, which
        Flask-Login's 'strong' session protection ties the session to."""
        return {"User-Agent": f"Werkzeug/{_werkzeug_version()}", "X-CSRFToken": self.csrf,
                "X-Forwarded-For": "127.0.0.1"}

    def cookies(self) -> dict[str, str]:
        cookie = self.client.get_cookie("session")
        return {"session": cookie.value} if cookie is not None else {}


@dataclass
class World:
    app: Any
    visitors: dict[str, Visitor]
    exam_code: str
    plain_exam_code: str
    attempt_id: int
    session_id: int
    list_id: int
    public_id: str
    achievement_code: str
    ids: dict[str, int] = field(default_factory=dict)

    def real_path_parameters(self) -> dict[str, Any]:
        return {"attempt_id": self.attempt_id, "session_id": self.session_id,
                "list_id": self.list_id, "code": self.exam_code, "slug": "default",
                "public_id": self.public_id}


def _werkzeug_version() -> str:
    from importlib.metadata import version

    return version("werkzeug")


def build_world(app, db, make_user, build_exam, signin, csrf_token) -> World:
    from assessment.delivery.models import Attempt
    from credentials import issuance
    from credentials.config import current
    from proctoring.assignments import assign
    from proctoring.models import ProctorSession

    users = {role: make_user(role) for role in ROLES if role != "anonymous"}
    holder = make_user("candidate")
    exam = build_exam(db, code="FZ-PROC", policy={"proctoring": {
        "identity": "none", "review": "flagged", "snapshot_interval_s": 30}})
    plain = build_exam(db, code="FZ-PLAIN")
    assign(db, users["proctor"], exam, users["admin"])
    db.commit()
    with app.test_request_context():
        cfg = current()
        achievement = issuance.create_achievement(
            db, cfg, code="FZ-BADGE", name="Fuzz badge", description="Earned by FZ-PLAIN",
            exam_id=plain.id, validity_days=365)
        credential = issuance.issue(db, cfg, achievement=achievement, holder=holder,
                                    kind="exam", evidence=[])
        db.commit()
        public_id, list_id = credential.public_id, credential.status_list_id
    visitors = {}
    for role in ROLES:
        client = app.test_client()
        if role != "anonymous":
            signin(client, users[role])
        visitors[role] = Visitor(role, client, csrf_token(client))
    cand = visitors["candidate"]
    started = cand.client.post(f"/exams/{exam.code}/start",
                               data={"agree": "yes", "csrf_token": cand.csrf})
    assert started.status_code == 302, started.get_data(as_text=True)[:300]
    attempt_id = int(re.search(r"/attempts/(\d+)", started.headers["Location"]).group(1))
    db.expire_all()
    attempt = db.get(Attempt, attempt_id)
    session_id = db.scalar(select(ProctorSession.id).where(
        ProctorSession.attempt_id == attempt.id))
    assert session_id is not None, "the proctored attempt has no proctoring session"
    world = World(app=app, visitors=visitors, exam_code=exam.code, plain_exam_code=plain.code,
                  attempt_id=attempt_id, session_id=session_id, list_id=list_id,
                  public_id=public_id, achievement_code=achievement.code,
                  ids={role: u.id for role, u in users.items()})
    db.rollback()
    return world

#: The JSON API is fuzzed on SQLite only (its database-specific cases, lengths and id ranges,
#: have explicit tests on both databases in test_input_bounds.py); the forms, cheaper and
#: where most text reaches the database, on both.
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

#: Who each operation is for gets more examples; every other role is still tried.
EXAMPLES_FOR_OWNER, EXAMPLES_FOR_OTHERS = 12, 3
EDGE_IDS = (0, -1, 2**31 - 1, 2**31, 2**63 - 1, 2**63, 2**64)
OWNERS = {"runner": {"candidate"}, "proctoring": {"candidate", "proctor", "admin"},
          "psychometrics": {"psychometrician", "admin"}, "credentials": {"anonymous"},
          "itembank": {"psychometrician", "admin"}}


def _settings(examples: int):
    return settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                    phases=[Phase.explicit, Phase.generate, Phase.shrink],
                    suppress_health_check=list(HealthCheck))


@pytest.fixture
def world(app, db, make_user, build_exam, signin, csrf_token) -> World:
    return build_world(app, db, make_user, build_exam, signin, csrf_token)


@sqlite_only
def test_every_json_route_is_in_the_openapi_document(app, client):
    """The document describes every route that speaks JSON: a new JSON route without a
    description (and so without fuzzing) fails here."""
    from assessment.api_docs import openapi_path

    doc = client.get("/api/openapi.json").get_json()
    described = {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}
    json_routes = {"delivery.api_", "proctoring.api_", "credentials.api_", "psych.items_json", "psych.run_progress",
                   "psych.report_json",
                   "credentials.status_list", "credentials.issuer_profile",
                   "credentials.did_default", "credentials.did_issuer", "credentials.badge_json",
                   "home.healthz", "api_docs.openapi"}
    routed = {(openapi_path(rule.rule), method) for rule in app.url_map.iter_rules()
              for method in rule.methods - {"HEAD", "OPTIONS"}
              if rule.rule.startswith("/api/") or any(
                  rule.endpoint == name or (name.endswith("_") and rule.endpoint.startswith(name))
                  for name in json_routes)}
    assert routed - described == set(), "JSON routes missing from assessment/openapi.json"
    assert described - routed == set(), "the document describes routes the app does not have"
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if method == "post":
                assert op.get("requestBody", {}).get("content"), f"{method} {path}: no body schema"


@sqlite_only
def test_json_api_never_answers_5xx(world):
    """Finding 8: schemathesis generates requests from the OpenAPI document (valid and invalid
    ones, against random and real ids) for every operation, as every role; none may get 5xx."""
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", world.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 17
    real = world.real_path_parameters()
    for operation in operations:
        tags = set(operation.definition.raw.get("tags", ["credentials"]))
        names = {p.name for p in operation.path_parameters}
        for role, visitor in world.visitors.items():
            examples = EXAMPLES_FOR_OWNER if any(role in OWNERS.get(t, ()) for t in tags) \
                else EXAMPLES_FOR_OTHERS
            _fuzz(operation, visitor, {k: v for k, v in real.items() if k in names}, examples)


def _fuzz(operation, visitor: Visitor, real: dict, examples: int) -> None:
    strategies = [operation.as_strategy(GenerationMode.POSITIVE),
                  operation.as_strategy(GenerationMode.NEGATIVE)]
    if real:
        strategies.append(operation.as_strategy(GenerationMode.POSITIVE, path_parameters=real))
    ids = [name for name in real if name.endswith("_id")]
    if ids:  # the ids that overflowed database drivers: hypothesis alone rarely draws them
        strategies.append(st.sampled_from(EDGE_IDS).flatmap(
            lambda bad: operation.as_strategy(GenerationMode.POSITIVE,
                                              path_parameters={name: bad for name in ids})))
    headers, cookies = visitor.headers(), visitor.cookies()

    @_settings(examples)
    @given(case=st.one_of(strategies))
    def check(case) -> None:
        response = case.call(headers=headers, cookies=cookies)
        assert response.status_code < 500, (
            f"{operation.label} as {visitor.role}: {response.status_code} "
            f"{response.text[:300]}\n{case.as_curl_command()}")

    check()


# --- the HTML forms ------------------------------------------------------------------------------

#: What a form field may be sent as: left out, any text, numbers of every size (as text), and
#: the values that broke forms before (huge, negative, not-a-number, control characters).
FIELD = st.one_of(
    st.none(),
    st.text(max_size=300),
    st.integers().map(str),
    st.sampled_from(["", " ", "0", "-1", "1e308", "nan", "inf", str(2**63), str(2**64),
                     "999999999", "x" * 5000, "javascript:alert(1)", "\r\n", "%00",
                     "nul\x00char", "/\t/evil"]),
)


def _form(*names: str):
    return st.fixed_dictionaries({}, optional={name: FIELD for name in names})


def _forms(world: World) -> list[tuple[str, str, str, Any]]:
    """(role, method, path, strategy of form data) for every form route."""
    sid, code, pub = world.session_id, world.exam_code, world.public_id
    actions = st.sampled_from(["admit", "reject", "pause", "resume", "extend", "message",
                               "note", "terminate", "review", "teleport"])
    return [
        ("anonymous", "POST", "/signin", _form("email", "password", "next")),
        ("anonymous", "POST", "/verify", _form("credential", "badge")),
        ("admin", "POST", "/admin/users", _form("email", "password", "role", "display_name")),
        ("admin", "GET", "/bank/export", _form("q", "status", "type", "domain")),
        ("admin", "GET", "/bank/export.zip", _form("format", "q", "status", "type", "domain")),
        ("admin", "POST", ("/bank/import/", st.text(max_size=80)), _form("action")),
        ("admin", "POST", "/admin/accommodations",
         _form("candidate_email", "time_multiplier", "reason", "exam_id")),
        ("admin", "POST", "/admin/achievements",
         _form("code", "name", "description", "criteria", "exam_id", "recertification_exam_id",
               "validity_days", "components", "stack_required")),
        ("admin", "POST", f"/admin/credentials/{pub}/status", _form("action", "reason")),
        ("admin", "POST", f"/admin/credentials/{pub}/recertify",
         _form("narrative", "evidence_url")),
        ("admin", "GET", "/admin/credentials", _form("days")),
        ("admin", "POST", "/proctor/assignments", _form("proctor", "exam", "remove")),
        ("proctor", "POST", (f"/proctor/sessions/{sid}/actions/", actions),
         _form("reason", "minutes", "text", "verdict", "next")),
        ("admin", "POST", "/admin/users/status", _form("email", "action")),
        ("psychometrician", "POST", ("/psych/runs/1/", st.sampled_from(["approve", "reject"])),
         _form("reason", "override_not_converged")),
        ("psychometrician", "POST", f"/psych/exams/{world.plain_exam_code}/calibrate",
         _form("model", "max_iter")),
        ("candidate", "POST", "/account/password",
         _form("current_password", "new_password", "confirm_password")),
        ("candidate", "POST", "/wallet", _form("name_display", "did")),
        ("admin", "POST", "/admin/pathways/stacks/CCF-PATH",
         _form("required", "electives", "action")),
        ("admin", "POST", "/admin/pathways/exams/1", _form("required", "electives", "action")),
        ("admin", "POST", "/admin/pathways/trainings",
         _form("code", "name", "description", "validity_days")),
        ("admin", "POST", "/admin/pathways/completions",
         _form("email", "training", "completed_on", "reference")),
        ("admin", "POST", "/admin/pathways/tokens", _form("name")),
        ("admin", "GET", "/admin/pathways/program", _form("close", "format")),
        ("candidate", "POST", f"/exams/{code}/start", _form("agree")),
    ]


def test_html_forms_never_answer_5xx(world):
    """Finding 8: every form route, sent any subset of its fields with any values (missing,
    huge numbers, NaN, 5,000 characters, control characters), answers 2xx/3xx/4xx."""
    for role, method, path, data in _forms(world):
        paths = st.builds(lambda a, b: a + b, st.just(path[0]), path[1]) \
            if isinstance(path, tuple) else st.just(path)
        _fuzz_form(world.visitors[role], method, paths, data)


def _fuzz_form(visitor: Visitor, method: str, paths: Any, data: Any) -> None:
    @_settings(15)
    @given(where=paths, fields=data)
    def check(where: str, fields: dict[str, str | None]) -> None:
        sent = {k: v for k, v in fields.items() if v is not None}
        if method == "GET":
            response = visitor.client.get(where, query_string=sent)
        else:
            response = visitor.client.post(where, data={**sent, "csrf_token": visitor.csrf})
        assert response.status_code < 500, (method, where, sent, response.status_code)

    check()
