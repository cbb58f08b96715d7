"""QTI response processing: the standard templates, recognised by name, and inline rules that
are a plain match or map, evaluated.

Packages name templates by URI, and the URIs differ between tools and versions
(``http://www.imsglobal.org/question/qti_v2p1/rptemplates/match_correct``,
``.../qti/v3p0/rptemplates/match_correct.xml``, a bare ``match_correct``): only the name at
the end counts (:func:`template_name`).

:func:`score` evaluates a rule for one response, following the QTI 3.0 ASI information model's
definitions of the operators it knows (responseCondition, responseIf/ElseIf/Else,
setOutcomeValue, match, isNull, mapResponse, mapResponsePoint, variable, correct, baseValue,
sum, and, or, not, equal, stringMatch, patternMatch). Anything else raises
:class:`UnsupportedProcessing` naming the element. The importer does not guess what a rule
means: it proposes a Microcred key and scoring and keeps it only if the two agree on a table of
responses (``itembank.qti.reading``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from itembank.types import point_in_region
from microcred.errors import Invalid

#: the response-processing templates Microcred scores as their definitions say
TEMPLATES = ("match_correct", "map_response", "map_response_point")
OUTCOME = "SCORE"


class UnsupportedProcessing(Invalid, ValueError):
    """A response-processing rule Microcred does not evaluate; the message names the element."""


def template_name(uri: str) -> str:
    """``.../rptemplates/match_correct.xml`` -> ``match_correct``."""
    name = uri.strip().rstrip("/").rsplit("/", 1)[-1]
    return name[:-4] if name.lower().endswith(".xml") else name


@dataclass
class Declaration:
    """A response variable's declaration: cardinality, base type, correct value and mapping."""

    identifier: str
    cardinality: str
    base_type: str
    correct: list[str] = field(default_factory=list)
    #: (key, value, case_sensitive)
    entries: list[tuple[str, float, bool]] = field(default_factory=list)
    default: float = 0.0
    lower: float | None = None
    upper: float | None = None
    #: (shape, coords, value) of an areaMapping
    areas: list[tuple[str, list[float], float]] = field(default_factory=list)
    has_mapping: bool = False

    def correct_value(self) -> Any:
        return self.typed(self.correct)

    def typed(self, raw: list[str]) -> Any:
        if not raw:
            return None
        values = [_typed(v, self.base_type) for v in raw]
        return values[0] if self.cardinality == "single" else values


def _typed(text: str, base_type: str) -> Any:
    text = text.strip() if base_type != "string" else text
    if base_type in ("float", "integer"):
        return float(text)
    if base_type in ("directedPair", "directed-pair", "pair"):
        return tuple(text.split())
    if base_type == "point":
        return tuple(float(v) for v in text.split())
    return text


def _children(el: etree._Element) -> list[etree._Element]:
    return [c for c in el if isinstance(c.tag, str)]


def _name(el: etree._Element) -> str:
    return el.get("data-qti-name") or el.tag


def _bound(value: float, decl: Declaration) -> float:
    if decl.lower is not None:
        value = max(value, decl.lower)
    if decl.upper is not None:
        value = min(value, decl.upper)
    return value


def map_response(decl: Declaration, value: Any) -> float:
    """QTI ``mapResponse``: the mapped value of the response (single) or the sum over its
    distinct values (multiple, ordered), the default for a value with no entry, bounded."""
    if value is None:
        return 0.0
    values = [value] if decl.cardinality == "single" else list(dict.fromkeys(value))
    total = 0.0
    for v in values:
        total += _mapped(decl, v)
    return _bound(total, decl)


def _mapped(decl: Declaration, value: Any) -> float:
    for key, mapped, case_sensitive in decl.entries:
        k = _typed(key, decl.base_type)
        if isinstance(k, tuple) and isinstance(value, tuple | list):
            if tuple(value) == k:
                return mapped
        elif decl.base_type == "string" and not case_sensitive:
            if str(value).casefold() == str(k).casefold():
                return mapped
        elif value == k:
            return mapped
    return decl.default


