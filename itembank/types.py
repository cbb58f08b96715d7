"""Item types: what the candidate sees, what a response may look like, how it is scored.

There is one scoring function per item type, and it lives here. Each type knows three things:

- ``public(version, option_order)``: the payload the browser receives (never the key, the
  rationale or the scoring rule);
- ``normalize(version, value)``: check a response's shape and return its canonical form, or raise
  :class:`ResponseShapeError` saying what was wrong;
- ``score(version, value)``: the points earned, between 0 and ``version.max_score``;
- ``is_answered(value)``: whether a stored response counts as an answer (the runner's, the
  result's and the proctor console's "answered");
- ``shuffle_targets(version)``: the ids the attempt may shuffle (options, targets, gaps' choices);
- ``clean_content(interaction, clean)``: the interaction with each HTML field passed through the
  sanitizer (``itembank.content.sanitize_html``), so authoring sanitizes every field it writes;
- ``sample_response(version, correct, rng)``: a response that earns full credit (or none), for
  tests and the demo's simulated history.

Every type is registered in :data:`ITEM_TYPES`. Content fields (stems, options, stimuli) are
HTML, sanitized on write; option texts shown inside a ``<select>`` (matching targets, inline
choices) are plain text.
"""
from __future__ import annotations

import math
import random
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from itembank.models import ItemVersion
from itembank.patterns import UnsafePatternError, check_pattern
from microcred.errors import DomainError


class ResponseShapeError(DomainError):
    """A response does not fit its item's type; the message says what was expected."""

    status, code = 422, "invalid_response"


class ItemDefinitionError(DomainError):
    """An item's content is not valid for its type. ``field`` (in ``extra``), when given, is the
    path of the offending field (``key.answers[1].value``) so an editor can show it in place."""

    status, code = 422, "invalid_item"

    @property
    def field(self) -> str | None:
        return self.extra.get("field")


class ItemType(Protocol):
    name: str

    def validate_definition(self, interaction: dict, key: dict, scoring: dict) -> None: ...

    def public(self, version: ItemVersion, option_order: list[str] | None) -> dict[str, Any]: ...

    def normalize(self, version: ItemVersion, value: Any) -> Any: ...

    def score(self, version: ItemVersion, value: Any) -> float: ...

    def shuffle_targets(self, version: ItemVersion) -> list[str]: ...

    def is_answered(self, value: Any) -> bool: ...

    def clean_content(self, interaction: dict, clean: Clean) -> dict: ...

    def sample_response(self, version: ItemVersion, correct: bool, rng: random.Random) -> Any: ...


