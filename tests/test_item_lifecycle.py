"""An item version's ``status`` is the one record of its life, and what is published stays as it
was published (issue 10, item 8): the authoring service refuses to edit a published version
(so every item of a published form) with a clear error, a change becomes a new version, and a
published form's items are fixed. On SQLite and PostgreSQL."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from itembank.authoring import (
    PublishedVersionError,
    create_item,
    new_version,
    publish_version,
    revise_version,
)
from itembank.models import PUBLISHED, Form, FormItem, Item, ItemVersion
from itembank.types import ItemDefinitionError
from microcred.db import ImmutableRowError

OPTIONS = {"options": [{"id": x, "text": f"Option {x}"} for x in "ABCD"]}


def _draft(db, code="LC-1"):
    return create_item(db, code=code, item_type_name="single_choice", domain_code="A",
                       stem="Which option?", interaction=OPTIONS, key={"correct": ["B"]})


def test_status_is_the_one_source_of_being_published(db):
    version = _draft(db)
    assert (version.status, version.is_published) == ("draft", False)
    publish_version(db, version)
    db.commit()
    assert (version.status, version.is_published) == (PUBLISHED, True)
    # the flag is read from the status: there is no second field to set, or to disagree
    assert "is_published" not in ItemVersion.__table__.columns
    with pytest.raises(AttributeError):
        version.is_published = False
    with pytest.raises(ValueError, match="status must be one of draft, in_review, approved, pretest, retired"):
        ItemVersion(status="live")
    assert db.scalars(select(ItemVersion.id).where(ItemVersion.status == PUBLISHED)).all() == [
        version.id]


def test_a_draft_is_revised_and_checked(db):
    version = _draft(db)
    revise_version(db, version, stem="Which option is right?", key={"correct": ["C"]})
    db.commit()
    assert (version.stem, version.key) == ("Which option is right?", {"correct": ["C"]})
    with pytest.raises(ItemDefinitionError, match="the stem is empty"):
        revise_version(db, version, stem="  ")
    with pytest.raises(ItemDefinitionError, match="'status' is not an item version's content"):
        revise_version(db, version, status=PUBLISHED)
    db.rollback()
    assert db.get(ItemVersion, version.id).stem == "Which option is right?"


def test_a_published_version_refuses_edits_and_a_change_is_a_new_version(db, build_exam):
    exam = build_exam(db, code="LC-EXAM")
    db.commit()
    on_form = db.scalar(select(ItemVersion).join(FormItem, FormItem.item_version_id ==
                                                 ItemVersion.id).limit(1))
    code = db.get(Item, on_form.item_id).code
    with pytest.raises(PublishedVersionError,
                       match=f"item {code} version 1 is approved and is never edited") as refused:
        revise_version(db, on_form, stem="Reworded")
    assert (refused.value.status, refused.value.code) == (409, "published_item_version")
    db.rollback()
    assert db.get(ItemVersion, on_form.id).stem.startswith("Question")

    draft = new_version(db, db.get(Item, on_form.item_id))
    revise_version(db, draft, stem="Reworded")
    db.commit()
    assert (draft.version, draft.status, draft.stem) == (2, "draft", "Reworded")
    assert db.get(ItemVersion, on_form.id).stem.startswith("Question")
    assert exam.forms[0].form.items[0].item_version.version == 1


def test_a_published_forms_items_are_fixed(db, build_exam):
    build_exam(db, code="LC-FORM")
    db.commit()
    form = db.scalar(select(Form).where(Form.code == "LC-FORM-F1"))
    assert form.is_published
    extra = publish_version(db, _draft(db, code="LC-EXTRA"))
    db.commit()
    db.add(FormItem(form_id=form.id, position=99, item_version_id=extra.id))
    with pytest.raises(ImmutableRowError, match="is published: its items are fixed"):
        db.flush()
    db.rollback()
    row = db.scalar(select(FormItem).where(FormItem.form_id == form.id).limit(1))
    row.item_version_id = extra.id
    with pytest.raises(ImmutableRowError):
        db.flush()
    db.rollback()
    db.delete(db.scalar(select(FormItem).where(FormItem.form_id == form.id).limit(1)))
    with pytest.raises(ImmutableRowError):
        db.flush()
    db.rollback()
    assert len(db.get(Form, form.id).items) == 5