def map_response_point(decl: Declaration, value: Any) -> float:
    """QTI ``mapResponsePoint``: the sum of the values of the areas the point falls in (each
    area once), the default when it falls in none, bounded."""
    if value is None:
        return 0.0
    points = [value] if decl.cardinality == "single" else list(value)
    hit: set[int] = set()
    for x, y in points:
        for i, (shape, coords, _v) in enumerate(decl.areas):
            if point_in_region(x, y, {"shape": shape, "coords": coords}):
                hit.add(i)
    if not hit:
        return _bound(decl.default, decl)
    return _bound(sum(decl.areas[i][2] for i in hit), decl)


def _match(a: Any, b: Any, cardinality: str) -> bool | None:
    if a is None or b is None:
        return None
    if cardinality == "single":
        return a == b
    if cardinality == "ordered":
        return list(a) == list(b)
    return sorted(map(str, a)) == sorted(map(str, b))


def _equal(el: etree._Element, a: Any, b: Any) -> bool | None:
    if a is None or b is None:
        return None
    mode = el.get("tolerance-mode", "exact")
    x, y = float(a), float(b)
    if mode == "exact":
        return x == y
    tol = [float(t) for t in (el.get("tolerance") or "0").split()]
    t0, t1 = tol[0], tol[-1]
    if mode == "absolute":
        low, high = y - t0, y + t1
    elif mode == "relative":
        low, high = y * (1 - t0 / 100), y * (1 + t1 / 100)
    else:
        raise UnsupportedProcessing(f"equal with tolerance-mode {mode!r}")
    low, high = min(low, high), max(low, high)
    lower_ok = x >= low if el.get("include-lower-bound", "true") == "true" else x > low
    upper_ok = x <= high if el.get("include-upper-bound", "true") == "true" else x < high
    return lower_ok and upper_ok


@dataclass
class Evaluation:
    declarations: dict[str, Declaration]
    responses: dict[str, Any]
    outcomes: dict[str, Any] = field(default_factory=dict)

    def expression(self, el: etree._Element) -> Any:
        tag = el.tag
        kids = _children(el)
        if tag == "variable":
            ident = el.get("identifier", "")
            if ident in self.responses:
                return self.responses[ident]
            if ident in self.outcomes:
                return self.outcomes[ident]
            raise UnsupportedProcessing(f"variable {ident!r} that is neither a response nor "
                                        "SCORE")
        if tag == "correct":
            return self._decl(el).correct_value()
        if tag == "base-value":
            return _typed(el.text or "", el.get("base-type", "string"))
        if tag == "is-null":
            v = self.expression(kids[0])
            return v is None or v == [] or v == ""
        if tag == "match":
            a, b = (self.expression(k) for k in kids[:2])
            card = self._cardinality(kids)
            return _match(a, b, card)
        if tag == "map-response":
            decl = self._decl(el)
            return map_response(decl, self.responses.get(decl.identifier))
        if tag == "map-response-point":
            decl = self._decl(el)
            return map_response_point(decl, self.responses.get(decl.identifier))
        if tag == "sum":
            values = [self.expression(k) for k in kids]
            return None if any(v is None for v in values) else float(sum(values))
        if tag in ("and", "or"):
            values = [self.expression(k) for k in kids]
            if any(v is None for v in values):
                return None
            return all(values) if tag == "and" else any(values)
        if tag == "not":
            v = self.expression(kids[0])
            return None if v is None else not v
        if tag == "equal":
            a, b = (self.expression(k) for k in kids[:2])
            return _equal(el, a, b)
        if tag == "string-match":
            a, b = (self.expression(k) for k in kids[:2])
            if a is None or b is None:
                return None
            if el.get("case-sensitive", "true") == "false":
                return str(a).casefold() == str(b).casefold()
            return str(a) == str(b)
        if tag == "pattern-match":
            a = self.expression(kids[0])
            if a is None:
                return None
            from itembank.patterns import UnsafePatternError, check_pattern
            try:
                return check_pattern(el.get("pattern", ""), 200).fullmatch(str(a)) is not None
            except UnsafePatternError as exc:
                raise UnsupportedProcessing(f"pattern-match with an unsafe pattern: {exc}") \
                    from None
        raise UnsupportedProcessing(f"the operator {_name(el)}")

    def _decl(self, el: etree._Element) -> Declaration:
        ident = el.get("identifier", "")
        if ident not in self.declarations:
            raise UnsupportedProcessing(f"{_name(el)} of undeclared response {ident!r}")
        return self.declarations[ident]

    def _cardinality(self, kids: list[etree._Element]) -> str:
        for k in kids:
            if k.tag in ("variable", "correct") and k.get("identifier") in self.declarations:
                return self.declarations[k.get("identifier")].cardinality
        return "single"

    def rule(self, el: etree._Element) -> None:
        tag = el.tag
        if tag == "set-outcome-value":
            ident = el.get("identifier", "")
            if ident != OUTCOME:
                return  # feedback and other outcomes do not change the score
            self.outcomes[OUTCOME] = self.expression(_children(el)[0])
            return
        if tag == "response-condition":
            for branch in _children(el):
                if branch.tag == "response-else":
                    self.rules(_children(branch))
                    return
                if branch.tag not in ("response-if", "response-else-if"):
                    raise UnsupportedProcessing(f"the element {_name(branch)} in a condition")
                cond, *body = _children(branch)
                if self.expression(cond):
                    self.rules(body)
                    return
            return
        raise UnsupportedProcessing(f"the rule {_name(el)}")

    def rules(self, elements: list[etree._Element]) -> None:
        for el in elements:
            self.rule(el)