#: ``clean(html, where)``: the sanitized HTML, or an error naming ``where`` (a field path)
Clean = Callable[[str, str], str]


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
    true/false" rule described by Frisbie, 1992). ``"mapped"`` is QTI's ``mapResponse``: points
    per option (``scoring.map``), ``scoring.default`` for a selected option with no entry,
    bounded by ``scoring.lower``/``scoring.upper`` (see :func:`mapped_points`).
    """

    name: str
    multiple: bool

    def validate_definition(self, interaction: dict, key: dict, scoring: dict) -> None:
        options = interaction.get("options")
        if not isinstance(options, list) or len(options) < 2:
            raise ItemDefinitionError(f"{self.name}: needs at least 2 options")
        if not all(isinstance(o, dict) and isinstance(o.get("id"), str) for o in options):
            raise _fail(self.name, "each option needs an id (a string) and a text",
                        "interaction.options")
        ids = _option_ids(interaction)
        if len(set(ids)) != len(ids):
            raise ItemDefinitionError(f"{self.name}: option ids must be unique, got {ids}")
        for opt in options:
            if not str(opt.get("text", "")).strip():
                raise ItemDefinitionError(f"{self.name}: option {opt.get('id')} has no text")
        correct = key.get("correct")
        if not isinstance(correct, list) or not correct \
                or not all(isinstance(k, str) for k in correct):
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
        methods = ("all_or_nothing", "partial", "mapped") if self.multiple else (
            "all_or_nothing", "partial")
        if _check_method(self.name, scoring, methods) == "mapped":
            _check_mapped(self.name, scoring, {i: None for i in ids}, "option")

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

    def clean_content(self, interaction: dict, clean: Clean) -> dict:
        return _clean_options(interaction, "options", clean)

    def sample_response(self, version: ItemVersion, correct: bool, rng: random.Random) -> Any:
        keys = sorted(version.key["correct"])
        ids = _option_ids(version.interaction)
        if not self.multiple:
            return keys[0] if correct else rng.choice([i for i in ids if i not in keys])
        if correct:
            return keys
        wrong = sorted(rng.sample(ids, len(keys)))
        while wrong == keys:
            wrong = sorted(rng.sample(ids, len(keys)))
        return wrong

    def is_answered(self, value: Any) -> bool:
        """Whether a stored response answers the item: an option chosen (a cleared choice is
        stored as None; an empty list or string, from older saves, chose nothing either)."""
        return value not in (None, [], "")

    def score(self, version: ItemVersion, value: Any) -> float:
        correct = set(version.key["correct"])
        if value is None:
            return 0.0
        chosen = {value} if isinstance(value, str) else set(value)
        method = version.scoring.get("method", "all_or_nothing")
        if method == "mapped":
            table = version.scoring["map"]
            return mapped_points(version, [table.get(oid) for oid in chosen])
        if method == "all_or_nothing":
            return float(version.max_score) if chosen == correct else 0.0
        ids = _option_ids(version.interaction)
        right = sum(1 for oid in ids if (oid in chosen) == (oid in correct))
        return float(version.max_score) * right / len(ids)


SINGLE_CHOICE = ChoiceType("single_choice", multiple=False)
MULTIPLE_RESPONSE = ChoiceType("multiple_response", multiple=True)


# ---------------------------------------------------------------- shared checks


def _fail(name: str, message: str, field: str) -> ItemDefinitionError:
    return ItemDefinitionError(f"{name}: {message}", field=field)


def _check_options(name: str, interaction: dict, field: str, *, minimum: int = 2,
                   plain: bool = False) -> list[str]:
    """A list of ``{id, text}`` with unique ids and non-empty text; returns the ids."""
    options = interaction.get(field)
    if not isinstance(options, list) or len(options) < minimum:
        raise _fail(name, f"needs at least {minimum} entries in {field}", f"interaction.{field}")
    ids = []
    for i, opt in enumerate(options):
        where = f"interaction.{field}[{i}]"
        if not isinstance(opt, dict) or not isinstance(opt.get("id"), str) or not opt["id"]:
            raise _fail(name, f"{where} needs an id (a string)", where)
        text = opt.get("text")
        if not isinstance(text, str) or not text.strip():
            raise _fail(name, f"{where} ({opt['id']}) has no text", f"{where}.text")
        if plain and "<" in text:
            raise _fail(name, f"{where} ({opt['id']}) is shown in a list box: plain text only",
                        f"{where}.text")
        ids.append(opt["id"])
    if len(set(ids)) != len(ids):
        raise _fail(name, f"{field} ids must be unique, got {ids}", f"interaction.{field}")
    return ids


def _check_method(name: str, scoring: dict, methods: tuple[str, ...]) -> str:
    method = scoring.get("method", methods[0])
    if method not in methods:
        raise _fail(name, f"unknown scoring method {method!r}; one of {', '.join(methods)}",
                    "scoring.method")
    return method


def _finite_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) \
        and math.isfinite(value)


def _check_mapped(name: str, scoring: dict, allowed: dict[str, set[str] | None],
                  what: str) -> None:
    """A ``mapped`` scoring: ``map`` of points per option id (``allowed`` keys, values None),
    or per source then target (``allowed`` source -> its targets); ``default``, ``lower`` and
    ``upper`` numbers (bounds optional, lower at most upper)."""
    table = scoring.get("map")
    if not isinstance(table, dict) or not table:
        raise _fail(name, f"scoring.map must give points for at least one {what}",
                    "scoring.map")
    for k, v in table.items():
        where = f"scoring.map.{k}"
        if k not in allowed:
            raise _fail(name, f"{where}: {k!r} is not one of the item's {what}s", where)
        targets = allowed[k]
        if targets is None:
            if not _finite_number(v):
                raise _fail(name, f"{where} must be a number of points, got {v!r}", where)
            continue
        if not isinstance(v, dict) or not v:
            raise _fail(name, f"{where} must give points per target", where)
        for t, pts in v.items():
            if t not in targets:
                raise _fail(name, f"{where}.{t}: {t!r} is not one of the item's targets",
                            f"{where}.{t}")
            if not _finite_number(pts):
                raise _fail(name, f"{where}.{t} must be a number of points, got {pts!r}",
                            f"{where}.{t}")
    if not _finite_number(scoring.get("default", 0)):
        raise _fail(name, f"scoring.default must be a number, got {scoring.get('default')!r}",
                    "scoring.default")
    for bound in ("lower", "upper"):
        if scoring.get(bound) is not None and not _finite_number(scoring[bound]):
            raise _fail(name, f"scoring.{bound} must be a number or absent, got "
                        f"{scoring[bound]!r}", f"scoring.{bound}")
    lower, upper = scoring.get("lower"), scoring.get("upper")
    if lower is not None and upper is not None and lower > upper:
        raise _fail(name, f"scoring.lower ({lower:g}) is above scoring.upper ({upper:g})",
                    "scoring.lower")
    unknown = set(scoring) - {"method", "map", "default", "lower", "upper"}
    if unknown:
        raise _fail(name, f"scoring has unknown fields {sorted(unknown)}",
                    f"scoring.{min(unknown)}")


def mapped_points(version: ItemVersion, values: list[float | None]) -> float:
    """QTI ``mapResponse`` for the ``mapped`` method: the sum over the distinct selected
    entries (``values``, one per distinct option or pair; None where the map has no entry, which
    earns ``scoring.default``), bounded below by ``lower`` and above by ``upper`` when set (lower
    first, as QTI), then clipped to [0, ``max_score``]. Nothing selected scores 0 (QTI's
    ``map_response`` template: a null response scores 0)."""
    if not values:
        return 0.0
    s = version.scoring
    default = float(s.get("default", 0))
    total = sum(default if v is None else float(v) for v in values)
    if s.get("lower") is not None:
        total = max(total, float(s["lower"]))
    if s.get("upper") is not None:
        total = min(total, float(s["upper"]))
    return min(float(version.max_score), max(0.0, total))


def _clean_options(interaction: dict, field: str, clean: Clean) -> dict:
    options = interaction.get(field)
    if not isinstance(options, list):
        return interaction
    cleaned = [
        {**opt, "text": clean(opt["text"], f"interaction.{field}[{i}].text")}
        if isinstance(opt, dict) and isinstance(opt.get("text"), str) else opt
        for i, opt in enumerate(options)
    ]
    return {**interaction, field: cleaned}


def _ordered(options: list[dict], order: list[str] | None) -> list[dict[str, str]]:
    """Options as ``{id, text}`` in the attempt's order (ids not in ``order`` keep theirs)."""
    by_id = {str(o["id"]): o for o in options}
    ids = [i for i in (order or []) if i in by_id]
    ids += [i for i in by_id if i not in ids]
    return [{"id": i, "text": by_id[i]["text"]} for i in ids]


