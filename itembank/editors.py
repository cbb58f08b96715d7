"""The per-type fields of the item editor: turning the posted form into an item's
``(interaction, key, scoring)``, and an item back into the form's values.

Each type's fields are rendered by ``templates/items/editors/<type>.html`` (included by the item
editor page with ``values`` and ``errors``), and read here by :func:`fields_to_item`, which
returns every problem at once as :class:`EditorErrors` (``{form field: message}``), so the page
can show each beside its field. The item type's own check (``validate_definition``) runs last;
its error's field path (``key.answers[1].value``) is mapped back to the form field.

Form fields, by type (rows are numbered from 0; blank rows are skipped):

- choices: ``option-N`` (HTML), ``correct`` (the row numbers keyed; one for single choice),
  ``select`` (multiple response: how many to select, optional), ``method``, ``fixed_order``;
  with method ``mapped`` (multiple response), ``option-N-points`` (blank: no entry),
  ``map_default``, ``map_lower``, ``map_upper``;
- true/false: ``correct`` (``true`` or ``false``);
- text entry: ``answer-N``, ``answer-N-match``, ``answer-N-credit``, ``max_length``,
  ``expected_length``;
- numeric entry: ``value``, ``tolerance``, ``tolerance_mode``, ``unit``;
- ordering: ``step-N`` in the right order (candidates first see them rotated by one), ``method``;
- matching: ``source-N`` with ``source-N-match`` (the target's row number), ``target-N``
  (plain text), ``reuse_targets``, ``method``; with method ``mapped``, ``pair_points`` (one
  pair per line: item row, choice row, points, rows numbered from 1) and ``map_default``,
  ``map_lower``, ``map_upper``;
- inline choice: ``sentence`` with gap marks ``[[1]]``, ``[[2]]``...; ``gap-1`` ... one choice
  per line, the right one starting with ``*``; ``method``;
- hotspot: ``image_src``, ``image_alt``, ``image_width``, ``image_height`` (set by the upload),
  ``regions``: one per line, ``rect left top right bottom``, ``circle x y radius`` or
  ``polygon x1 y1 x2 y2 x3 y3 ...``.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from itembank.types import GAP_MARK, ItemDefinitionError, item_type
from microcred.inputs import is_whole

MAX_ROWS = 12
LETTERS = "ABCDEFGHIJKL"


class EditorErrors(ItemDefinitionError):
    """The form's problems, ``errors``: form field -> message (``_item`` for the whole item)."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()), errors=errors)
        self.errors = errors


class _Form:
    """Reads a posted form (a ``MultiDict`` or a plain mapping) and collects problems."""

    def __init__(self, form: Mapping[str, Any]) -> None:
        self.form = form
        self.errors: dict[str, str] = {}

    def text(self, name: str) -> str:
        value = self.form.get(name, "")
        return value.strip() if isinstance(value, str) else ""

    def all(self, name: str) -> list[str]:
        getlist = getattr(self.form, "getlist", None)
        values = getlist(name) if getlist else self.form.get(name, [])
        if isinstance(values, str):
            values = [values]
        return [v.strip() for v in values if isinstance(v, str) and v.strip()]

    def rows(self, prefix: str) -> list[tuple[int, str]]:
        return [(n, self.text(f"{prefix}-{n}")) for n in range(MAX_ROWS)
                if self.text(f"{prefix}-{n}")]

    def number(self, name: str, *, whole: bool = False, required: bool = False,
               minimum: float | None = None) -> float | int | None:
        raw = self.text(name)
        if not raw:
            if required:
                self.errors[name] = "required"
            return None
        try:
            value = float(raw.replace(",", ".")) if not whole else int(raw)
        except ValueError:
            self.errors[name] = "a whole number" if whole else "a number"
            return None
        if not math.isfinite(value) or (minimum is not None and value < minimum):
            self.errors[name] = f"a number of at least {minimum:g}" if minimum is not None \
                else "a finite number"
            return None
        return value

    def flag(self, name: str) -> bool:
        return self.text(name) in ("on", "true", "1", "yes")

    def method(self, default: str = "all_or_nothing") -> dict[str, Any]:
        method = self.text("method") or default
        return {} if method == "all_or_nothing" else {"method": method}

    def mapped(self, scoring: dict[str, Any], table: dict[str, Any]) -> dict[str, Any]:
        """``scoring`` with the ``mapped`` method's map, default and bounds added (QTI's
        mapResponse; see ``itembank.types.mapped_points``)."""
        if scoring.get("method") != "mapped":
            return scoring
        out: dict[str, Any] = {**scoring, "map": table,
                               "default": self.number("map_default") or 0}
        for bound in ("lower", "upper"):
            value = self.number(f"map_{bound}")
            if value is not None:
                out[bound] = value
        return out


