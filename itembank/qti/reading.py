"""Reading a QTI 2.x or 3.0 item document into an :class:`ItemRecord`, or refusing it by name.

The interaction decides the Microcred type; the response declaration gives the key; the
response processing (a template, or inline rules) gives the scoring. The scoring is not
guessed from the rule's shape: :func:`_choose_scoring` proposes each scoring the type knows
and keeps the first that gives the same points as the package's own rule on a table of
responses (every option, subset or order where that is small, a sample otherwise), so an
imported item scores every response the way the package says. If none agrees, the item is
refused with the reason.
"""
from __future__ import annotations

import itertools
import random
import re
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from lxml import etree

from itembank.qti import processing as rp
from itembank.qti.content import inner_html, text_of
from itembank.qti.dialect import canonical_tree, version_of
from itembank.qti.record import ItemRecord, StimulusRecord
from itembank.types import (
    GAP_MARK,
    ItemDefinitionError,
    item_type,
    parse_number,
    point_in_region,
)
from microcred.errors import Invalid

SUPPORTED = ("choice-interaction", "order-interaction", "match-interaction",
             "inline-choice-interaction", "text-entry-interaction", "select-point-interaction",
             "hotspot-interaction")
SHAPES = {"rect": "rect", "circle": "circle", "poly": "polygon"}
#: elements of an item body that carry feedback or hints: not part of what is scored
FEEDBACK = {"feedback-inline", "feedback-block", "modal-feedback"}
TABLE_LIMIT = 400
EPS = 1e-9


class ItemRefused(Invalid, ValueError):
    """An item the import cannot take; the message says why (an interaction by name, a rule)."""


#: ``media(src)`` -> the bank URL of the file ``src`` names (relative to the item)
MediaResolver = Callable[[str], str]


def read_item(root: etree._Element, media: MediaResolver | None = None) -> ItemRecord:
    """The item document ``root`` (as parsed) as a record; :class:`ItemRefused` if it cannot
    be one."""
    version = version_of(root)
    local = etree.QName(root).localname
    if not version or local not in ("assessmentItem", "qti-assessment-item"):
        raise ItemRefused(f"not a QTI item: the root element is {local} in namespace "
                          f"{etree.QName(root).namespace or '(none)'}")
    tree = canonical_tree(root)
    code = (tree.get("identifier") or "").strip()
    if not code or len(code) > 64:
        raise ItemRefused("the item has no identifier of at most 64 characters")
    if tree.get("adaptive") == "true":
        raise ItemRefused("an adaptive item (adaptive=\"true\": several attempts with "
                          "feedback); Microcred items are answered once")
    if tree.find("template-declaration") is not None or tree.find("template-processing") \
            is not None:
        raise ItemRefused("a template item (templateDeclaration/templateProcessing: cloned "
                          "variants); Microcred items are fixed")
    body = tree.find("item-body")
    if body is None:
        raise ItemRefused("the item has no item body")
    interactions = [el for el in body.iter() if isinstance(el.tag, str)
                    and el.tag.endswith("-interaction")]
    unsupported = [el.get("data-qti-name", el.tag) for el in interactions
                   if el.tag not in SUPPORTED]
    if unsupported:
        raise ItemRefused(f"unsupported interaction {', '.join(dict.fromkeys(unsupported))} "
                          f"({version}); Microcred does not deliver it")
    if not interactions:
        raise ItemRefused("the item has no interaction (nothing to answer)")
    kinds = {el.tag for el in interactions}
    if len(interactions) > 1 and kinds != {"inline-choice-interaction"}:
        names = ", ".join(el.get("data-qti-name", el.tag) for el in interactions)
        raise ItemRefused(f"several interactions in one item ({names}); a Microcred item has "
                          "one interaction (inline choices excepted)")
    declarations = _declarations(tree)
    rules = rp.resolve(tree.find("response-processing"))
    try:
        rp.check_rules(rules)
    except rp.UnsupportedProcessing as exc:
        raise ItemRefused(f"response processing uses {exc}, which Microcred does not "
                          "evaluate") from None
    if rules is None:
        raise ItemRefused("the item has no response processing (nothing says how it is "
                          "scored)")
    media = media or (lambda src: src)
    notes: list[str] = []
    for el in list(tree.iter(*FEEDBACK)):
        name = el.get("data-qti-name", el.tag)
        note = f"{name} not kept (Microcred shows no feedback during an exam)"
        if note not in notes:
            notes.append(note)
        _remove(el)
    stimulus = _inline_stimulus(body)
    reader = READERS[next(iter(kinds))]
    rec = reader(tree, body, interactions, declarations, rules, media)
    rec.code, rec.title = code, tree.get("title", "")
    rec.notes = notes + rec.notes
    if stimulus is not None:
        rec.stimulus = stimulus
    if not rec.stem.strip():
        rec.stem = f"<p>{_escape(rec.title or code)}</p>"
        rec.notes.append("the item body has no text outside its interaction: its title is "
                         "the stem")
    rec.stem = _resolve_media(rec.stem, media)
    item_type(rec.item_type).validate_definition(rec.interaction, rec.key, rec.scoring)
    return rec