def template_rules(name: str) -> etree._Element:
    """The rules a standard template stands for, as inline processing (canonical names)."""
    E = etree.Element
    rp = E("response-processing")
    cond = etree.SubElement(rp, "response-condition")
    if name == "match_correct":
        branch = etree.SubElement(cond, "response-if")
        m = etree.SubElement(branch, "match")
        etree.SubElement(m, "variable", identifier="RESPONSE")
        etree.SubElement(m, "correct", identifier="RESPONSE")
        _set(branch, "1")
        _set(etree.SubElement(cond, "response-else"), "0")
    elif name in ("map_response", "map_response_point"):
        branch = etree.SubElement(cond, "response-if")
        n = etree.SubElement(branch, "is-null")
        etree.SubElement(n, "variable", identifier="RESPONSE")
        _set(branch, "0")
        other = etree.SubElement(cond, "response-else")
        s = etree.SubElement(other, "set-outcome-value", identifier=OUTCOME)
        etree.SubElement(s, name.replace("_", "-"), identifier="RESPONSE")
    else:
        raise UnsupportedProcessing(f"the response-processing template {name!r}; Microcred "
                                    f"knows {', '.join(TEMPLATES)}")
    return rp


def _set(parent: etree._Element, value: str) -> None:
    s = etree.SubElement(parent, "set-outcome-value", identifier=OUTCOME)
    b = etree.SubElement(s, "base-value", {"base-type": "float"})
    b.text = value


def resolve(processing: etree._Element | None) -> etree._Element | None:
    """The rules of a ``response-processing`` element: its template's, or its own."""
    if processing is None:
        return None
    template = processing.get("template") or processing.get("template-location") or ""
    if template and not _children(processing):
        return template_rules(template_name(template))
    return processing


def score(rules: etree._Element | None, declarations: dict[str, Declaration],
          responses: dict[str, Any], default: float = 0.0) -> float:
    """SCORE after running ``rules`` (a resolved ``response-processing``) on ``responses``."""
    if rules is None:
        return default
    ev = Evaluation(declarations, responses, {OUTCOME: default})
    ev.rules(_children(rules))
    value = ev.outcomes.get(OUTCOME)
    if value is None:
        return 0.0
    if isinstance(value, bool):
        raise UnsupportedProcessing("SCORE set to a true/false value")
    return float(value)


def check_rules(rules: etree._Element | None) -> None:
    """Raise :class:`UnsupportedProcessing` if ``rules`` use an element :func:`score` does
    not know, without needing a response (so a report can say so up front)."""
    if rules is None:
        return
    known = {"response-processing", "response-condition", "response-if", "response-else-if",
             "response-else", "set-outcome-value", "match", "is-null", "map-response",
             "map-response-point", "variable", "correct", "base-value", "sum", "and", "or",
             "not", "equal", "string-match", "pattern-match"}
    def walk(el: etree._Element) -> None:
        if el.tag == "set-outcome-value" and el.get("identifier") != OUTCOME:
            return  # feedback: never part of the score
        if el.tag not in known:
            raise UnsupportedProcessing(f"the element {_name(el)}")
        for child in _children(el):
            walk(child)

    walk(rules)