def _choices(f: _Form, multiple: bool) -> tuple[dict, dict, dict]:
    rows = f.rows("option")
    ids = {n: LETTERS[i] for i, (n, _) in enumerate(rows)}
    interaction: dict[str, Any] = {"options": [{"id": ids[n], "text": t} for n, t in rows]}
    if len(rows) < 2:
        f.errors["option-0"] = "write at least two options"
    picked = f.all("correct")
    keyed = [ids[int(p)] for p in picked if is_whole(p) and int(p) in ids]
    if not keyed:
        f.errors["correct"] = "mark the right option" + ("s" if multiple else "")
    if multiple:
        select = f.number("select", whole=True, minimum=1)
        if select is not None:
            interaction["select"] = select
    if f.flag("fixed_order"):
        interaction["fixed_order"] = True
    if not multiple:
        return interaction, {"correct": keyed}, {}
    points = {ids[n]: f.number(f"option-{n}-points") for n, _ in rows}
    table = {k: v for k, v in points.items() if v is not None}
    return interaction, {"correct": keyed}, f.mapped(f.method(), table)


def _true_false(f: _Form) -> tuple[dict, dict, dict]:
    if f.text("correct") not in ("true", "false"):
        f.errors["correct"] = "choose whether the statement is true or false"
    return {}, {"correct": f.text("correct")}, {}


def _text_entry(f: _Form) -> tuple[dict, dict, dict]:
    answers = []
    for n, value in f.rows("answer"):
        answer: dict[str, Any] = {"value": value, "match": f.text(f"answer-{n}-match") or "exact"}
        credit = f.number(f"answer-{n}-credit", minimum=0)
        if credit is not None and credit != 1:
            answer["credit"] = credit
        answers.append(answer)
    if not answers:
        f.errors["answer-0"] = "write at least one accepted answer"
    interaction: dict[str, Any] = {}
    for name in ("max_length", "expected_length"):
        value = f.number(name, whole=True, minimum=1)
        if value is not None:
            interaction[name] = value
    return interaction, {"answers": answers}, {}


def _numeric_entry(f: _Form) -> tuple[dict, dict, dict]:
    value = f.number("value", required=True)
    tolerance = f.number("tolerance", minimum=0) or 0
    scoring: dict[str, Any] = {"tolerance": tolerance}
    if f.text("tolerance_mode") == "relative":
        scoring["tolerance_mode"] = "relative"
    interaction = {"unit": f.text("unit")} if f.text("unit") else {}
    return interaction, {"value": value}, scoring


def _ordering(f: _Form) -> tuple[dict, dict, dict]:
    rows = f.rows("step")
    if len(rows) < 2:
        f.errors["step-0"] = "write at least two steps, in the right order"
    steps = [{"id": LETTERS[i], "text": t} for i, (_, t) in enumerate(rows)]
    shown = steps[1:] + steps[:1]  # rotated by one: no step starts in its place
    return {"options": shown}, {"order": [s["id"] for s in steps]}, f.method()


def _matching(f: _Form) -> tuple[dict, dict, dict]:
    targets = f.rows("target")
    target_ids = {n: f"t{i + 1}" for i, (n, _) in enumerate(targets)}
    sources, pairs = [], {}
    for i, (n, text) in enumerate(f.rows("source")):
        sid = f"s{i + 1}"
        sources.append({"id": sid, "text": text})
        match = f.text(f"source-{n}-match")
        if not is_whole(match) or int(match) not in target_ids:
            f.errors[f"source-{n}-match"] = "choose its match"
        else:
            pairs[sid] = target_ids[int(match)]
    if not sources:
        f.errors["source-0"] = "write at least two items to match"
    if len(targets) < 2:
        f.errors["target-0"] = "write at least two choices"
    interaction: dict[str, Any] = {"sources": sources,
                                   "targets": [{"id": target_ids[n], "text": t}
                                               for n, t in targets]}
    if f.flag("reuse_targets"):
        interaction["reuse_targets"] = True
    source_ids = {n: f"s{i + 1}" for i, (n, _) in enumerate(f.rows("source"))}
    table: dict[str, dict[str, float]] = {}
    for i, line in enumerate(ln.strip() for ln in f.text("pair_points").splitlines()):
        if not line:
            continue
        parts = line.replace(",", " ").split()
        try:
            s_row, t_row, points = int(parts[0]) - 1, int(parts[1]) - 1, float(parts[2])
            ok = len(parts) == 3 and math.isfinite(points)
        except (ValueError, IndexError):
            ok = False
        if not ok or s_row not in source_ids or t_row not in target_ids:
            f.errors["pair_points"] = (f"line {i + 1}: write the item's row, the choice's row "
                                       "and the points, e.g. 1 2 0.5")
            continue
        table.setdefault(source_ids[s_row], {})[target_ids[t_row]] = points
    return interaction, {"pairs": pairs}, f.mapped(f.method(), table)