# ------------------------------------------------------------------------ declarations


def _declarations(tree: etree._Element) -> dict[str, rp.Declaration]:
    out = {}
    for el in tree.findall("response-declaration"):
        ident = el.get("identifier", "")
        base = el.get("base-type", "identifier")
        base = "directedPair" if base == "directed-pair" else base
        decl = rp.Declaration(ident, el.get("cardinality", "single"), base)
        box = el.find("correct-response")
        if box is not None:
            decl.correct = [v.text or "" for v in box.findall("value")]
        mapping = el.find("mapping")
        if mapping is not None:
            decl.has_mapping = True
            decl.default = float(mapping.get("default-value", "0"))
            decl.lower = _float(mapping.get("lower-bound"))
            decl.upper = _float(mapping.get("upper-bound"))
            decl.entries = [(e.get("map-key", ""), float(e.get("mapped-value", "0")),
                             e.get("case-sensitive", "true") != "false")
                            for e in mapping.findall("map-entry")]
        areas = el.find("area-mapping")
        if areas is not None:
            decl.has_mapping = True
            decl.default = float(areas.get("default-value", "0"))
            decl.lower = _float(areas.get("lower-bound"))
            decl.upper = _float(areas.get("upper-bound"))
            for e in areas.findall("area-map-entry"):
                shape = e.get("shape", "")
                if shape not in SHAPES:
                    raise ItemRefused(f"an area of shape {shape!r}; Microcred regions are "
                                      "rect, circle and poly")
                coords = [float(v) for v in re.split(r"[,\s]+", e.get("coords", "").strip())
                          if v]
                decl.areas.append((SHAPES[shape], coords, float(e.get("mapped-value", "0"))))
        out[ident] = decl
    return out


def _float(text: str | None) -> float | None:
    return None if text is None else float(text)


def _decl(declarations: dict[str, rp.Declaration], el: etree._Element) -> rp.Declaration:
    ident = el.get("response-identifier", "")
    if ident not in declarations:
        raise ItemRefused(f"{el.get('data-qti-name', el.tag)} answers an undeclared response "
                          f"{ident!r}")
    return declarations[ident]


# ------------------------------------------------------------------------ body helpers


def _remove(el: etree._Element) -> None:
    """Remove ``el`` but keep its tail text."""
    parent = el.getparent()
    if el.tail:
        prev = el.getprevious()
        if prev is not None:
            prev.tail = (prev.tail or "") + el.tail
        else:
            parent.text = (parent.text or "") + el.tail
    parent.remove(el)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _stem(body: etree._Element, remove: Iterable[etree._Element]) -> str:
    """The body's HTML without the interaction parts: the question as the bank keeps it."""
    prompts = []
    for el in remove:
        for p in el.findall("prompt"):
            if text_of(p):
                prompts.append(f"<p>{inner_html(p)}</p>")
        _remove(el)
    for el in list(body.iter("p", "div")):  # a block left empty by removing its interaction
        if el is not body and not text_of(el) and len(el) == 0 and el.getparent() is not None:
            _remove(el)
    stem_div = body.find("div[@class='microcred-stem']")
    html = inner_html(stem_div) if stem_div is not None and len(body) == 1 \
        else inner_html(body)
    return (html + "".join(prompts)).strip()


