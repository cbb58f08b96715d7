"""Writing an item as a QTI 3.0 or 2.1 item document.

Each Microcred type becomes the QTI interaction that asks the same question, and its key and
scoring become a response declaration and response processing another QTI player scores the
same way (standard templates where they fit, plain inline rules otherwise):

===================  ===============================  ======================================
Microcred type       interaction                      scoring
===================  ===============================  ======================================
single choice        choice (max-choices 1)           match_correct (inline if max != 1)
multiple response    choice (max-choices = select)    match_correct; partial: sum(base, map);
                                                      mapped: map_response
true/false           choice, choices ``true``/        match_correct
                     ``false``
text entry           text-entry, base-type string     map_response (case-sensitive per
                                                      entry); patterns: inline string/
                                                      pattern-match chain
numeric entry        text-entry, base-type float      inline equal with tolerance
ordering             order                            match_correct (pairwise/position kept
                                                      in Microcred's extension)
matching             match (directedPair)             match_correct; partial, mapped:
                                                      map_response
inline choice        inline-choice per gap            inline and(match...); partial: sum of
                                                      map-responses
hotspot              select-point, area-mapping       map_response_point
===================  ===============================  ======================================
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lxml import etree

from itembank.qti.content import append_html, html_container
from itembank.qti.dialect import Dialect, render
from itembank.qti.processing import OUTCOME
from itembank.qti.record import ItemRecord
from itembank.types import sentence_parts

RESPONSE = "RESPONSE"
SHAPES = {"rect": "rect", "circle": "circle", "polygon": "poly"}


def _el(parent: etree._Element | None, name: str, text: str | None = None,
        **attrs: Any) -> etree._Element:
    attrib = {k.replace("_", "-"): str(v) for k, v in attrs.items() if v is not None}
    el = etree.Element(name, attrib) if parent is None else etree.SubElement(parent, name, attrib)
    if text is not None:
        el.text = text
    return el


def _num(value: float) -> str:
    return repr(float(value)) if float(value) != int(value) else str(int(value))


def _declare(root: etree._Element, ident: str, cardinality: str, base_type: str,
             correct: list[str] | None = None) -> etree._Element:
    decl = _el(root, "response-declaration", identifier=ident, cardinality=cardinality,
               base_type=base_type)
    if correct:
        box = _el(decl, "correct-response")
        for value in correct:
            _el(box, "value", value)
    return decl


def _mapping(decl: etree._Element, entries: list[tuple[str, float, bool | None]], *,
             lower: float | None = None, upper: float | None = None,
             default: float = 0) -> None:
    m = _el(decl, "mapping", default_value=_num(default),
            lower_bound=None if lower is None else _num(lower),
            upper_bound=None if upper is None else _num(upper))
    for key, value, case in entries:
        _el(m, "map-entry", map_key=key, mapped_value=_num(value),
            case_sensitive=str(case is not False).lower())


def _mapped(root: etree._Element, decl: etree._Element, dialect: Dialect, rec: ItemRecord,
            entries: list[tuple[str, float, bool | None]]) -> None:
    """The ``mapped`` method as QTI's map_response template. The bank clips the bounded sum to
    [0, max score]; QTI does not, so the bounds written are the item's bounds clipped to that
    range (for lower <= upper, clamp(clamp(x, l, u), 0, m) = clamp(x, clamp(l, 0, m),
    clamp(u, 0, m))). Microcred's extension keeps the bounds as authored."""
    sc, top = rec.scoring, float(rec.max_score)
    low = -float("inf") if sc.get("lower") is None else float(sc["lower"])
    high = float("inf") if sc.get("upper") is None else float(sc["upper"])
    _mapping(decl, entries, default=float(sc.get("default", 0)),
             lower=min(max(low, 0.0), top), upper=min(max(high, 0.0), top))
    _template(root, dialect, "map_response")


def _template(root: etree._Element, dialect: Dialect, name: str) -> None:
    _el(root, "response-processing", template=f"{dialect.template_base}{name}")


def _set_score(parent: etree._Element, value: float) -> None:
    s = _el(parent, "set-outcome-value", identifier=OUTCOME)
    _el(s, "base-value", _num(value), base_type="float")


def _if_else(root: etree._Element, condition: etree._Element, points: float) -> None:
    rp = _el(root, "response-processing")
    cond = _el(rp, "response-condition")
    branch = _el(cond, "response-if")
    branch.append(condition)
    _set_score(branch, points)
    _set_score(_el(cond, "response-else"), 0)