def _inline_choice(f: _Form) -> tuple[dict, dict, dict]:
    sentence = f.text("sentence")
    marks = GAP_MARK.findall(sentence)
    if not marks:
        f.errors["sentence"] = "mark each gap in the sentence as [[1]], [[2]]..."
    gaps, correct = [], {}
    for gap in marks:
        lines = [ln.strip() for ln in f.text(f"gap-{gap}").splitlines() if ln.strip()]
        options, right = [], None
        for i, line in enumerate(lines):
            oid = f"{gap}-{LETTERS[i % len(LETTERS)]}{i // len(LETTERS) or ''}"
            if line.startswith("*"):
                line, right = line[1:].strip(), oid if right is None else right
            options.append({"id": oid, "text": line})
        if len(options) < 2:
            f.errors[f"gap-{gap}"] = "write at least two choices, one per line"
        elif right is None:
            f.errors[f"gap-{gap}"] = "start the right choice with *"
        gaps.append({"id": gap, "options": options})
        if right:
            correct[gap] = right
    return {"sentence": sentence, "gaps": gaps}, {"correct": correct}, f.method()


_REGION = re.compile(r"(rect|circle|polygon)\s+(.+)", re.IGNORECASE)


def _hotspot(f: _Form) -> tuple[dict, dict, dict]:
    image = {"src": f.text("image_src"), "alt": f.text("image_alt"),
             "width": f.number("image_width", whole=True, minimum=1),
             "height": f.number("image_height", whole=True, minimum=1)}
    if not image["src"]:
        f.errors["image_src"] = "upload the image"
    regions = []
    for i, line in enumerate(ln.strip() for ln in f.text("regions").splitlines()):
        if not line:
            continue
        m = _REGION.fullmatch(line)
        try:
            coords = [float(v) for v in re.split(r"[\s,]+", m.group(2).strip())] if m else None
        except ValueError:
            coords = None
        if m is None or coords is None:
            f.errors["regions"] = (f"line {i + 1}: write rect left top right bottom, circle x y "
                                   "radius, or polygon x1 y1 x2 y2 x3 y3 ...")
            continue
        regions.append({"id": f"r{len(regions) + 1}", "shape": m.group(1).lower(),
                        "coords": coords})
    if not regions and "regions" not in f.errors:
        f.errors["regions"] = "draw at least one region that earns the point"
    return {"image": image}, {"regions": regions}, {}


READERS: dict[str, Callable[[_Form], tuple[dict, dict, dict]]] = {
    "single_choice": lambda f: _choices(f, multiple=False),
    "multiple_response": lambda f: _choices(f, multiple=True),
    "true_false": _true_false,
    "text_entry": _text_entry,
    "numeric_entry": _numeric_entry,
    "ordering": _ordering,
    "matching": _matching,
    "inline_choice": _inline_choice,
    "hotspot": _hotspot,
}

#: where a definition error's field path points in the form (first match wins)
_FIELD_MAP = [
    (re.compile(r"interaction\.options\[(\d+)\]"), "option-{0}"),
    (re.compile(r"key\.answers\[(\d+)\]\.(match|credit)"), "answer-{0}-{1}"),
    (re.compile(r"key\.answers\[(\d+)\]"), "answer-{0}"),
    (re.compile(r"interaction\.sources\[(\d+)\]"), "source-{0}"),
    (re.compile(r"interaction\.targets\[(\d+)\]"), "target-{0}"),
    (re.compile(r"interaction\.image\.(\w+)"), "image_{0}"),
    (re.compile(r"key\.regions"), "regions"),
    (re.compile(r"interaction\.(sentence|select|max_length|expected_length|unit)"), "{0}"),
    (re.compile(r"interaction\.gaps\[(\d+)\]"), "sentence"),
    (re.compile(r"key\.(correct|order|pairs)"), "correct"),
    (re.compile(r"key\.value"), "value"),
    (re.compile(r"scoring\.(tolerance_mode|tolerance|method)"), "{0}"),
    (re.compile(r"scoring\.(default|lower|upper)"), "map_{0}"),
    (re.compile(r"scoring\.map"), "_mapped"),
]


def form_field(path: str | None) -> str:
    """The editor's form field for a definition error's field path (``_item`` if none)."""
    for pattern, name in _FIELD_MAP:
        m = pattern.match(path or "")
        if m:
            return name.format(*m.groups())
    return "_item"