def _inline_stimulus(body: etree._Element) -> StimulusRecord | None:
    """A stimulus written into the body (Microcred's QTI 2.1 export) taken back out."""
    for div in body.findall("div"):
        classes = (div.get("class") or "").split()
        if "microcred-stimulus" in classes:
            code = (div.get("id") or "").removeprefix("stimulus-")
            kind = next((c for c in classes if c != "microcred-stimulus"), "passage")
            record = StimulusRecord(code=code, kind=kind, title=div.get("title", code),
                                    content=inner_html(div))
            _remove(div)
            return record
    return None


def _resolve_media(html: str, media: MediaResolver) -> str:
    if "src=" not in html and "data=" not in html:
        return html
    import lxml.html

    box = lxml.html.fragment_fromstring(html, create_parent="div")
    for node in box.iter():
        if not isinstance(node.tag, str):
            continue
        for attr in ("src", "data"):
            if node.get(attr):
                node.set(attr, media(node.get(attr)))
    return inner_html(box)


def _options(el: etree._Element, tag: str, media: MediaResolver) -> list[dict[str, str]]:
    out = []
    for choice in el.findall(tag):
        for fb in list(choice.iter(*FEEDBACK)):
            _remove(fb)
        out.append({"id": choice.get("identifier", ""),
                    "text": _resolve_media(inner_html(choice), media)})
    return out


# ------------------------------------------------------------------------ scoring checks


def _qti_score(rules, declarations, responses) -> float:
    try:
        return rp.score(rules, declarations, responses)
    except rp.UnsupportedProcessing as exc:
        raise ItemRefused(f"response processing uses {exc}, which Microcred does not "
                          "evaluate") from None
    except (ValueError, TypeError, IndexError) as exc:
        raise ItemRefused(f"response processing cannot be evaluated: {exc}") from None


class _Probe:
    """An item version's stand-in for scoring a proposal (no database row needed)."""

    def __init__(self, rec: ItemRecord) -> None:
        self.interaction, self.key, self.scoring = rec.interaction, rec.key, rec.scoring
        self.max_score, self.item_type = rec.max_score, rec.item_type


def _agrees(rec: ItemRecord, table: list[tuple[Any, dict[str, Any]]], rules,
            declarations) -> tuple[Any, float, float] | None:
    """The first response (bank form) where the proposal and the package disagree, with
    both scores; None when they agree on all of ``table``."""
    kind = item_type(rec.item_type)
    try:
        kind.validate_definition(rec.interaction, rec.key, rec.scoring)
    except ItemDefinitionError as exc:
        raise ItemRefused(f"not a valid Microcred item: {exc.message}") from None
    probe = _Probe(rec)
    for bank_value, qti_value in table:
        ours = kind.score(probe, bank_value)  # type: ignore[arg-type]
        theirs = _qti_score(rules, declarations, qti_value)
        if abs(ours - theirs) > EPS * max(1.0, abs(theirs)):
            return (bank_value, ours, theirs)
    return None


def _choose_scoring(rec: ItemRecord, methods: list[dict[str, Any]], table, rules,
                    declarations) -> ItemRecord:
    worst = None
    for scoring in methods:
        rec.scoring = scoring
        miss = _agrees(rec, table, rules, declarations)
        if miss is None:
            return rec
        # the mapping read as-is is the closest proposal: its miss says most
        worst = miss if scoring.get("method") == "mapped" else (worst or miss)
    value, ours, theirs = worst or (None, 0, 0)
    raise ItemRefused(f"its response processing scores in a way Microcred cannot: the "
                      f"response {value!r} earns {theirs:g} in the package, and "
                      f"{ours:g} under every Microcred scoring of a {rec.item_type.replace('_', ' ')}")


def _sample(items: Iterable[Any], rng: random.Random, limit: int = TABLE_LIMIT) -> list[Any]:
    pool = list(itertools.islice(items, limit * 20))
    return pool if len(pool) <= limit else rng.sample(pool, limit)