def _match_correct(root: etree._Element, dialect: Dialect, rec: ItemRecord,
                   ident: str = RESPONSE) -> None:
    if float(rec.max_score) == 1.0 and ident == RESPONSE:
        _template(root, dialect, "match_correct")
        return
    m = _el(None, "match")
    _el(m, "variable", identifier=ident)
    _el(m, "correct", identifier=ident)
    _if_else(root, m, rec.max_score)


def _choices(parent: etree._Element, options: list[dict], tag: str = "simple-choice",
             **extra: Any) -> None:
    for opt in options:
        choice = _el(parent, tag, identifier=opt["id"], **extra)
        append_html(choice, opt["text"])


# ------------------------------------------------------------------- one writer per type


def _choice(root, body, rec: ItemRecord, dialect: Dialect) -> None:
    i, multiple = rec.interaction, rec.item_type == "multiple_response"
    options = i["options"] if rec.item_type != "true_false" else [
        {"id": "true", "text": "True"}, {"id": "false", "text": "False"}]
    correct = rec.key["correct"]
    correct = [correct] if isinstance(correct, str) else list(correct)
    decl = _declare(root, RESPONSE, "multiple" if multiple else "single", "identifier", correct)
    shuffle = rec.item_type != "true_false" and not i.get("fixed_order")
    max_choices = (i.get("select") or 0) if multiple else 1
    interaction = _el(body, "choice-interaction", response_identifier=RESPONSE,
                      shuffle=str(shuffle).lower(), max_choices=max_choices)
    _choices(interaction, options)
    if multiple and rec.scoring.get("method") == "mapped":
        _mapped(root, decl, dialect, rec,
                [(k, float(v), None) for k, v in rec.scoring["map"].items()])
        return
    if multiple and rec.scoring.get("method") == "partial":
        # Frisbie's rule: credit per option rightly chosen or rightly left; as QTI, a base of
        # the wrong options' share plus +w per key chosen and -w per distractor chosen
        w = float(rec.max_score) / len(options)
        wrong = [o["id"] for o in options if o["id"] not in correct]
        _mapping(decl, [(o["id"], w if o["id"] in correct else -w, None) for o in options])
        rp = _el(root, "response-processing")
        cond = _el(rp, "response-condition")
        branch = _el(cond, "response-if")
        null = _el(branch, "is-null")
        _el(null, "variable", identifier=RESPONSE)
        _set_score(branch, 0)
        other = _el(_el(cond, "response-else"), "set-outcome-value", identifier=OUTCOME)
        total = _el(other, "sum")
        _el(total, "base-value", _num(w * len(wrong)), base_type="float")
        _el(total, "map-response", identifier=RESPONSE)
        return
    _match_correct(root, dialect, rec)


def _text_entry(root, body, rec: ItemRecord, dialect: Dialect) -> None:
    answers = sorted(rec.key["answers"], key=lambda a: -float(a.get("credit", 1)))
    literal = [a for a in answers if a.get("match", "exact") != "pattern"]
    full = [a["value"] for a in literal if float(a.get("credit", 1)) == 1.0][:1]
    decl = _declare(root, RESPONSE, "single", "string", full)
    holder = _el(body, "p")
    _el(holder, "text-entry-interaction", response_identifier=RESPONSE,
        expected_length=rec.interaction.get("expected_length"))
    if len(literal) == len(answers):
        _mapping(decl, [(a["value"], float(a.get("credit", 1)) * float(rec.max_score),
                         a.get("match", "exact") == "exact") for a in answers],
                 lower=0, upper=float(rec.max_score))
        _template(root, dialect, "map_response")
        return
    rp = _el(root, "response-processing")
    cond = _el(rp, "response-condition")
    for n, ans in enumerate(answers):
        branch = _el(cond, "response-if" if n == 0 else "response-else-if")
        match = ans.get("match", "exact")
        if match == "pattern":
            test = _el(branch, "pattern-match", pattern=ans["value"])
            _el(test, "variable", identifier=RESPONSE)
        else:
            test = _el(branch, "string-match", case_sensitive=str(match == "exact").lower())
            _el(test, "variable", identifier=RESPONSE)
            _el(test, "base-value", ans["value"], base_type="string")
        _set_score(branch, float(ans.get("credit", 1)) * float(rec.max_score))
    _set_score(_el(cond, "response-else"), 0)