def fields_to_item(type_name: str, form: Mapping[str, Any]) -> tuple[dict, dict, dict]:
    """``(interaction, key, scoring)`` from the editor's posted fields for ``type_name``, or
    :class:`EditorErrors` with every problem found, each under its form field."""
    reader = READERS.get(type_name)
    if reader is None:
        raise EditorErrors({"item_type": f"unknown item type {type_name!r}"})
    f = _Form(form)
    interaction, key, scoring = reader(f)
    if f.errors:
        raise EditorErrors(f.errors)
    try:
        item_type(type_name).validate_definition(interaction, key, scoring)
    except ItemDefinitionError as exc:
        field = form_field(exc.field)
        if field == "_mapped":  # a map entry: the option's points, or the pairs' box
            field = _map_field(type_name, interaction, exc.field or "")
        raise EditorErrors({field: exc.message}) from None
    return interaction, key, scoring


def _map_field(type_name: str, interaction: dict, path: str) -> str:
    if type_name == "matching":
        return "pair_points"
    ids = [o["id"] for o in interaction.get("options", [])]
    oid = path.split(".", 2)[2] if path.count(".") >= 2 else ""
    return f"option-{ids.index(oid)}-points" if oid in ids else "_item"


def item_to_fields(type_name: str, interaction: dict, key: dict,
                   scoring: dict) -> dict[str, Any]:
    """The editor's field values for a stored item (the inverse of :func:`fields_to_item`)."""
    values: dict[str, Any] = {"method": scoring.get("method", "all_or_nothing")}
    for bound in ("default", "lower", "upper"):
        if scoring.get(bound) is not None:
            values[f"map_{bound}"] = scoring[bound]
    if type_name in ("single_choice", "multiple_response"):
        ids = [o["id"] for o in interaction.get("options", [])]
        for n, opt in enumerate(interaction.get("options", [])):
            values[f"option-{n}"] = opt["text"]
        values["correct"] = [str(ids.index(k)) for k in key.get("correct", []) if k in ids]
        values["select"] = interaction.get("select") or ""
        values["fixed_order"] = bool(interaction.get("fixed_order"))
        for n, oid in enumerate(ids):
            if oid in scoring.get("map", {}):
                values[f"option-{n}-points"] = scoring["map"][oid]
    elif type_name == "true_false":
        values["correct"] = key.get("correct", "")
    elif type_name == "text_entry":
        for n, ans in enumerate(key.get("answers", [])):
            values[f"answer-{n}"] = ans["value"]
            values[f"answer-{n}-match"] = ans.get("match", "exact")
            values[f"answer-{n}-credit"] = ans.get("credit", 1)
        values["max_length"] = interaction.get("max_length", "")
        values["expected_length"] = interaction.get("expected_length", "")
    elif type_name == "numeric_entry":
        values.update(value=key.get("value", ""), tolerance=scoring.get("tolerance", 0),
                      tolerance_mode=scoring.get("tolerance_mode", "absolute"),
                      unit=interaction.get("unit", ""))
    elif type_name == "ordering":
        text = {o["id"]: o["text"] for o in interaction.get("options", [])}
        for n, oid in enumerate(key.get("order", [])):
            values[f"step-{n}"] = text.get(oid, "")
    elif type_name == "matching":
        targets = [t["id"] for t in interaction.get("targets", [])]
        for n, t in enumerate(interaction.get("targets", [])):
            values[f"target-{n}"] = t["text"]
        for n, s in enumerate(interaction.get("sources", [])):
            values[f"source-{n}"] = s["text"]
            match = key.get("pairs", {}).get(s["id"])
            values[f"source-{n}-match"] = str(targets.index(match)) if match in targets else ""
        values["reuse_targets"] = bool(interaction.get("reuse_targets"))
        rows = {s["id"]: n + 1 for n, s in enumerate(interaction.get("sources", []))}
        values["pair_points"] = "\n".join(
            f"{rows[sid]} {targets.index(tid) + 1} {pts:g}"
            for sid, by_target in scoring.get("map", {}).items() if sid in rows
            for tid, pts in by_target.items() if tid in targets)
    elif type_name == "inline_choice":
        values["sentence"] = interaction.get("sentence", "")
        for gap in interaction.get("gaps", []):
            right = key.get("correct", {}).get(gap["id"])
            values[f"gap-{gap['id']}"] = "\n".join(
                ("*" if o["id"] == right else "") + o["text"] for o in gap["options"])
    elif type_name == "hotspot":
        image = interaction.get("image", {})
        values.update({f"image_{k}": image.get(k, "") for k in ("src", "alt", "width", "height")})
        values["regions"] = "\n".join(
            f"{r['shape']} " + " ".join(f"{c:g}" for c in r["coords"])
            for r in key.get("regions", []))
    return values