def _points(version: ItemVersion, fraction: float) -> float:
    return float(version.max_score) * min(1.0, max(0.0, fraction))


def _dict_answer(name: str, value: Any, allowed: dict[str, set[str]], what: str,
                 choice: str) -> dict[str, str] | None:
    """A ``{slot: choice}`` response: known slots, known choices; empty means no answer."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ResponseShapeError(f"{name} answer must be an object of {what} ids to {choice} ids")
    out = {}
    for slot, picked in value.items():
        if slot not in allowed:
            raise ResponseShapeError(f"{slot!r} is not one of this item's {what}s")
        if picked is None or picked == "":
            continue
        if not isinstance(picked, str) or picked not in allowed[slot]:
            raise ResponseShapeError(f"{picked!r} is not a {choice} for {what} {slot!r}")
        out[slot] = picked
    return dict(sorted(out.items())) or None


# ---------------------------------------------------------------- true/false


@dataclass(frozen=True)
class TrueFalseType:
    """A statement the candidate judges true or false. Key: ``{"correct": "true" | "false"}``."""

    name: str = "true_false"
    LABELS = (("true", "True"), ("false", "False"))

    def validate_definition(self, interaction: dict, key: dict, scoring: dict) -> None:
        if key.get("correct") not in ("true", "false"):
            raise _fail(self.name, "key.correct must be \"true\" or \"false\"", "key.correct")
        _check_method(self.name, scoring, ("all_or_nothing",))

    def clean_content(self, interaction: dict, clean: Clean) -> dict:
        return interaction

    def shuffle_targets(self, version: ItemVersion) -> list[str]:
        return []  # True comes before False, always

    def public(self, version: ItemVersion, option_order: list[str] | None) -> dict[str, Any]:
        return {"type": self.name, "stem": version.stem,
                "options": [{"id": i, "text": t} for i, t in self.LABELS]}

    def normalize(self, version: ItemVersion, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, bool):
            return "true" if value else "false"
        if value not in ("true", "false"):
            raise ResponseShapeError("true/false answer must be \"true\" or \"false\"")
        return value

    def is_answered(self, value: Any) -> bool:
        return value in ("true", "false")

    def score(self, version: ItemVersion, value: Any) -> float:
        return _points(version, 1.0) if value == version.key["correct"] else 0.0

    def sample_response(self, version: ItemVersion, correct: bool, rng: random.Random) -> Any:
        key = version.key["correct"]
        return key if correct else ("false" if key == "true" else "true")


# ---------------------------------------------------------------- text entry

TEXT_MATCHES = ("exact", "case_insensitive", "pattern")
TEXT_MAX_LENGTH = 200


def canonical_text(value: str) -> str:
    """What text answers are compared as: Unicode NFC, whitespace runs made one space, trimmed
    (a candidate's stray double space or trailing newline is not a different answer)."""
    return " ".join(unicodedata.normalize("NFC", value).split())


@dataclass(frozen=True)
class TextEntryType:
    """A short typed answer. Key: ``{"answers": [{"value", "match", "credit"?}, ...]}``, any of
    which is accepted: ``match`` is ``exact``, ``case_insensitive`` or ``pattern`` (a regular
    expression the whole answer must match, checked safe by :mod:`itembank.patterns`);
    ``credit`` (default 1) is the fraction of ``max_score`` it earns (e.g. 0.5 for a
    near-miss spelling). ``interaction.max_length`` (default and cap 200) bounds the answer;
    ``interaction.expected_length`` sizes the box.
    """

    name: str = "text_entry"

    def _max_length(self, interaction: dict) -> int:
        n = interaction.get("max_length", TEXT_MAX_LENGTH)
        return n if isinstance(n, int) and not isinstance(n, bool) else TEXT_MAX_LENGTH

    def validate_definition(self, interaction: dict, key: dict, scoring: dict) -> None:
        n = interaction.get("max_length", TEXT_MAX_LENGTH)
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= TEXT_MAX_LENGTH:
            raise _fail(self.name, f"max_length must be 1 to {TEXT_MAX_LENGTH}",
                        "interaction.max_length")
        width = interaction.get("expected_length")
        if width is not None and (not isinstance(width, int) or isinstance(width, bool)
                                  or not 1 <= width <= n):
            raise _fail(self.name, f"expected_length must be 1 to max_length ({n})",
                        "interaction.expected_length")
        answers = key.get("answers")
        if not isinstance(answers, list) or not answers:
            raise _fail(self.name, "key.answers must list at least one accepted answer",
                        "key.answers")
        full = False
        for i, ans in enumerate(answers):
            where = f"key.answers[{i}]"
            if not isinstance(ans, dict) or not isinstance(ans.get("value"), str) \
                    or not ans["value"].strip():
                raise _fail(self.name, f"{where} needs a value (text)", f"{where}.value")
            match = ans.get("match", "exact")
            if match not in TEXT_MATCHES:
                raise _fail(self.name, f"{where}.match must be one of {', '.join(TEXT_MATCHES)}",
                            f"{where}.match")
            if match == "pattern":
                try:
                    check_pattern(ans["value"], n)
                except UnsafePatternError as exc:
                    raise _fail(self.name, f"{where}: {exc}", f"{where}.value") from None
            elif len(canonical_text(ans["value"])) > n:
                raise _fail(self.name, f"{where} is longer than max_length ({n})", f"{where}.value")
            credit = ans.get("credit", 1)
            if not isinstance(credit, (int, float)) or isinstance(credit, bool) \
                    or not 0 < credit <= 1:
                raise _fail(self.name, f"{where}.credit must be above 0 and at most 1",
                            f"{where}.credit")
            full = full or credit == 1
        if not full:
            raise _fail(self.name, "at least one accepted answer must earn full credit",
                        "key.answers")
        _check_method(self.name, scoring, ("all_or_nothing",))

    def clean_content(self, interaction: dict, clean: Clean) -> dict:
        return interaction

    def shuffle_targets(self, version: ItemVersion) -> list[str]:
        return []

    def public(self, version: ItemVersion, option_order: list[str] | None) -> dict[str, Any]:
        i = version.interaction
        return {"type": self.name, "stem": version.stem, "max_length": self._max_length(i),
                "expected_length": i.get("expected_length")}

    def normalize(self, version: ItemVersion, value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, str):
            raise ResponseShapeError(f"text entry answer must be text, got {type(value).__name__}")
        text = canonical_text(value)
        limit = self._max_length(version.interaction)
        if len(text) > limit:
            raise ResponseShapeError(f"the answer has {len(text)} characters; at most {limit}")
        return text or None

    def is_answered(self, value: Any) -> bool:
        return isinstance(value, str) and bool(value.strip())

    def score(self, version: ItemVersion, value: Any) -> float:
        if not self.is_answered(value):
            return 0.0
        text = canonical_text(value)[: self._max_length(version.interaction)]
        best = 0.0
        for ans in version.key["answers"]:
            if self._matches(ans, text, version.interaction):
                best = max(best, float(ans.get("credit", 1)))
        return _points(version, best)

    def _matches(self, ans: dict, text: str, interaction: dict) -> bool:
        match = ans.get("match", "exact")
        if match == "pattern":
            return check_pattern(ans["value"], self._max_length(interaction)).fullmatch(text) \
                is not None
        if match == "case_insensitive":
            return canonical_text(ans["value"]).casefold() == text.casefold()
        return canonical_text(ans["value"]) == text

    def sample_response(self, version: ItemVersion, correct: bool, rng: random.Random) -> Any:
        literal = [a for a in version.key["answers"]
                   if a.get("match", "exact") != "pattern" and a.get("credit", 1) == 1]
        if not correct:
            return "not the answer"
        return canonical_text(literal[0]["value"]) if literal else None


# ---------------------------------------------------------------- numeric entry

NUMERIC_MAX_LENGTH = 40
_GROUP_SPACE = re.compile(r"(?<=\d)[ \u00a0\u202f\u2009'\u2019](?=\d{3}(?:\D|$))")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d{1,3})?")