def _max_over(rules, declarations, responses: Iterable[dict[str, Any]]) -> float:
    return max((_qti_score(rules, declarations, r) for r in responses), default=0.0)


# ------------------------------------------------------------------------ one reader per type


def _read_choice(tree, body, interactions, declarations, rules, media) -> ItemRecord:
    el = interactions[0]
    decl = _decl(declarations, el)
    options = _options(el, "simple-choice", media)
    ids = [o["id"] for o in options]
    rid = decl.identifier
    multiple = decl.cardinality in ("multiple", "ordered")
    if decl.correct:
        correct = [v.strip() for v in decl.correct]
    else:  # a mapping and no correct response: the keyed options are those that earn most
        scores = {i: _qti_score(rules, declarations,
                                {rid: [i] if multiple else i}) for i in ids}
        best = max(scores.values(), default=0)
        correct = [i for i, s in scores.items() if s > 0 and (multiple or s == best)]
    shuffle = el.get("shuffle", "false") == "true"
    interaction: dict[str, Any] = {"options": options}
    if not shuffle:
        interaction["fixed_order"] = True
    max_choices = int(el.get("max-choices", "1"))
    if not multiple or (len(correct) == 1 and max_choices == 1):
        if len(correct) != 1:
            raise ItemRefused(f"a single-choice interaction keyed to {len(correct)} options")
        kind = "true_false" if sorted(ids) == ["false", "true"] else "single_choice"
        to_qti = (lambda v: {rid: None if v is None else ([v] if multiple else v)})
        if kind == "true_false":
            interaction = {}
        rec = ItemRecord(code="", item_type=kind, stem="", interaction=interaction,
                         key={"correct": correct[0] if kind == "true_false" else correct[:1]})
        table = [(v, to_qti(v)) for v in [*ids, None]]
        rec.max_score = _max_over(rules, declarations, (t[1] for t in table))
        rec.stem = _stem(body, [el])
        methods = [{}]
    else:
        if max_choices and max_choices != len(ids):
            interaction["select"] = max_choices
        rec = ItemRecord(code="", item_type="multiple_response", stem="",
                         interaction=interaction, key={"correct": sorted(correct)})
        subsets = itertools.chain.from_iterable(
            itertools.combinations(ids, k) for k in range(len(ids) + 1))
        if max_choices:
            subsets = (s for s in subsets if len(s) <= max_choices)
        picks = _sample(subsets, random.Random(7))
        table = [(sorted(s) or None, {rid: list(s) or None}) for s in picks]
        table.append((sorted(correct), {rid: list(correct)}))
        rec.max_score = _max_over(rules, declarations, (t[1] for t in table))
        rec.stem = _stem(body, [el])
        methods = [{}, {"method": "partial"}]
        table_map: dict[str, float] = {}
        for k, v, _case in decl.entries:
            if k.strip() in ids:
                table_map.setdefault(k.strip(), v)  # the first entry for a key counts, as QTI
        methods += _mapped_proposal(decl, table_map)
    if rec.max_score <= 0:
        raise ItemRefused("no response earns any points under its response processing")
    return _choose_scoring(rec, methods, table, rules, declarations)


