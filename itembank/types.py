"""Item types: what the candidate sees, what a response may look like, how it is scored.

There is one scoring function per item type, and it lives here. Each type knows three things:

- ``public(version, option_order)``: the payload the browser receives (never the key, the
  rationale or the scoring rule);
- ``normalize(version, value)``: check a response's shape and return its canonical form, or raise
  :class:`ResponseShapeError` saying what was wrong;
- ``score(version, value)``: the points earned, between 0 and ``version.max_score``;
- ``is_answered(value)``: whether a stored response counts as an answer (the runner's, the
  result's and the proctor console's "answered").

New types (text entry, numeric, order, match, hotspot...) register themselves in ``ITEM_TYPES``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from itembank.models import ItemVersion
from microcred.errors import DomainError


class ResponseShapeError(DomainError):
    """A response does not fit its item's type; the message says what was expected."""

    status, code = 422, "invalid_response"


class ItemDefinitionError(DomainError):
    """An item's content is not valid for its type."""

    status, code = 422, "invalid_item"


class ItemType(Protocol):
    name: str

    def validate_definition(self, interaction: dict, key: dict, scoring: dict) -> None: ...

    def public(self, version: ItemVersion, option_order: list[str] | None) -> dict[str, Any]: ...

    def normalize(self, version: ItemVersion, value: Any) -> Any: ...

    def score(self, version: ItemVersion, value: Any) -> float: ...

    def shuffle_targets(self, version: ItemVersion) -> list[str]: ...

    def is_answered(self, value: Any) -> bool: ...


def _option_ids(interaction: dict) -> list[str]:
    return [str(o["id"]) for o in interaction.get("options", [])]


@dataclass(frozen=True)
class ChoiceType:
    """Single choice (one key) and multiple response (several keys).

    A multiple-response item may state how many options to select (``interaction.select``, like
    QTI's ``maxChoices``, e.g. 2 for "Select TWO."): a response with more is refused, and the
    runner stops the candidate at that number. Fewer is a valid (incomplete) response.

    Multiple response is scored all-or-nothing by default (``scoring.method = "all_or_nothing"``):
    the response must be exactly the keyed set. ``"partial"`` gives, per option, credit for a
    correct selection or a correct omission, scaled to ``max_score`` (the "partial-credit
    true/false" rule described by Frisbie, 1992).
    """

    name: str
    multiple: bool

    def validate_definition(self, interaction: dict, key: dict, scoring: dict) -> None:
        options = interaction.get("options")
        if not isinstance(options, list) or len(options) < 2:
            raise ItemDefinitionError(f"{self.name}: needs at least 2 options")
        ids = _option_ids(interaction)
        if len(set(ids)) != len(ids):
            raise ItemDefinitionError(f"{self.name}: option ids must be unique, got {ids}")
        for opt in options:
            if not str(opt.get("text", "")).strip():
                raise ItemDefinitionError(f"{self.name}: option {opt.get('id')} has no text")
        correct = key.get("correct")
        if not isinstance(correct, list) or not correct:
            raise ItemDefinitionError(f"{self.name}: key.correct must list the keyed option ids")
        unknown = [k for k in correct if k not in ids]
        if unknown:
            raise ItemDefinitionError(f"{self.name}: key names unknown options {unknown}")
        if not self.multiple and len(correct) != 1:
            raise ItemDefinitionError(f"{self.name}: exactly one key, got {len(correct)}")
        if self.multiple and len(correct) < 2:
            raise ItemDefinitionError(f"{self.name}: at least two keys, got {len(correct)}")
        select = interaction.get("select")
        if select is not None:
            if not self.multiple:
                raise ItemDefinitionError(f"{self.name}: 'select' is for multiple response only")
            if not isinstance(select, int) or isinstance(select, bool):
                raise ItemDefinitionError(
                    f"{self.name}: select must be a whole number of options, got {select!r}")
            # a limit below the key's size would make the keyed answer impossible to give
            if not len(correct) <= select <= len(options):
                raise ItemDefinitionError(
                    f"{self.name}: select must be between the {len(correct)} keyed options and "
                    f"the {len(options)} options, got {select}")
        method = scoring.get("method", "all_or_nothing")
        if method not in {"all_or_nothing", "partial"}:
            raise ItemDefinitionError(f"{self.name}: unknown scoring method {method!r}")

    def shuffle_targets(self, version: ItemVersion) -> list[str]:
        if version.interaction.get("fixed_order"):
            return []
        return _option_ids(version.interaction)

    def public(self, version: ItemVersion, option_order: list[str] | None) -> dict[str, Any]:
        by_id = {str(o["id"]): o for o in version.interaction["options"]}
        order = option_order or list(by_id)
        payload: dict[str, Any] = {
            "type": self.name,
            "stem": version.stem,
            "options": [{"id": oid, "text": by_id[oid]["text"]} for oid in order],
        }
        if self.multiple:
            payload["select"] = version.interaction.get("select")
        return payload

    def normalize(self, version: ItemVersion, value: Any) -> Any:
        ids = set(_option_ids(version.interaction))
        if value is None:
            return None
        if not self.multiple:
            if not isinstance(value, str):
                raise ResponseShapeError(
                    f"{self.name} answer must be one option id (a string), got {type(value).__name__}"
                )
            if value not in ids:
                raise ResponseShapeError(f"option {value!r} is not one of this item's options")
            return value
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ResponseShapeError(f"{self.name} answer must be a list of option ids")
        unknown = [v for v in value if v not in ids]
        if unknown:
            raise ResponseShapeError(f"options {unknown} are not among this item's options")
        if len(set(value)) != len(value):
            raise ResponseShapeError("an option is selected twice")
        select = version.interaction.get("select")
        if select is not None and len(value) > select:
            raise ResponseShapeError(
                f"this item asks for {select} options; {len(value)} were selected")
        return sorted(value) or None

    def is_answered(self, value: Any) -> bool:
        """Whether a stored response answers the item: an option chosen (a cleared choice is
        stored as None; an empty list or string, from older saves, chose nothing either)."""
        return value not in (None, [], "")

    def score(self, version: ItemVersion, value: Any) -> float:
        correct = set(version.key["correct"])
        if value is None:
            return 0.0
        chosen = {value} if isinstance(value, str) else set(value)
        if version.scoring.get("method", "all_or_nothing") == "all_or_nothing":
            return float(version.max_score) if chosen == correct else 0.0
        ids = _option_ids(version.interaction)
        right = sum(1 for oid in ids if (oid in chosen) == (oid in correct))
        return float(version.max_score) * right / len(ids)


SINGLE_CHOICE = ChoiceType("single_choice", multiple=False)
MULTIPLE_RESPONSE = ChoiceType("multiple_response", multiple=True)

ITEM_TYPES: dict[str, ItemType] = {t.name: t for t in (SINGLE_CHOICE, MULTIPLE_RESPONSE)}


def item_type(name: str) -> ItemType:
    try:
        return ITEM_TYPES[name]
    except KeyError:
        raise ItemDefinitionError(
            f"unknown item type {name!r}; known: {', '.join(sorted(ITEM_TYPES))}"
        ) from None