def _grouped(text: str, sep: str, dec: str | None) -> bool:
    """Whether ``text`` is digits grouped in threes by ``sep``, with an optional ``dec`` part."""
    decimal = rf"(?:{re.escape(dec)}\d*)?" if dec else ""
    return re.fullmatch(rf"[+-]?\d{{1,3}}(?:{re.escape(sep)}\d{{3}})+{decimal}"
                        r"(?:[eE][+-]?\d{1,3})?", text) is not None


def parse_number(text: str) -> Decimal:
    """A typed number as an exact ``Decimal``, in the forms candidates write.

    ``.`` is always a decimal point; ``,`` is a decimal comma (``2,5``) unless it groups
    thousands (``1,234,567``, or ``1,234.5`` with a point after it); ``1.234,5`` reads as
    European grouping. Spaces, thin spaces and apostrophes between digit groups are ignored
    (``1 234``, ``1'234``), ``−`` is a minus. One comma before exactly three digits (``1,500``)
    is ambiguous between 1500 and 1.5 and is refused with a message saying how to write it.
    NaN and infinities are not numbers here. Raises ``ValueError``.
    """
    s = text.strip().replace("\u2212", "-")
    s = _GROUP_SPACE.sub("", s)
    if "," in s and "." in s:
        group, dec = (",", ".") if s.rfind(".") > s.rfind(",") else (".", ",")
        if not _grouped(s, group, dec):
            raise ValueError(f"{text!r} is not a number")
        s = s.replace(group, "").replace(",", ".")
    elif s.count(",") > 1:
        if not _grouped(s, ",", None):
            raise ValueError(f"{text!r} is not a number")
        s = s.replace(",", "")
    elif s.count(",") == 1:
        if re.fullmatch(r"[+-]?[1-9]\d{0,2},\d{3}", s):
            raise ValueError(f"{text!r} could mean {s.replace(',', '')} or "
                             f"{s.replace(',', '.')}: write it without the comma, or with a "
                             "decimal point")
        s = s.replace(",", ".")
    elif s.count(".") > 1:  # 1.234.567: European grouping
        if not _grouped(s, ".", None):
            raise ValueError(f"{text!r} is not a number")
        s = s.replace(".", "")
    if not _PLAIN_NUMBER.fullmatch(s):
        raise ValueError(f"{text!r} is not a number")
    try:
        number = Decimal(s)
    except InvalidOperation:
        raise ValueError(f"{text!r} is not a number") from None
    if not number.is_finite():
        raise ValueError(f"{text!r} is not a finite number")
    return number


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class NumericEntryType:
    """A typed number. Key: ``{"value": number}``; scoring: ``{"tolerance": t, "tolerance_mode":
    "absolute" | "relative"}`` (relative: a fraction of the key, 0.05 = 5%); the answer earns
    full credit when ``|answer - value| <= t`` (or ``t * |value|``), compared exactly in
    decimal. ``interaction.unit`` is shown after the box. The stored response is the text as
    typed (trimmed), so the runner restores exactly that; it must parse (:func:`parse_number`).
    """

    name: str = "numeric_entry"

    def validate_definition(self, interaction: dict, key: dict, scoring: dict) -> None:
        if not _finite(key.get("value")):
            raise _fail(self.name, "key.value must be a finite number", "key.value")
        tol = scoring.get("tolerance", 0)
        if not _finite(tol) or tol < 0:
            raise _fail(self.name, "scoring.tolerance must be a number of 0 or more",
                        "scoring.tolerance")
        if scoring.get("tolerance_mode", "absolute") not in ("absolute", "relative"):
            raise _fail(self.name, "scoring.tolerance_mode must be absolute or relative",
                        "scoring.tolerance_mode")
        unit = interaction.get("unit", "")
        if not isinstance(unit, str) or len(unit) > 20 or "<" in unit:
            raise _fail(self.name, "interaction.unit must be plain text of at most 20 characters",
                        "interaction.unit")

    def clean_content(self, interaction: dict, clean: Clean) -> dict:
        return interaction

    def shuffle_targets(self, version: ItemVersion) -> list[str]:
        return []

    def public(self, version: ItemVersion, option_order: list[str] | None) -> dict[str, Any]:
        return {"type": self.name, "stem": version.stem,
                "unit": version.interaction.get("unit", "")}

    def normalize(self, version: ItemVersion, value: Any) -> Any:
        if value is None:
            return None
        if _finite(value):
            value = str(value)
        if not isinstance(value, str):
            raise ResponseShapeError(f"numeric answer must be a number typed as text, got "
                                     f"{type(value).__name__}")
        text = value.strip()
        if not text:
            return None
        if len(text) > NUMERIC_MAX_LENGTH:
            raise ResponseShapeError(f"the number has {len(text)} characters; at most "
                                     f"{NUMERIC_MAX_LENGTH}")
        try:
            parse_number(text)
        except ValueError as exc:
            raise ResponseShapeError(str(exc)) from None
        return text

    def is_answered(self, value: Any) -> bool:
        return isinstance(value, str) and bool(value.strip())

    def score(self, version: ItemVersion, value: Any) -> float:
        if not self.is_answered(value):
            return 0.0
        try:
            answer = parse_number(value)
        except ValueError:
            return 0.0
        target = Decimal(str(version.key["value"]))
        tol = Decimal(str(version.scoring.get("tolerance", 0)))
        if version.scoring.get("tolerance_mode", "absolute") == "relative":
            tol *= abs(target)
        return _points(version, 1.0) if abs(answer - target) <= tol else 0.0

    def sample_response(self, version: ItemVersion, correct: bool, rng: random.Random) -> Any:
        target = Decimal(str(version.key["value"]))
        if correct:
            return str(target)
        tol = Decimal(str(version.scoring.get("tolerance", 0)))
        if version.scoring.get("tolerance_mode", "absolute") == "relative":
            tol *= abs(target)
        return str(target + 2 * tol + 1)