def _read_text_entry(tree, body, interactions, declarations, rules, media) -> ItemRecord:
    el = interactions[0]
    decl = _decl(declarations, el)
    rid = decl.identifier
    holder = el.getparent()
    unit_el = holder.find("span[@class='unit']") if holder is not None else None
    if decl.base_type in ("float", "integer"):
        return _read_numeric(tree, body, el, decl, rules, declarations, unit_el)
    if decl.base_type != "string":
        raise ItemRefused(f"a text entry of base type {decl.base_type}")
    answers: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()

    def add(value: str, match: str) -> None:
        if (value, match) not in seen and value.strip():
            seen.add((value, match))
            answers.append({"value": value, "match": match})

    for key, _v, case in decl.entries:
        add(key, "exact" if case else "case_insensitive")
    for value in decl.correct:
        add(value, "exact")
    patterns = []
    for test in rules.iter("pattern-match", "string-match"):
        if test.tag == "pattern-match":
            patterns.append(test.get("pattern", ""))
            add(test.get("pattern", ""), "pattern")
        else:
            base = test.find("base-value")
            if base is not None:
                add(base.text or "", "exact" if test.get("case-sensitive", "true") != "false"
                    else "case_insensitive")
    # credit from the package's own rule: what each literal answer earns, over the best
    literal = [a for a in answers if a["match"] != "pattern"]
    earned = {a["value"]: _qti_score(rules, declarations, {rid: a["value"]}) for a in literal}
    pattern_points = _pattern_points(rules)
    best = max([*earned.values(), *pattern_points.values(), 0.0])
    if best <= 0:
        raise ItemRefused("no answer earns any points under its response processing")
    kept = []
    for a in answers:
        points = pattern_points.get(a["value"], 0.0) if a["match"] == "pattern" \
            else earned[a["value"]]
        if points > 0:
            credit = points / best
            kept.append({**a, **({"credit": round(credit, 6)} if credit < 1 else {})})
    interaction: dict[str, Any] = {}
    if el.get("expected-length"):
        interaction["expected_length"] = min(int(el.get("expected-length")), 200)
    rec = ItemRecord(code="", item_type="text_entry", stem="", interaction=interaction,
                     key={"answers": kept}, max_score=best)
    probes = [a["value"] for a in literal]
    probes += [v.upper() for v in probes] + [v.lower() for v in probes]
    probes += ["zz-not-an-answer"]
    table = [(v, {rid: v}) for v in dict.fromkeys(probes)] + [(None, {rid: None})]
    rec.stem = _stem(body, [holder if _only_child(holder, el) else el])
    return _choose_scoring(rec, [{}], table, rules, declarations)


def _only_child(holder: etree._Element | None, el: etree._Element) -> bool:
    if holder is None or holder.tag not in ("p", "div"):
        return False
    others = [c for c in holder if c is not el and not (c.tag == "span" and
                                                         c.get("class") == "unit")]
    text = (holder.text or "") + (el.tail or "")
    return not others and not text.strip()


def _pattern_points(rules) -> dict[str, float]:
    """Points each pattern-match branch of an inline chain sets."""
    out = {}
    for branch in rules.iter("response-if", "response-else-if"):
        kids = [k for k in branch if isinstance(k.tag, str)]
        if kids and kids[0].tag == "pattern-match":
            for s in kids[1:]:
                if s.tag == "set-outcome-value" and s.get("identifier") == rp.OUTCOME:
                    base = s.find("base-value")
                    if base is not None:
                        out[kids[0].get("pattern", "")] = float(base.text or 0)
    return out


def _read_numeric(tree, body, el, decl, rules, declarations, unit_el) -> ItemRecord:
    rid = decl.identifier
    if not decl.correct:
        raise ItemRefused("a numeric entry with no correct response")
    value = float(decl.correct[0])
    eq = next(iter(rules.iter("equal")), None)
    scoring: dict[str, Any] = {}
    if eq is not None and eq.get("tolerance-mode", "exact") != "exact":
        tol = float((eq.get("tolerance") or "0").split()[0])
        if eq.get("tolerance-mode") == "relative":
            scoring = {"tolerance": round(tol / 100, 12), "tolerance_mode": "relative"}
        else:
            scoring = {"tolerance": tol}
    interaction: dict[str, Any] = {}
    holder = el.getparent()
    if unit_el is not None:
        interaction["unit"] = text_of(unit_el)
        unit_el.getparent().remove(unit_el)
    rec = ItemRecord(code="", item_type="numeric_entry", stem="", interaction=interaction,
                     key={"value": int(value) if value == int(value) else value},
                     scoring=scoring)
    tol = Decimal(str(scoring.get("tolerance", 0)))
    if scoring.get("tolerance_mode") == "relative":
        tol *= abs(Decimal(str(value)))
    target = Decimal(str(value))
    probes = [target, target + tol / 2, target - tol / 2, target + 2 * tol + 1,
              target - 2 * tol - 1]
    table = [(str(p), {rid: float(parse_number(str(p)))}) for p in probes]
    table.append((None, {rid: None}))
    rec.max_score = _max_over(rules, declarations, (t[1] for t in table))
    if rec.max_score <= 0:
        raise ItemRefused("the correct response earns no points under its response processing")
    rec.stem = _stem(body, [holder if _only_child(holder, el) else el])
    return _choose_scoring(rec, [scoring], table, rules, declarations)