def _numeric(root, body, rec: ItemRecord, dialect: Dialect) -> None:
    value = rec.key["value"]
    _declare(root, RESPONSE, "single", "float", [_num(value)])
    holder = _el(body, "p")
    entry = _el(holder, "text-entry-interaction", response_identifier=RESPONSE)
    unit = rec.interaction.get("unit")
    if unit:
        entry.tail = " "
        _el(holder, "span", unit, **{"class": "unit"})
    tol = float(rec.scoring.get("tolerance", 0))
    mode = rec.scoring.get("tolerance_mode", "absolute")
    if tol == 0:
        eq = _el(None, "equal", tolerance_mode="exact")
    elif mode == "relative":
        eq = _el(None, "equal", tolerance_mode="relative", tolerance=f"{_num(tol * 100)}")
    else:
        eq = _el(None, "equal", tolerance_mode="absolute", tolerance=f"{_num(tol)}")
    _el(eq, "variable", identifier=RESPONSE)
    _el(eq, "correct", identifier=RESPONSE)
    _if_else(root, eq, rec.max_score)


def _ordering(root, body, rec: ItemRecord, dialect: Dialect) -> None:
    _declare(root, RESPONSE, "ordered", "identifier", list(rec.key["order"]))
    interaction = _el(body, "order-interaction", response_identifier=RESPONSE,
                      shuffle=str(not rec.interaction.get("fixed_order", False)).lower())
    _choices(interaction, rec.interaction["options"])
    _match_correct(root, dialect, rec)


def _matching(root, body, rec: ItemRecord, dialect: Dialect) -> None:
    i, pairs = rec.interaction, rec.key["pairs"]
    decl = _declare(root, RESPONSE, "multiple", "directedPair",
                    [f"{s} {t}" for s, t in pairs.items()])
    interaction = _el(body, "match-interaction", response_identifier=RESPONSE,
                      shuffle=str(not i.get("fixed_order", False)).lower(),
                      max_associations=len(i["sources"]))
    _choices(_el(interaction, "simple-match-set"), i["sources"], "simple-associable-choice",
             match_max=1)
    _choices(_el(interaction, "simple-match-set"), i["targets"], "simple-associable-choice",
             match_max=0 if i.get("reuse_targets") else 1)
    if rec.scoring.get("method") == "mapped":
        _mapped(root, decl, dialect, rec, [(f"{s} {t}", float(v), None)
                                           for s, by_t in rec.scoring["map"].items()
                                           for t, v in by_t.items()])
        return
    if rec.scoring.get("method") == "partial":
        w = float(rec.max_score) / len(pairs)
        _mapping(decl, [(f"{s} {t}", w, None) for s, t in pairs.items()], lower=0,
                 upper=float(rec.max_score))
        _template(root, dialect, "map_response")
        return
    _match_correct(root, dialect, rec)


def _inline_choice(root, body, rec: ItemRecord, dialect: Dialect) -> None:
    i, correct = rec.interaction, rec.key["correct"]
    gaps = {g["id"]: g for g in i["gaps"]}
    for gid in gaps:
        _declare(root, gid, "single", "identifier", [correct[gid]])
    marked = "".join(before + (f'<span data-gap="{gid}"></span>' if gid else "")
                     for before, gid in sentence_parts(i["sentence"]))
    box = html_container(marked)
    for span in box.xpath(".//span[@data-gap]"):
        gid = span.get("data-gap")
        interaction = etree.Element("inline-choice-interaction", {
            "response-identifier": gid,
            "shuffle": str(not i.get("fixed_order", False)).lower()})
        for opt in gaps[gid]["options"]:
            _el(interaction, "inline-choice", opt["text"], identifier=opt["id"])
        interaction.tail = span.tail
        span.getparent().replace(span, interaction)
    box.set("class", "microcred-sentence")
    body.append(box)
    if rec.scoring.get("method") == "partial":
        w = float(rec.max_score) / len(gaps)
        for decl in root.findall("response-declaration"):
            _mapping(decl, [(correct[decl.get("identifier")], w, None)])
        rp = _el(root, "response-processing")
        s = _el(rp, "set-outcome-value", identifier=OUTCOME)
        total = _el(s, "sum")
        for gid in gaps:
            _el(total, "map-response", identifier=gid)
        return
    both = _el(None, "and")
    for gid in gaps:
        m = _el(both, "match")
        _el(m, "variable", identifier=gid)
        _el(m, "correct", identifier=gid)
    _if_else(root, both, rec.max_score)