# ---------------------------------------------------------------- ordering


@dataclass(frozen=True)
class OrderingType:
    """Put the options in order. Key: ``{"order": [ids]}``. Scoring ``method``:
    ``all_or_nothing``; ``pairwise``, the fraction of the n(n-1)/2 pairs placed in the right
    relative order (Kendall's concordant pairs); or ``position``, the fraction of options in
    their keyed place. The candidate first sees the options as listed (or shuffled), never in
    the keyed order. The response is the whole order (every option id once).
    """

    name: str = "ordering"
    METHODS = ("all_or_nothing", "pairwise", "position")

    def validate_definition(self, interaction: dict, key: dict, scoring: dict) -> None:
        ids = _check_options(self.name, interaction, "options")
        order = key.get("order")
        if not isinstance(order, list) or sorted(map(str, order)) != sorted(ids):
            raise _fail(self.name, f"key.order must list every option id once: {ids}", "key.order")
        if order == ids:
            raise _fail(self.name, "the options are listed in the keyed order: list them in the "
                        "order the candidate should first see them", "interaction.options")
        _check_method(self.name, scoring, self.METHODS)

    def clean_content(self, interaction: dict, clean: Clean) -> dict:
        return _clean_options(interaction, "options", clean)

    def shuffle_targets(self, version: ItemVersion) -> list[str]:
        return _option_ids(version.interaction)

    def public(self, version: ItemVersion, option_order: list[str] | None) -> dict[str, Any]:
        options = _ordered(version.interaction["options"], option_order)
        if [o["id"] for o in options] == version.key["order"]:  # a shuffle that drew the key
            options = options[1:] + options[:1]
        return {"type": self.name, "stem": version.stem, "options": options}

    def normalize(self, version: ItemVersion, value: Any) -> Any:
        if value is None:
            return None
        ids = _option_ids(version.interaction)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ResponseShapeError("ordering answer must be the list of option ids in order")
        if sorted(value) != sorted(ids):
            raise ResponseShapeError(f"ordering answer must list every option once "
                                     f"({len(ids)} options), got {len(value)}")
        return list(value)

    def is_answered(self, value: Any) -> bool:
        return isinstance(value, list) and bool(value)

    def score(self, version: ItemVersion, value: Any) -> float:
        key = list(version.key["order"])
        if not isinstance(value, list) or sorted(value) != sorted(key):
            return 0.0
        method = version.scoring.get("method", "all_or_nothing")
        if method == "all_or_nothing":
            return _points(version, 1.0) if value == key else 0.0
        if method == "position":
            return _points(version, sum(a == b for a, b in zip(value, key)) / len(key))
        rank = {oid: i for i, oid in enumerate(value)}
        pairs = [(a, b) for i, a in enumerate(key) for b in key[i + 1:]]
        return _points(version, sum(rank[a] < rank[b] for a, b in pairs) / len(pairs))

    def sample_response(self, version: ItemVersion, correct: bool, rng: random.Random) -> Any:
        key = list(version.key["order"])
        return key if correct else key[::-1]