def _read_order(tree, body, interactions, declarations, rules, media) -> ItemRecord:
    el = interactions[0]
    decl = _decl(declarations, el)
    rid = decl.identifier
    options = _options(el, "simple-choice", media)
    ids = [o["id"] for o in options]
    if sorted(decl.correct) != sorted(ids):
        raise ItemRefused("the ordering's correct response does not list every choice once")
    order = [v.strip() for v in decl.correct]
    if order == ids:  # the bank never shows the keyed order first
        options = options[1:] + options[:1]
    interaction: dict[str, Any] = {"options": options}
    rec = ItemRecord(code="", item_type="ordering", stem="", interaction=interaction,
                     key={"order": order})
    perms = _sample(itertools.permutations(ids), random.Random(7))
    table = [(list(p), {rid: list(p)}) for p in perms] + [(order, {rid: order})]
    rec.max_score = _qti_score(rules, declarations, {rid: order})
    if rec.max_score <= 0:
        raise ItemRefused("the correct order earns no points under its response processing")
    rec.stem = _stem(body, [el])
    methods = [{}, {"method": "pairwise"}, {"method": "position"}]
    return _choose_scoring(rec, methods, table, rules, declarations)


def _read_match(tree, body, interactions, declarations, rules, media) -> ItemRecord:
    el = interactions[0]
    decl = _decl(declarations, el)
    rid = decl.identifier
    sets = el.findall("simple-match-set")
    if len(sets) != 2:
        raise ItemRefused(f"a match interaction with {len(sets)} choice sets; two expected")
    sources = _options(sets[0], "simple-associable-choice", media)
    targets = [{"id": c.get("identifier", ""), "text": text_of(c)}  # shown in a list box
               for c in sets[1].findall("simple-associable-choice")]
    pairs: dict[str, str] = {}
    for value in decl.correct:
        parts = value.split()
        if len(parts) != 2:
            raise ItemRefused(f"a match correct response {value!r} is not a pair")
        s, t = parts
        if s in pairs:
            raise ItemRefused(f"source {s} is keyed to two targets; a Microcred matching "
                              "item keys one target per source")
        pairs[s] = t
    reuse = any(c.get("match-max", "1") != "1" for c in sets[1].findall(
        "simple-associable-choice"))
    interaction: dict[str, Any] = {"sources": sources, "targets": targets}
    if reuse:
        interaction["reuse_targets"] = True
    if el.get("shuffle", "false") != "true":
        interaction["fixed_order"] = True
    rec = ItemRecord(code="", item_type="matching", stem="", interaction=interaction,
                     key={"pairs": pairs})
    tids = [t["id"] for t in targets]
    table: list[tuple[Any, dict[str, Any]]] = [
        (dict(pairs), {rid: [(s, t) for s, t in pairs.items()]}), (None, {rid: None})]
    for s in pairs:
        for t in tids:
            changed = {**pairs, s: t}
            if not reuse and len(set(changed.values())) != len(changed):
                continue
            table.append((changed, {rid: list(changed.items())}))
        partial = {k: v for k, v in pairs.items() if k != s}
        table.append((partial or None, {rid: list(partial.items()) or None}))
    rec.max_score = _qti_score(rules, declarations, {rid: list(pairs.items())})
    if rec.max_score <= 0:
        raise ItemRefused("the correct matches earn no points under its response processing")
    rec.stem = _stem(body, [el])
    sids = {s["id"] for s in sources}
    pair_map: dict[str, dict[str, float]] = {}
    for k, v, _case in decl.entries:
        parts = k.split()
        if len(parts) == 2 and parts[0] in sids and parts[1] in tids:
            pair_map.setdefault(parts[0], {}).setdefault(parts[1], v)  # the first entry counts
    methods = [{}, {"method": "partial"}, *_mapped_proposal(decl, pair_map)]
    return _choose_scoring(rec, methods, table, rules, declarations)


