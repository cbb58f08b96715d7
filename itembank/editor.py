"""The item editor's form: what a browser posts, read into an item version's fields, with an
error per field (shown next to it) instead of an exception.

The common fields (code, type, domain, stem, metadata) are read here; each item type's own
fields by ``itembank.editors`` (``fields_to_item`` / ``item_to_fields``), rendered by
``templates/items/editors/<type>.html``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from itembank import editors
from itembank.content import ContentError, clean_item_content
from itembank.models import Item, ItemVersion
from itembank.types import ITEM_TYPES, ItemDefinitionError

CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
TYPE_LABELS = {name: name.replace("_", " ").capitalize() for name in sorted(ITEM_TYPES)}
#: Bloom's revised taxonomy (Anderson & Krathwohl, 2001), the usual cognitive-level scale
COGNITIVE_LEVELS = ("remember", "understand", "apply", "analyze", "evaluate", "create")
STEM_LIMIT = 20_000
TEXT_LIMIT = 20_000
#: the common fields that are not what candidates see (the preview does not wait for them)
METADATA = ("code", "domain_code", "subdomain_code", "cognitive_level", "rationale",
            "reference", "keywords", "max_score")


def _posted_values(form: Any) -> dict[str, Any]:
    """The posted fields as the type editors' templates read them (a list where a field is
    repeated, e.g. the ticked options)."""
    lists = getattr(form, "lists", None)
    if lists is None:
        return dict(form)
    return {k: (v if len(v) > 1 or k == "correct" else v[0]) for k, v in lists()}


#: which field an item-definition error is about, by the words of its message
_ERROR_FIELDS = (("stem", "stem"), ("code", "code"), ("keyword", "keywords"), ("key", "correct"),
                 ("option", "_item"), ("too long", ""), ("characters", ""))


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
    #: the type editor's field values (``templates/items/editors/<type>.html``)
    type_values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    #: an error that belongs to no one field
    problem: str = ""
    #: (interaction, key, scoring) read from a complete posted form
    _definition: tuple[dict, dict, dict] | None = None

    @classmethod
    def blank(cls, type_name: str) -> EditorForm:
        return cls(item_type=type_name if type_name in ITEM_TYPES else "single_choice")

    @classmethod
    def from_version(cls, item: Item, version: ItemVersion) -> EditorForm:
        values = editors.item_to_fields(version.item_type, version.interaction, version.key,
                                        version.scoring)
        return cls(code=item.code, item_type=version.item_type, domain_code=version.domain_code,
                   subdomain_code=version.subdomain_code, cognitive_level=version.cognitive_level,
                   stem=version.stem, rationale=version.rationale, reference=version.reference,
                   keywords=", ".join(version.keywords or []),
                   max_score=f"{version.max_score:g}", type_values=values)

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
        if self.item_type not in ITEM_TYPES:
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
        self.type_values = _posted_values(form)
        if self.item_type in ITEM_TYPES:
            try:
                self._definition = editors.fields_to_item(self.item_type, form)
            except editors.EditorErrors as exc:
                for name, message in exc.errors.items():
                    if name == "_item":
                        self.problem = message
                    else:
                        errors.setdefault(name, message)
        self.errors = errors
        if self.problem and self._definition is None:
            self.errors.setdefault("_item", self.problem)
        return self

    @property
    def complete(self) -> bool:
        """Read from a posted form without errors (so it can be saved or previewed)."""
        return not self.errors and self._definition is not None

    def fields(self, *, new: bool) -> dict[str, Any]:
        """The item version's fields, for ``workflow.create_draft`` (``new``) or
        ``workflow.edit_draft``; only when the form has no errors."""
        assert self.complete and self._definition is not None
        interaction, key, scoring = self._definition
        values: dict[str, Any] = {
            "domain_code": self.domain_code, "subdomain_code": self.subdomain_code,
            "cognitive_level": self.cognitive_level, "stem": self.stem,
            "rationale": self.rationale, "reference": self.reference,
            "keywords": self.keywords, "max_score": float(self.max_score),
            "interaction": interaction, "key": key, "scoring": scoring,
        }
        if new:
            values.update(code=self.code, item_type_name=self.item_type)
        else:
            values["item_type"] = self.item_type
        return values

    def preview_errors(self) -> dict[str, str]:
        """What keeps the preview from showing: the stem and the type's own fields (not the
        metadata)."""
        return {k: v for k, v in self.errors.items() if k not in METADATA}

    def transient_version(self) -> ItemVersion:
        """An unsaved, sanitized version of what the form holds: for the preview."""
        if self.preview_errors() or self._definition is None:
            raise ItemDefinitionError("the item is not complete: " + "; ".join(
                self.preview_errors().values()))
        interaction, key, scoring = self._definition
        try:
            stem, interaction, _ = clean_item_content(self.item_type, stem=self.stem,
                                                      interaction=interaction)
        except ContentError as exc:
            raise ItemDefinitionError(exc.message) from None
        return ItemVersion(item_type=self.item_type, stem=stem, domain_code=self.domain_code,
                           interaction=interaction, key=key, scoring=scoring, max_score=1.0)

    def add_error(self, exc: Exception) -> None:
        """Put a service's refusal next to the field it is about (or above the form)."""
        message = getattr(exc, "message", str(exc))
        path = getattr(exc, "extra", {}).get("field")
        if path and editors.form_field(path) != "_item":
            self.errors[editors.form_field(path)] = message
            return
        lowered = message.lower()
        for words, name in _ERROR_FIELDS:
            if words in lowered and name:
                self.errors[name] = message
                return
        self.problem = message


__all__ = ["COGNITIVE_LEVELS", "TYPE_LABELS", "EditorForm"]