# ---------------------------------------------------------------- matching


@dataclass(frozen=True)
class MatchingType:
    """Match each source (left) to a target (right). Key: ``{"pairs": {source: target}}`` for
    every source; targets may outnumber sources (distractors). ``interaction.reuse_targets``
    lets one target serve several sources. Scoring ``method``: ``all_or_nothing``,
    ``partial`` (the fraction of sources matched right) or ``mapped`` (QTI's ``mapResponse``:
    ``scoring.map`` gives points per pair as ``{source: {target: points}}``, ``default`` for a
    pair with no entry, ``lower``/``upper`` bounds; see :func:`mapped_points`). Targets are plain text (they are
    offered in a list box); the response is ``{source: target}`` for the sources matched.
    """

    name: str = "matching"

    def validate_definition(self, interaction: dict, key: dict, scoring: dict) -> None:
        sources = _check_options(self.name, interaction, "sources")
        targets = _check_options(self.name, interaction, "targets", plain=True)
        if set(sources) & set(targets):
            raise _fail(self.name, "source and target ids must differ",
                        "interaction.targets")
        pairs = key.get("pairs")
        if not isinstance(pairs, dict) or set(pairs) != set(sources):
            raise _fail(self.name, f"key.pairs must give a target for every source {sources}",
                        "key.pairs")
        bad = [t for t in pairs.values() if not isinstance(t, str) or t not in targets]
        if bad:
            raise _fail(self.name, f"key.pairs names unknown targets {bad}", "key.pairs")
        reuse = interaction.get("reuse_targets", False)
        if not isinstance(reuse, bool):
            raise _fail(self.name, "reuse_targets must be true or false",
                        "interaction.reuse_targets")
        if not reuse and len(set(pairs.values())) != len(pairs):
            raise _fail(self.name, "two sources share a target but reuse_targets is off",
                        "key.pairs")
        if _check_method(self.name, scoring, ("all_or_nothing", "partial", "mapped")) \
                == "mapped":
            _check_mapped(self.name, scoring, {s: set(targets) for s in sources}, "source")

    def clean_content(self, interaction: dict, clean: Clean) -> dict:
        return _clean_options(interaction, "sources", clean)

    def shuffle_targets(self, version: ItemVersion) -> list[str]:
        i = version.interaction
        if i.get("fixed_order"):
            return []
        return _option_ids({"options": i["sources"]}) + _option_ids({"options": i["targets"]})

    def public(self, version: ItemVersion, option_order: list[str] | None) -> dict[str, Any]:
        i = version.interaction
        return {"type": self.name, "stem": version.stem,
                "sources": _ordered(i["sources"], option_order),
                "targets": _ordered(i["targets"], option_order),
                "reuse_targets": bool(i.get("reuse_targets", False))}

    def normalize(self, version: ItemVersion, value: Any) -> Any:
        i = version.interaction
        targets = set(_option_ids({"options": i["targets"]}))
        sources = _option_ids({"options": i["sources"]})
        out = _dict_answer("matching", value, {s: targets for s in sources}, "source", "target")
        if out and not i.get("reuse_targets") and len(set(out.values())) != len(out):
            raise ResponseShapeError("a target is matched twice; each target may be used once")
        return out

    def is_answered(self, value: Any) -> bool:
        return isinstance(value, dict) and bool(value)

    def score(self, version: ItemVersion, value: Any) -> float:
        pairs = version.key["pairs"]
        if not isinstance(value, dict):
            return 0.0
        method = version.scoring.get("method", "all_or_nothing")
        if method == "mapped":
            table = version.scoring["map"]
            return mapped_points(version, [table.get(s, {}).get(t) for s, t in value.items()])
        right = sum(value.get(s) == t for s, t in pairs.items())
        if method == "all_or_nothing":
            return _points(version, 1.0) if right == len(pairs) else 0.0
        return _points(version, right / len(pairs))

    def sample_response(self, version: ItemVersion, correct: bool, rng: random.Random) -> Any:
        pairs = dict(sorted(version.key["pairs"].items()))
        if correct:
            return pairs
        sources = list(pairs)
        wrong = dict(pairs)
        if len(sources) > 1:  # swap two sources' targets
            a, b = sources[0], sources[1]
            wrong[a], wrong[b] = pairs[b], pairs[a]
            if wrong[a] != pairs[a]:
                return wrong
        return None


# ---------------------------------------------------------------- inline choice

GAP_MARK = re.compile(r"\[\[([A-Za-z0-9_-]{1,40})\]\]")


def sentence_parts(sentence: str) -> list[tuple[str, str | None]]:
    """The sentence split at its gap marks: ``[(html before, gap id), ..., (html after, None)]``."""
    parts, last = [], 0
    for m in GAP_MARK.finditer(sentence):
        parts.append((sentence[last:m.start()], m.group(1)))
        last = m.end()
    parts.append((sentence[last:], None))
    return parts