def _inside(region: dict) -> str:
    """A point in the region (for the correct response other players show)."""
    c = [float(v) for v in region["coords"]]
    if region["shape"] == "rect":
        return f"{_num((c[0] + c[2]) / 2)} {_num((c[1] + c[3]) / 2)}"
    if region["shape"] == "circle":
        return f"{_num(c[0])} {_num(c[1])}"
    xs, ys = c[0::2], c[1::2]
    return f"{_num(sum(xs) / len(xs))} {_num(sum(ys) / len(ys))}"


def _hotspot(root, body, rec: ItemRecord, dialect: Dialect) -> None:
    from itembank.types import point_in_region

    image, regions = rec.interaction["image"], rec.key["regions"]
    first = regions[0]
    centre = _inside(first)
    x, y = (float(v) for v in centre.split())
    decl = _declare(root, RESPONSE, "single", "point",
                    [centre] if point_in_region(x, y, first) else None)
    areas = _el(decl, "area-mapping", default_value="0", lower_bound="0",
                upper_bound=_num(rec.max_score))
    for region in regions:
        _el(areas, "area-map-entry", shape=SHAPES[region["shape"]],
            coords=",".join(_num(v) for v in region["coords"]),
            mapped_value=_num(rec.max_score))
    interaction = _el(body, "select-point-interaction", response_identifier=RESPONSE,
                      max_choices=1)
    if dialect.is_v3:
        _el(interaction, "img", src=image["src"], alt=image["alt"], width=image["width"],
            height=image["height"])
    else:
        _el(interaction, "object", image["alt"], data=image["src"],
            type=image.get("content_type", "image/png"), width=image["width"],
            height=image["height"])
    _template(root, dialect, "map_response_point")


WRITERS: dict[str, Callable[..., None]] = {
    "single_choice": _choice, "multiple_response": _choice, "true_false": _choice,
    "text_entry": _text_entry, "numeric_entry": _numeric, "ordering": _ordering,
    "matching": _matching, "inline_choice": _inline_choice, "hotspot": _hotspot,
}


def item_tree(rec: ItemRecord, dialect: Dialect,
              stimulus_href: str | None = None) -> etree._Element:
    """The item as a canonical tree (see ``itembank.qti.dialect``), not yet spelled."""
    root = _el(None, "assessment-item", identifier=rec.code, title=rec.title or rec.code,
               adaptive="false", time_dependent="false")
    body = etree.Element("item-body")
    stem = html_container(rec.stem)
    stem.set("class", "microcred-stem")
    body.append(stem)
    WRITERS[rec.item_type](root, body, rec, dialect)
    # declarations first, then the outcome, the stimulus reference, body and processing
    processing = root.find("response-processing")
    if processing is not None:
        root.remove(processing)
    outcome = _el(root, "outcome-declaration", identifier=OUTCOME, cardinality="single",
                  base_type="float", normal_maximum=_num(rec.max_score))
    _el(_el(outcome, "default-value"), "value", "0")
    if rec.stimulus is not None and stimulus_href and dialect.is_v3:
        _el(root, "assessment-stimulus-ref", identifier=rec.stimulus.code, href=stimulus_href,
            title=rec.stimulus.title)
    elif rec.stimulus is not None:
        box = html_container(rec.stimulus.content)
        box.set("class", f"microcred-stimulus {rec.stimulus.kind}")
        box.set("title", rec.stimulus.title)
        box.set("id", f"stimulus-{rec.stimulus.code}")
        body.insert(0, box)
    root.append(body)
    if processing is not None:
        root.append(processing)
    return root


def stimulus_tree(stimulus: Any) -> etree._Element:
    root = _el(None, "assessment-stimulus", identifier=stimulus.code, title=stimulus.title)
    body = _el(root, "stimulus-body")
    box = html_container(stimulus.content)
    box.set("class", f"microcred-stimulus {stimulus.kind}")
    body.append(box)
    return root


def serialize(tree: etree._Element, dialect: Dialect) -> bytes:
    # not pretty-printed: indentation would become part of the content's mixed text
    return etree.tostring(render(tree, dialect), xml_declaration=True, encoding="UTF-8")
