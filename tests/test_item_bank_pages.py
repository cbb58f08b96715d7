"""The item bank's screens (issue 11): who sees them, the editor's field errors and CSRF, the
live preview (never the key), the review actions, and the list's filters and paging over a bank
of hundreds of items in a fixed number of queries."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from itembank import workflow
from itembank.authoring import create_item, publish_version
from itembank.models import APPROVED, IN_REVIEW, Item, ItemEvent, ItemVersion
from microcred.querycount import count_queries

PAGES = ("/bank/items", "/bank/items/new", "/bank/review")


def _post(client, url, data, csrf_token):
    return client.post(url, data={"csrf_token": csrf_token(client), **data})


ITEM = {"item_type": "single_choice", "domain_code": "D1", "stem": "Which code is right?",
        "option-0": "J45.909", "option-1": "J45.901", "correct": "1", "option-2": "J44.9",
        "max_score": "1", "keywords": "asthma, coding", "cognitive_level": "apply"}


@pytest.mark.parametrize("role", ["proctor", "candidate"])
def test_proctors_and_candidates_never_see_the_bank(client, make_user, signin, csrf_token,
                                                    role, db):
    signin(client, make_user(role))
    for url in PAGES:
        assert client.get(url).status_code == 403, url
    assert _post(client, "/bank/items/new", {**ITEM, "code": "X-1"}, csrf_token).status_code == 403
    assert _post(client, "/bank/preview", ITEM, csrf_token).status_code == 403
    assert db.scalar(select(func.count()).select_from(Item)) == 0


def test_signed_out_visitors_are_sent_to_sign_in(client):
    for url in PAGES:
        response = client.get(url)
        assert response.status_code == 302 and "/signin" in response.headers["Location"]


def test_an_author_writes_a_draft_with_errors_shown_next_to_fields(client, make_user, signin,
                                                                    csrf_token, db):
    author = make_user("item_author")
    signin(client, author)
    for url in PAGES:
        assert client.get(url).status_code == 200, url
    bad = _post(client, "/bank/items/new", {**ITEM, "code": "bad code", "stem": " ",
                                            "correct": "", "max_score": "-1"}, csrf_token)
    assert bad.status_code == 422
    page = bad.get_data(as_text=True)
    for name, words in (("code", "a code of 1-64"), ("stem", "write the question"),
                        ("max-score", "a number of points"), ):
        assert re.search(rf'id="f-{name}"[^>]*aria-invalid="true"[^>]*aria-describedby="[^"]*'
                         rf'f-{name}-error', page), name
        assert re.search(rf'<p id="f-{name}-error" class="field-error">[^<]*{words}', page), name
    assert re.search(r'class="field-error" id="f-correct-error">[^<]+', page)
    assert db.scalar(select(func.count()).select_from(Item)) == 0  # nothing half-written

    # no CSRF token: refused, nothing stored
    assert client.post("/bank/items/new", data={**ITEM, "code": "CSRF-1"}).status_code == 400

    created = _post(client, "/bank/items/new", {**ITEM, "code": "CC-1"}, csrf_token)
    assert created.status_code == 302
    db.rollback()  # a new snapshot
    db.expire_all()
    version = db.scalar(select(ItemVersion).join(Item).where(Item.code == "CC-1"))
    assert (version.status, version.key, version.author_id, version.keywords) == (
        "draft", {"correct": ["B"]}, author.id, ["asthma", "coding"])
    # the same code again: the error is next to the code field
    again = _post(client, "/bank/items/new", {**ITEM, "code": "CC-1"}, csrf_token)
    assert again.status_code == 422
    assert 'id="f-code-error" class="field-error">an item with code CC-1 already exists' in \
        again.get_data(as_text=True)

    saved = _post(client, "/bank/items/CC-1/versions/1",
                  {**ITEM, "stem": "Which code fits?"}, csrf_token)
    assert saved.status_code == 302
    page = client.get("/bank/items/CC-1").get_data(as_text=True)
    assert "Changed stem" in page or "changed stem" in page
    # the author submits; approving is not theirs
    assert _post(client, "/bank/items/CC-1/versions/1/move", {"to": "in_review"},
                 csrf_token).status_code == 302
    refused = _post(client, "/bank/items/CC-1/versions/1/move", {"to": "approved"}, csrf_token)
    assert refused.status_code in (302, 403)
    db.rollback()  # a new snapshot
    db.expire_all()
    assert db.get(ItemVersion, version.id).status == IN_REVIEW
    # nor is re-keying, assigning reviewers or configuring stages (403 before any work)
    for url in ("/bank/items/CC-1/versions/1/rekeys", "/bank/items/CC-1/versions/1/reviewers",
                "/bank/review/stages"):
        assert _post(client, url, {}, csrf_token).status_code == 403, url


def test_preview_shows_the_item_as_candidates_see_it_and_never_the_key(client, make_user,
                                                                       signin, csrf_token):
    signin(client, make_user("item_author"))
    response = _post(client, "/bank/preview", {**ITEM, "rationale": "SECRET RATIONALE"},
                     csrf_token)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Which code is right?" in html and "J45.901" in html
    assert 'type="radio"' in html and "checked" not in html
    assert "SECRET RATIONALE" not in html and "correct" not in html.lower()
    incomplete = _post(client, "/bank/preview", {**ITEM, "option-1": "", "correct": "",
                                                 "option-2": ""}, csrf_token)
    assert incomplete.status_code == 422
    assert "two options" in incomplete.get_data(as_text=True)


def test_a_reviewer_approves_from_the_item_page(client, make_user, signin, csrf_token, db):
    author, psych = make_user("item_author"), make_user("psychometrician")
    version = workflow.create_draft(db, author, code="RV-1", item_type_name="single_choice",
                                    domain_code="D1", stem="S?", interaction={"options": [
                                        {"id": "A", "text": "a"}, {"id": "B", "text": "b"}]},
                                    key={"correct": ["A"]})
    workflow.submit_for_review(db, author, version)
    db.commit()
    signin(client, psych)
    queue = client.get("/bank/review").get_data(as_text=True)
    assert "RV-1 v1" in queue
    assert _post(client, "/bank/items/RV-1/versions/1/reviewers", {"reviewer": author.id},
                 csrf_token).status_code == 302
    assert _post(client, "/bank/items/RV-1/versions/1/comments", {"body": "Looks right."},
                 csrf_token).status_code == 302
    moved = _post(client, "/bank/items/RV-1/versions/1/move", {"to": "approved"}, csrf_token)
    assert moved.status_code == 302
    assert "is now approved" in client.get(moved.headers["Location"]).get_data(as_text=True)
    db.rollback()  # a new snapshot
    db.expire_all()
    assert db.get(ItemVersion, version.id).status == APPROVED
    actions = db.scalars(select(ItemEvent.action).where(ItemEvent.item_id == version.item_id)
                         .order_by(ItemEvent.id)).all()
    assert actions == ["created", "submitted", "reviewer_assigned", "commented", "approved"]
    page = client.get("/bank/items/RV-1").get_data(as_text=True)
    assert "Edit as a new version" in page and "Looks right." in page
    assert _post(client, "/bank/items/RV-1/draft", {}, csrf_token).status_code == 302
    db.rollback()  # a new snapshot
    db.expire_all()
    assert db.scalar(select(func.max(ItemVersion.version)).where(
        ItemVersion.item_id == version.item_id)) == 2


def _bank(db, n):
    """``n`` items over two domains, types and statuses (every third approved)."""
    options = {"options": [{"id": x, "text": f"Option {x}"} for x in "ABCD"]}
    for i in range(n):
        multiple = i % 4 == 0
        v = create_item(db, code=f"BK-{i:04d}", domain_code="D1" if i % 2 else "D2",
                        item_type_name="multiple_response" if multiple else "single_choice",
                        stem=f"Question {i} about {'asthma' if i % 5 == 0 else 'fractures'}",
                        interaction=options, key={"correct": ["A", "C"] if multiple else ["B"]})
        if i % 3 == 0:
            publish_version(db, v)
    db.commit()


def test_list_filters_search_and_pages_in_a_fixed_number_of_queries(app, client, make_user,
                                                                    signin, db):
    _bank(db, 240)
    signin(client, make_user("admin"))

    def codes(url):
        response = client.get(url)
        assert response.status_code == 200, response.get_data(as_text=True)[:300]
        return re.findall(r'<th scope="row"><a href="/bank/items/(BK-\d+)">', response.get_data(
            as_text=True)), response.get_data(as_text=True)

    first, page = codes("/bank/items")
    assert first == [f"BK-{i:04d}" for i in range(50)] and "of 240" in page
    last, page = codes("/bank/items?page=5")
    assert last == [f"BK-{i:04d}" for i in range(200, 240)]
    approved, page = codes("/bank/items?status=approved&domain=D2&type=single_choice")
    expected = [f"BK-{i:04d}" for i in range(240) if i % 3 == 0 and i % 2 == 0 and i % 4]
    assert approved == expected[:50] and f"of {len(expected)}" in page
    found, _ = codes("/bank/items?q=ASTHMA&page=1")
    assert found == [f"BK-{i:04d}" for i in range(0, 240, 5)][:50]
    assert codes("/bank/items?q=100%25")[0] == []  # a literal %, not a wildcard
    for bad in ("page=0", "page=x", "page=99", "status=published", "flag=nonsense"):
        assert client.get(f"/bank/items?{bad}").status_code == 400, bad

    database = app.extensions["microcred.database"]

    def queries(url):
        with count_queries(database.engine, database.write_engine) as sent:
            assert client.get(url).status_code == 200
        return len(sent)

    small = queries("/bank/items?domain=D1&page=1&type=single_choice")  # 60 rows
    full = queries("/bank/items?page=2")  # 50 rows
    assert small == full, "the list's queries grow with its rows (an N+1)"
    assert full <= 9