@dataclass(frozen=True)
class InlineChoiceType:
    """Choices inside a sentence. ``interaction.sentence`` is HTML with gap marks ``[[g1]]``;
    ``interaction.gaps`` is ``[{"id": "g1", "options": [{id, text}]}]`` (plain-text choices).
    Key: ``{"correct": {gap: option}}``. Scoring ``method``: ``all_or_nothing`` or ``partial``
    (the fraction of gaps right). The response is ``{gap: option}`` for the gaps filled.
    """

    name: str = "inline_choice"

    def validate_definition(self, interaction: dict, key: dict, scoring: dict) -> None:
        sentence = interaction.get("sentence")
        if not isinstance(sentence, str) or not sentence.strip():
            raise _fail(self.name, "interaction.sentence is empty", "interaction.sentence")
        gaps = interaction.get("gaps")
        if not isinstance(gaps, list) or not gaps:
            raise _fail(self.name, "needs at least one gap", "interaction.gaps")
        gap_ids = []
        for g, gap in enumerate(gaps):
            if not isinstance(gap, dict) or not isinstance(gap.get("id"), str) \
                    or not GAP_MARK.fullmatch(f"[[{gap.get('id')}]]"):
                raise _fail(self.name, f"interaction.gaps[{g}] needs an id of letters, digits, "
                            "_ or -", f"interaction.gaps[{g}].id")
            _check_options(self.name, gap, "options", plain=True)
            gap_ids.append(gap["id"])
        marks = [gid for _, gid in sentence_parts(sentence) if gid]
        if sorted(marks) != sorted(gap_ids):
            raise _fail(self.name, f"the sentence must mark each gap once as [[id]]: gaps "
                        f"{gap_ids}, marks {marks}", "interaction.sentence")
        for before, gid in sentence_parts(sentence)[:-1]:
            if before.rfind("<") > before.rfind(">"):
                raise _fail(self.name, f"gap [[{gid}]] is inside an HTML tag",
                            "interaction.sentence")
        correct = key.get("correct")
        if not isinstance(correct, dict) or set(correct) != set(gap_ids):
            raise _fail(self.name, f"key.correct must give the right choice of every gap "
                        f"{gap_ids}", "key.correct")
        for gap in gaps:
            if correct[gap["id"]] not in _option_ids(gap):
                raise _fail(self.name, f"key.correct names an unknown choice for gap "
                            f"{gap['id']}", f"key.correct.{gap['id']}")
        _check_method(self.name, scoring, ("all_or_nothing", "partial"))

    def clean_content(self, interaction: dict, clean: Clean) -> dict:
        sentence = interaction.get("sentence")
        if isinstance(sentence, str):
            return {**interaction, "sentence": clean(sentence, "interaction.sentence")}
        return interaction

    def shuffle_targets(self, version: ItemVersion) -> list[str]:
        if version.interaction.get("fixed_order"):
            return []
        return [f"{g['id']}/{o['id']}" for g in version.interaction["gaps"] for o in g["options"]]

    def public(self, version: ItemVersion, option_order: list[str] | None) -> dict[str, Any]:
        i = version.interaction
        gaps = []
        for gap in i["gaps"]:
            prefix = f"{gap['id']}/"
            order = [t[len(prefix):] for t in option_order or [] if t.startswith(prefix)]
            gaps.append({"id": gap["id"], "options": _ordered(gap["options"], order)})
        return {"type": self.name, "stem": version.stem, "sentence": i["sentence"], "gaps": gaps}

    def normalize(self, version: ItemVersion, value: Any) -> Any:
        allowed = {g["id"]: set(_option_ids(g)) for g in version.interaction["gaps"]}
        return _dict_answer("inline choice", value, allowed, "gap", "choice")

    def is_answered(self, value: Any) -> bool:
        return isinstance(value, dict) and bool(value)

    def score(self, version: ItemVersion, value: Any) -> float:
        correct = version.key["correct"]
        if not isinstance(value, dict):
            return 0.0
        right = sum(value.get(g) == o for g, o in correct.items())
        if version.scoring.get("method", "all_or_nothing") == "all_or_nothing":
            return _points(version, 1.0) if right == len(correct) else 0.0
        return _points(version, right / len(correct))

    def sample_response(self, version: ItemVersion, correct: bool, rng: random.Random) -> Any:
        key = dict(sorted(version.key["correct"].items()))
        if correct:
            return key
        gap = version.interaction["gaps"][0]
        others = [o for o in _option_ids(gap) if o != key[gap["id"]]]
        return {**key, gap["id"]: rng.choice(others)}


# ---------------------------------------------------------------- hotspot

SHAPES = {"rect": "[left, top, right, bottom]", "circle": "[centre x, centre y, radius]",
          "polygon": "[x1, y1, x2, y2, x3, y3, ...] (at least three points)"}


def point_in_region(x: float, y: float, region: dict) -> bool:
    """Whether the point lies in the region (its boundary included). Polygons use the even-odd
    ray-casting rule (Shimrat, 1962), with points on an edge counted inside."""
    shape, c = region["shape"], [float(v) for v in region["coords"]]
    if shape == "rect":
        return min(c[0], c[2]) <= x <= max(c[0], c[2]) and min(c[1], c[3]) <= y <= max(c[1], c[3])
    if shape == "circle":
        return (x - c[0]) ** 2 + (y - c[1]) ** 2 <= c[2] ** 2
    pts = list(zip(c[0::2], c[1::2]))
    inside = False
    for (x1, y1), (x2, y2) in zip(pts, pts[1:] + pts[:1]):
        cross = (x2 - x1) * (y - y1) - (y2 - y1) * (x - x1)
        if abs(cross) < 1e-9 and min(x1, x2) <= x <= max(x1, x2) and min(y1, y2) <= y <= max(y1, y2):
            return True  # on an edge
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside


