"""The item editor's form: what a browser posts, read into an item version's fields, with an
error per field (shown next to it) instead of an exception.

The common fields (code, type, domain, stem, metadata) are read here; each item type's own
fields (options and key for choice items) by that type's reader in :data:`TYPE_READERS`. Item
types that bring their own editor (``templates/items/editors/<type>.html`` and a reader) plug
in there.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from itembank.models import Item, ItemVersion
from itembank.types import ITEM_TYPES, ItemDefinitionError

CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
MAX_OPTIONS = 8
LETTERS = "ABCDEFGH"
TYPE_LABELS = {"single_choice": "Single choice", "multiple_response": "Multiple response"}
#: Bloom's revised taxonomy (Anderson & Krathwohl, 2001), the usual cognitive-level scale
COGNITIVE_LEVELS = ("remember", "understand", "apply", "analyze", "evaluate", "create")
STEM_LIMIT = 20_000
TEXT_LIMIT = 20_000


@dataclass
class TypeFields:
    interaction: dict[str, Any]
    key: dict[str, Any]
    scoring: dict[str, Any]
    errors: dict[str, str]
    #: what the form shows again (e.g. option rows)
    values: dict[str, Any]


def read_choice(form: Any, type_name: str) -> TypeFields:
    """Options (text and whether each is correct), and for multiple response: how many to
    select and the scoring method."""
    errors: dict[str, str] = {}
    rows = []
    for i in range(MAX_OPTIONS):
        text = (form.get(f"option_{i}") or "").strip()
        rows.append({"text": text, "correct": form.get(f"correct_{i}") == "on"})
    options, correct = [], []
    for row in rows:
        if row["text"]:
            oid = LETTERS[len(options)]
            options.append({"id": oid, "text": row["text"]})
            if row["correct"]:
                correct.append(oid)
    if any(r["correct"] and not r["text"] for r in rows):
        errors["options"] = "an option marked correct has no text"
    if len(options) < 2:
        errors["options"] = "write at least two options"
    multiple = type_name == "multiple_response"
    if not correct and "options" not in errors:
        errors["key"] = "mark the correct option" + ("s" if multiple else "")
    elif not multiple and len(correct) > 1:
        errors["key"] = f"a single-choice item has one correct option; {len(correct)} are marked"
    elif multiple and len(correct) == 1:
        errors["key"] = "a multiple-response item has at least two correct options"
    interaction: dict[str, Any] = {"options": options}
    scoring: dict[str, Any] = {}
    select_raw = (form.get("select") or "").strip()
    if form.get("fixed_order") == "on":
        interaction["fixed_order"] = True
    if multiple:
        if select_raw:
            if not select_raw.isdigit():
                errors["select"] = f"a whole number of options, not {select_raw!r}"
            else:
                interaction["select"] = int(select_raw)
        method = form.get("scoring_method") or "all_or_nothing"
        if method not in ("all_or_nothing", "partial"):
            errors["scoring_method"] = "choose all-or-nothing or partial credit"
        scoring["method"] = method
    values = {"options": rows, "select": select_raw, "fixed_order": "fixed_order" in interaction,
              "scoring_method": scoring.get("method", "all_or_nothing")}
    return TypeFields(interaction, {"correct": correct}, scoring, errors, values)


def choice_values(version: ItemVersion) -> dict[str, Any]:
    correct = set(version.key.get("correct", []))
    rows = [{"text": o["text"], "correct": o["id"] in correct}
            for o in version.interaction.get("options", [])]
    rows += [{"text": "", "correct": False}] * (MAX_OPTIONS - len(rows))
    select = version.interaction.get("select")
    return {"options": rows, "select": "" if select is None else str(select),
            "fixed_order": bool(version.interaction.get("fixed_order")),
            "scoring_method": version.scoring.get("method", "all_or_nothing")}


#: type name -> (form reader, the values an existing version shows in the form)
TYPE_READERS: dict[str, tuple[Callable[[Any, str], TypeFields],
                              Callable[[ItemVersion], dict[str, Any]]]] = {
    "single_choice": (read_choice, choice_values),
    "multiple_response": (read_choice, choice_values),
}


#: which field an item-definition error is about, by the words of its message
_ERROR_FIELDS = (("stem", "stem"), ("key", "key"), ("option", "options"), ("select", "select"),
                 ("scoring", "scoring_method"), ("code", "code"), ("keyword", "keywords"),
                 ("too long", ""), ("characters", ""))


@dataclass
class EditorForm:
    code: str = ""
    item_type: str = "single_choice"
    domain_code: str = ""
    subdomain_code: str = ""
    cognitive_level: str = ""
    stem: str = ""
    rationale: str = ""
    reference: str = ""
    keywords: str = ""
    max_score: str = "1"
    type_values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    #: an error that belongs to no one field
    problem: str = ""
    _type_fields: TypeFields | None = None

    @classmethod
    def blank(cls, type_name: str) -> EditorForm:
        type_name = type_name if type_name in TYPE_READERS else "single_choice"
        rows = [{"text": "", "correct": False} for _ in range(MAX_OPTIONS)]
        return cls(item_type=type_name, type_values={
            "options": rows, "select": "", "fixed_order": False,
            "scoring_method": "all_or_nothing"})

    @classmethod
    def from_version(cls, item: Item, version: ItemVersion) -> EditorForm:
        _, values = TYPE_READERS.get(version.item_type, (None, lambda v: {}))
        return cls(code=item.code, item_type=version.item_type, domain_code=version.domain_code,
                   subdomain_code=version.subdomain_code, cognitive_level=version.cognitive_level,
                   stem=version.stem, rationale=version.rationale, reference=version.reference,
                   keywords=", ".join(version.keywords or []),
                   max_score=f"{version.max_score:g}", type_values=values(version))

    @classmethod
    def from_form(cls, form: Any, *, new: bool, code: str = "") -> EditorForm:
        def text(name: str, limit: int = 200) -> str:
            value = (form.get(name) or "").strip()
            if len(value) > limit:
                errors[name] = f"at most {limit} characters; {len(value)} were given"
            return value

        errors: dict[str, str] = {}
        self = cls(
            code=text("code", 64) if new else code, item_type=text("item_type", 40),
            domain_code=text("domain_code", 40), subdomain_code=text("subdomain_code", 40),
            cognitive_level=text("cognitive_level", 40), stem=text("stem", STEM_LIMIT),
            rationale=text("rationale", TEXT_LIMIT), reference=text("reference", TEXT_LIMIT),
            keywords=text("keywords", 1000), max_score=text("max_score", 20) or "1")
        if new and not CODE.fullmatch(self.code) and "code" not in errors:
            errors["code"] = ("a code of 1-64 letters, digits, '.', '-' or '_', starting with a "
                              "letter or digit")
        if self.item_type not in TYPE_READERS:
            errors["item_type"] = f"choose one of: {', '.join(TYPE_LABELS.values())}"
        if not self.domain_code and "domain_code" not in errors:
            errors["domain_code"] = "give the blueprint domain the item measures"
        if not self.stem and "stem" not in errors:
            errors["stem"] = "write the question (the stem)"
        if self.cognitive_level and self.cognitive_level not in COGNITIVE_LEVELS:
            errors["cognitive_level"] = f"choose one of {', '.join(COGNITIVE_LEVELS)}"
        try:
            score = float(self.max_score)
            if not 0 < score <= 1000:  # (also refuses NaN)
                raise ValueError
        except ValueError:
            errors["max_score"] = f"a number of points above 0 (at most 1000), not {self.max_score!r}"
        if self.item_type in TYPE_READERS:
            reader, _ = TYPE_READERS[self.item_type]
            self._type_fields = reader(form, self.item_type)
            self.type_values = self._type_fields.values
            errors.update(self._type_fields.errors)
        else:
            self.type_values = cls.blank("single_choice").type_values
        self.errors = errors
        return self

    @property
    def complete(self) -> bool:
        """Read from a posted form without errors (so it can be saved or previewed)."""
        return not self.errors and self._type_fields is not None

    def fields(self, *, new: bool) -> dict[str, Any]:
        """The item version's fields, for ``workflow.create_draft`` (``new``) or
        ``workflow.edit_draft``; only when the form has no errors."""
        assert self.complete and self._type_fields is not None
        values: dict[str, Any] = {
            "domain_code": self.domain_code, "subdomain_code": self.subdomain_code,
            "cognitive_level": self.cognitive_level, "stem": self.stem,
            "rationale": self.rationale, "reference": self.reference,
            "keywords": self.keywords, "max_score": float(self.max_score),
            "interaction": self._type_fields.interaction, "key": self._type_fields.key,
            "scoring": self._type_fields.scoring,
        }
        if new:
            values.update(code=self.code, item_type_name=self.item_type)
        else:
            values["item_type"] = self.item_type
        return values

    #: what candidates see: the preview waits for these, not for the key or the metadata
    SEEN = ("item_type", "stem", "options", "select")

    def preview_errors(self) -> dict[str, str]:
        return {k: v for k, v in self.errors.items() if k in self.SEEN}

    def transient_version(self) -> ItemVersion:
        """An unsaved version of what candidates would see (no key needed): for the preview."""
        if self.preview_errors() or self._type_fields is None:
            raise ItemDefinitionError("the item is not complete: " + "; ".join(
                self.preview_errors().values()))
        return ItemVersion(item_type=self.item_type, stem=self.stem, domain_code=self.domain_code,
                           interaction=self._type_fields.interaction, key={}, scoring={},
                           max_score=1.0)

    def add_error(self, exc: Exception) -> None:
        """Put a service's refusal next to the field it is about (or above the form)."""
        message = getattr(exc, "message", str(exc))
        lowered = message.lower()
        for words, name in _ERROR_FIELDS:
            if words in lowered and name:
                self.errors[name] = message
                return
        self.problem = message


__all__ = ["COGNITIVE_LEVELS", "ITEM_TYPES", "TYPE_LABELS", "TYPE_READERS", "EditorForm",
           "ItemDefinitionError"]