def _mapped_proposal(decl: rp.Declaration, table: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``mapped`` scoring (QTI's mapResponse) read from the response's mapping, if it has
    entries for this item's options or pairs."""
    if not decl.has_mapping or not table:
        return []
    scoring: dict[str, Any] = {"method": "mapped", "map": table, "default": decl.default}
    if decl.lower is not None:
        scoring["lower"] = decl.lower
    if decl.upper is not None:
        scoring["upper"] = decl.upper
    return [scoring]


def _read_inline(tree, body, interactions, declarations, rules, media) -> ItemRecord:
    gaps, key = [], {}
    block = _sentence_block(body, interactions)
    for n, el in enumerate(interactions, start=1):
        decl = _decl(declarations, el)
        gid = decl.identifier if GAP_MARK.fullmatch(f"[[{decl.identifier}]]") else f"g{n}"
        options = [{"id": c.get("identifier", ""), "text": text_of(c)}
                   for c in el.findall("inline-choice")]
        gaps.append({"id": gid, "options": options, "_rid": decl.identifier})
        if len(decl.correct) != 1:
            raise ItemRefused(f"inline choice {decl.identifier} has no single correct choice")
        key[gid] = decl.correct[0].strip()
        marker = etree.Element("span")
        marker.text = f"[[{gid}]]"
        marker.tail = el.tail
        el.getparent().replace(el, marker)
    for marker in list(block.iter("span")):
        if GAP_MARK.fullmatch(marker.text or "") and len(marker) == 0 and not marker.attrib:
            _unwrap_text(marker)
    ours = block.tag == "div" and "microcred-sentence" in (block.get("class") or "")
    sentence = inner_html(block) if ours else _html_of(block)
    block_parent = block.getparent()
    if block_parent is not None:
        _remove(block)
    rid_of = {g["id"]: g.pop("_rid") for g in gaps}
    interaction: dict[str, Any] = {"sentence": sentence, "gaps": gaps}
    if any(el.get("shuffle", "false") != "true" for el in interactions):
        interaction["fixed_order"] = True
    rec = ItemRecord(code="", item_type="inline_choice", stem="", interaction=interaction,
                     key={"correct": key})

    def qti(value: dict[str, str] | None) -> dict[str, Any]:
        return {rid_of[g]: (value or {}).get(g) for g in rid_of}

    combos = _sample(itertools.product(*[[o["id"] for o in g["options"]] for g in gaps]),
                     random.Random(7))
    table = [(dict(zip(rid_of, c)), qti(dict(zip(rid_of, c)))) for c in combos]
    table += [(dict(key), qti(key)), (None, qti(None))]
    rec.max_score = _qti_score(rules, declarations, qti(key))
    if rec.max_score <= 0:
        raise ItemRefused("the correct choices earn no points under its response processing")
    rec.stem = _stem(body, [])
    return _choose_scoring(rec, [{}, {"method": "partial"}], table, rules, declarations)


def _unwrap_text(span: etree._Element) -> None:
    text = (span.text or "") + (span.tail or "")
    prev, parent = span.getprevious(), span.getparent()
    if prev is not None:
        prev.tail = (prev.tail or "") + text
    else:
        parent.text = (parent.text or "") + text
    parent.remove(span)


def _html_of(el: etree._Element) -> str:
    import lxml.html

    copy = etree.fromstring(etree.tostring(el, with_tail=False))
    copy.attrib.pop("data-qti-name", None)
    return lxml.html.tostring(copy, encoding="unicode", with_tail=False)


def _sentence_block(body: etree._Element, interactions: list[etree._Element]) -> etree._Element:
    """The child of the body holding every gap (the sentence)."""
    tops = []
    for el in interactions:
        node = el
        while node.getparent() is not body:
            node = node.getparent()
        if node not in tops:
            tops.append(node)
    if len(tops) == 1:
        return tops[0]
    box = etree.Element("div")
    first = body.index(tops[0])
    for node in list(body)[first:body.index(tops[-1]) + 1]:
        box.append(node)
    body.insert(first, box)
    return box


def _image_of(el: etree._Element, media: MediaResolver) -> dict[str, Any]:
    img = el.find("img")
    if img is None:
        img = el.find("object")
    if img is None:
        raise ItemRefused(f"{el.get('data-qti-name', el.tag)} has no image")
    src = img.get("src") or img.get("data") or ""
    alt = img.get("alt") if img.tag == "img" else text_of(img)
    try:
        width, height = int(float(img.get("width", "0"))), int(float(img.get("height", "0")))
    except ValueError:
        width = height = 0
    if not width or not height:
        raise ItemRefused("the hotspot image states no width and height in pixels")
    return {"src": media(src), "alt": alt or "", "width": width, "height": height}


def _read_select_point(tree, body, interactions, declarations, rules, media) -> ItemRecord:
    el = interactions[0]
    decl = _decl(declarations, el)
    rid = decl.identifier
    if el.get("max-choices", "1") != "1":
        raise ItemRefused("a select-point interaction asking for several points")
    image = _image_of(el, media)
    regions = [{"id": f"r{n}", "shape": shape, "coords": coords}
               for n, (shape, coords, value) in enumerate(decl.areas, start=1) if value > 0]
    if not regions:
        raise ItemRefused("no area of the image earns points")
    return _point_item(body, el, image, regions, rules, declarations,
                       lambda p: {rid: None if p is None else (p["x"], p["y"])})


def _read_hotspot(tree, body, interactions, declarations, rules, media) -> ItemRecord:
    el = interactions[0]
    decl = _decl(declarations, el)
    rid = decl.identifier
    if decl.cardinality != "single" or el.get("max-choices", "1") != "1":
        raise ItemRefused("a hotspot interaction with several hotspots to choose; Microcred's "
                          "hotspot takes one point")
    image = _image_of(el, media)
    spots = []
    for c in el.findall("hotspot-choice"):
        shape = c.get("shape", "")
        if shape not in SHAPES:
            raise ItemRefused(f"a hotspot of shape {shape!r}")
        coords = [float(v) for v in re.split(r"[,\s]+", c.get("coords", "").strip()) if v]
        spots.append({"id": c.get("identifier", ""), "shape": SHAPES[shape], "coords": coords})

    def qti(p: dict[str, float] | None) -> dict[str, Any]:
        if p is None:
            return {rid: None}
        hit = next((s["id"] for s in spots if point_in_region(p["x"], p["y"], s)), None)
        return {rid: hit}

    correct = {v.strip() for v in decl.correct}
    regions = [s for s in spots if s["id"] in correct]
    if not regions:
        scores = {s["id"]: _qti_score(rules, declarations, {rid: s["id"]}) for s in spots}
        regions = [s for s in spots if scores[s["id"]] > 0]
    if not regions:
        raise ItemRefused("no hotspot earns points")
    return _point_item(body, el, image, regions, rules, declarations, qti)


def _point_item(body, el, image, regions, rules, declarations, qti) -> ItemRecord:
    from itembank.qti.writing import _inside

    rec = ItemRecord(code="", item_type="hotspot", stem="", interaction={"image": image},
                     key={"regions": regions})
    rng = random.Random(7)
    probes = []
    for r in regions:
        x, y = (float(v) for v in _inside(r).split())
        probes.append({"x": x, "y": y})
    probes += [{"x": round(rng.uniform(0, image["width"]), 2),
                "y": round(rng.uniform(0, image["height"]), 2)} for _ in range(60)]
    table = [(p, qti(p)) for p in probes] + [(None, qti(None))]
    rec.max_score = _max_over(rules, declarations, (t[1] for t in table))
    if rec.max_score <= 0:
        raise ItemRefused("no point on the image earns points")
    rec.stem = _stem(body, [el])
    return _choose_scoring(rec, [{}], table, rules, declarations)


READERS = {
    "choice-interaction": _read_choice, "text-entry-interaction": _read_text_entry,
    "order-interaction": _read_order, "match-interaction": _read_match,
    "inline-choice-interaction": _read_inline, "select-point-interaction": _read_select_point,
    "hotspot-interaction": _read_hotspot,
}