@dataclass(frozen=True)
class HotspotType:
    """Mark a point on an image. ``interaction.image`` is ``{"src", "alt", "width", "height"}``
    (``src`` a stored media URL, sizes in image pixels); the regions are key material, so the
    browser never sees them: key ``{"regions": [{"id", "shape", "coords"}]}`` with ``shape``
    ``rect``, ``circle`` or ``polygon`` in image pixels. A point in any keyed region earns full
    credit, decided on the server. The response is ``{"x": px, "y": px}``.
    """

    name: str = "hotspot"

    def validate_definition(self, interaction: dict, key: dict, scoring: dict) -> None:
        image = interaction.get("image")
        if not isinstance(image, dict) or not isinstance(image.get("src"), str) \
                or not image["src"]:
            raise _fail(self.name, "interaction.image needs a src (an uploaded image)",
                        "interaction.image.src")
        if not isinstance(image.get("alt"), str) or not image["alt"].strip():
            raise _fail(self.name, "the image needs alt text describing it",
                        "interaction.image.alt")
        for dim in ("width", "height"):
            v = image.get(dim)
            if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= 10000:
                raise _fail(self.name, f"interaction.image.{dim} must be 1 to 10000 pixels",
                            f"interaction.image.{dim}")
        regions = key.get("regions")
        if not isinstance(regions, list) or not regions:
            raise _fail(self.name, "key.regions must list at least one region", "key.regions")
        for r, region in enumerate(regions):
            where = f"key.regions[{r}]"
            if not isinstance(region, dict) or region.get("shape") not in SHAPES:
                raise _fail(self.name, f"{where}.shape must be one of {', '.join(SHAPES)}",
                            f"{where}.shape")
            coords = region.get("coords")
            n = {"rect": 4, "circle": 3}.get(region["shape"])
            ok = isinstance(coords, list) and all(_finite(v) for v in coords) and (
                len(coords) == n if n else len(coords) >= 6 and len(coords) % 2 == 0)
            if not ok or (region["shape"] == "circle" and coords[2] <= 0):
                raise _fail(self.name, f"{where}.coords must be {SHAPES[region['shape']]}",
                            f"{where}.coords")
        _check_method(self.name, scoring, ("all_or_nothing",))

    def clean_content(self, interaction: dict, clean: Clean) -> dict:
        return interaction

    def shuffle_targets(self, version: ItemVersion) -> list[str]:
        return []

    def public(self, version: ItemVersion, option_order: list[str] | None) -> dict[str, Any]:
        image = version.interaction["image"]
        return {"type": self.name, "stem": version.stem,
                "image": {k: image[k] for k in ("src", "alt", "width", "height")}}

    def normalize(self, version: ItemVersion, value: Any) -> Any:
        if value is None:
            return None
        image = version.interaction["image"]
        if not isinstance(value, dict) or set(value) != {"x", "y"} \
                or not all(_finite(value[k]) for k in ("x", "y")):
            raise ResponseShapeError("hotspot answer must be a point {\"x\": number, \"y\": number}")
        x, y = float(value["x"]), float(value["y"])
        if not (0 <= x <= image["width"] and 0 <= y <= image["height"]):
            raise ResponseShapeError(f"the point ({x:g}, {y:g}) is outside the image "
                                     f"({image['width']} x {image['height']})")
        return {"x": round(x, 2), "y": round(y, 2)}

    def is_answered(self, value: Any) -> bool:
        return isinstance(value, dict) and "x" in value and "y" in value

    def score(self, version: ItemVersion, value: Any) -> float:
        if not self.is_answered(value):
            return 0.0
        x, y = float(value["x"]), float(value["y"])
        hit = any(point_in_region(x, y, r) for r in version.key["regions"])
        return _points(version, 1.0) if hit else 0.0

    def sample_response(self, version: ItemVersion, correct: bool, rng: random.Random) -> Any:
        image = version.interaction["image"]
        regions = version.key["regions"]
        for _ in range(2000):
            p = {"x": round(rng.uniform(0, image["width"]), 2),
                 "y": round(rng.uniform(0, image["height"]), 2)}
            if any(point_in_region(p["x"], p["y"], r) for r in regions) == correct:
                return p
        return None


ITEM_TYPES: dict[str, ItemType] = {t.name: t for t in (
    SINGLE_CHOICE, MULTIPLE_RESPONSE, TrueFalseType(), TextEntryType(), NumericEntryType(),
    OrderingType(), MatchingType(), InlineChoiceType(), HotspotType())}


def item_type(name: str) -> ItemType:
    try:
        return ITEM_TYPES[name]
    except KeyError:
        raise ItemDefinitionError(
            f"unknown item type {name!r}; known: {', '.join(sorted(ITEM_TYPES))}"
        ) from None


def public_payload(version: ItemVersion, option_order: list[str] | None = None) -> dict[str, Any]:
    """What any page may show of an item: its type's public payload, and the stimulus of its
    item set if it has one. Never the key, the scoring rule or the rationale."""
    payload = item_type(version.item_type).public(version, option_order)
    if version.stimulus_id is not None and version.stimulus is not None:
        s = version.stimulus
        payload["stimulus"] = {"id": s.id, "kind": s.kind, "title": s.title, "content": s.content}
    return payload
