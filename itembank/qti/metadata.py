"""An item's metadata in a content package: IEEE LOM (IEEE 1484.12.1-2002) and QTI's
``qtiMetadata`` in the manifest's resource, and item statistics as QTI usage data.

- blueprint domain and subdomain codes: ``classification`` (purpose ``discipline``), one
  ``taxonPath`` whose ``source`` is ``Microcred blueprint``, a ``taxon`` per level;
- cognitive level: ``classification`` (purpose ``educational objective``), ``taxonPath``
  source ``cognitive level``;
- author and reviewers: ``lifeCycle/contribute`` (roles ``author`` and ``validator``, the
  person as a vCard); lifecycle state and version: ``lifeCycle/status`` and
  ``lifeCycle/version``;
- keywords: ``general/keyword``; enemies: ``relation`` (kind ``enemy``, the other item's
  identifier, the reason as its description);
- what QTI cannot say (a Microcred scoring method QTI has no operator for, a text entry's
  maximum length, a reference): a ``microcred:item`` element holding JSON, Microcred's
  extension, ignored by other tools;
- statistics: ``usageData`` with one ``ordinaryStatistic`` per figure (``p``, ``rpb``,
  ``irt_a``, ``irt_b``, ``irt_c``; ``stdError``, ``caseCount``), each aimed at the item
  (``targetObject``) in the context of its version (``urn:microcred:item:CODE:version:N``).
"""
from __future__ import annotations

import json
import re
from typing import Any

from lxml import etree

from itembank.qti.content import text_of
from itembank.qti.dialect import Dialect
from microcred.inputs import is_whole

LOM = "http://ltsc.ieee.org/xsd/LOM"
MICROCRED = "https://microcred.org/xsd/qti-extension/v1"
CATALOG = "Microcred"
BLUEPRINT = "Microcred blueprint"
COGNITIVE = "cognitive level"
#: the statistics usage data carries, by their names there
STATISTICS = ("p", "rpb", "irt_a", "irt_b", "irt_c")


def _m(parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
    el = etree.SubElement(parent, f"{{{LOM}}}{name}")
    if text is not None:
        el.text = text
    return el


def _string(parent: etree._Element, name: str, text: str) -> etree._Element:
    el = _m(parent, name)
    s = _m(el, "string", text)
    s.set("{http://www.w3.org/XML/1998/namespace}lang", "en")
    return el


def _vocab(parent: etree._Element, name: str, source: str, value: str) -> None:
    el = _m(parent, name)
    _m(el, "source", source)
    _m(el, "value", value)


def _vcard(person: dict[str, str]) -> str:
    lines = ["BEGIN:VCARD", "VERSION:3.0", f"FN:{person.get('name') or person.get('email')}"]
    if person.get("email"):
        lines.append(f"EMAIL:{person['email']}")
    return "\n".join([*lines, "END:VCARD"])


def _person(vcard: str) -> dict[str, str]:
    fields = dict(re.findall(r"^\s*(FN|EMAIL)[^:]*:(.*?)\s*$", vcard, re.MULTILINE))
    if not fields:  # some tools write a vCard on one line
        fields = dict(re.findall(r"(FN|EMAIL)[^:]*:(.*?)(?=\s+[A-Z]+[:;]|$)", vcard))
    out = {"name": fields.get("FN", "").strip()}
    if fields.get("EMAIL"):
        out["email"] = fields["EMAIL"].strip()
    return out


def write_metadata(parent: etree._Element, code: str, title: str, md: dict[str, Any],
                   extension: dict[str, Any], interaction_type: str, dialect: Dialect,
                   tool_version: str = "1") -> None:
    """Append the LOM, qtiMetadata and extension of one item to ``parent`` (the resource's
    ``metadata`` element)."""
    lom = etree.SubElement(parent, f"{{{LOM}}}lom", nsmap={"imsmd": LOM})
    general = _m(lom, "general")
    ident = _m(general, "identifier")
    _m(ident, "catalog", CATALOG)
    _m(ident, "entry", code)
    _string(general, "title", title or code)
    for word in md.get("keywords") or ():
        _string(general, "keyword", word)
    life = _m(lom, "lifeCycle")
    if md.get("version") is not None:
        _string(life, "version", str(md["version"]))
    if md.get("status"):
        _vocab(life, "status", CATALOG, md["status"])
    for role, people in (("author", [md["author"]] if md.get("author") else []),
                         ("validator", md.get("reviewers") or [])):
        for person in people:
            contribute = _m(life, "contribute")
            _vocab(contribute, "role", "LOMv1.0", role)
            _m(contribute, "entity", _vcard(person))
    codes = [c for c in (md.get("domain_code"), md.get("subdomain_code")) if c]
    for purpose, source, taxa in (("discipline", BLUEPRINT, codes),
                                  ("educational objective", COGNITIVE,
                                   [md["cognitive_level"]] if md.get("cognitive_level") else [])):
        if not taxa:
            continue
        cls = _m(lom, "classification")
        _vocab(cls, "purpose", "LOMv1.0", purpose)
        path = _m(cls, "taxonPath")
        _string(path, "source", source)
        for taxon_id in taxa:
            taxon = _m(path, "taxon")
            _m(taxon, "id", taxon_id)
            _string(taxon, "entry", taxon_id)
    for enemy in md.get("enemies") or ():
        rel = _m(lom, "relation")
        _vocab(rel, "kind", CATALOG, "enemy")
        res = _m(rel, "resource")
        rid = _m(res, "identifier")
        _m(rid, "catalog", CATALOG)
        _m(rid, "entry", enemy["code"])
        if enemy.get("reason"):
            _string(res, "description", enemy["reason"])
    qti = etree.SubElement(parent, f"{{{dialect.metadata_namespace}}}qtiMetadata",
                           nsmap={"imsqti": dialect.metadata_namespace})
    for name, value in (("itemTemplate", "false"), ("timeDependent", "false"),
                        ("composite", "false"), ("interactionType", interaction_type),
                        ("feedbackType", "none"), ("solutionAvailable", "false"),
                        ("toolName", "Microcred"), ("toolVersion", tool_version),
                        ("toolVendor", "Microcred")):
        etree.SubElement(qti, f"{{{dialect.metadata_namespace}}}{name}").text = value
    ext = etree.SubElement(parent, f"{{{MICROCRED}}}item", nsmap={"microcred": MICROCRED})
    ext.text = json.dumps(extension, sort_keys=True)


def _all(el: etree._Element, path: str) -> list[etree._Element]:
    """Elements by local names (``a/b``), whatever the namespace (tools use LOM's, IMS MD
    1.2's or none)."""
    xp = "./" + "/".join(f"*[local-name()='{p}']" for p in path.split("/"))
    return el.xpath(xp)


def _text(el: etree._Element, path: str) -> str:
    found = _all(el, path)
    return text_of(found[0]) if found else ""


def read_metadata(metadata: etree._Element | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(metadata, Microcred extension) of one resource's ``metadata`` element."""
    md: dict[str, Any] = {}
    ext: dict[str, Any] = {}
    if metadata is None:
        return md, ext
    for lom in _all(metadata, "lom"):
        words = [text_of(k) for k in _all(lom, "general/keyword")]
        if words:
            md["keywords"] = [w for w in words if w]
        version = _text(lom, "lifeCycle/version")
        if is_whole(version):
            md["version"] = int(version)
        status = _text(lom, "lifeCycle/status/value")
        if status:
            md["status"] = status
        for contribute in _all(lom, "lifeCycle/contribute"):
            role = _text(contribute, "role/value").lower()
            person = _person("\n".join(e.text or "" for e in _all(contribute, "entity")))
            if role == "author" and "author" not in md:
                md["author"] = person
            elif role == "validator":
                md.setdefault("reviewers", []).append(person)
        for cls in _all(lom, "classification"):
            for path in _all(cls, "taxonPath"):
                source = _text(path, "source")
                taxa = [_text(t, "id") or _text(t, "entry") for t in _all(path, "taxon")]
                if source == BLUEPRINT and taxa:
                    md["domain_code"] = taxa[0]
                    if len(taxa) > 1:
                        md["subdomain_code"] = taxa[1]
                elif source == COGNITIVE and taxa:
                    md["cognitive_level"] = taxa[0]
        for rel in _all(lom, "relation"):
            if _text(rel, "kind/value") == "enemy":
                entry = _text(rel, "resource/identifier/entry")
                if entry:
                    md.setdefault("enemies", []).append(
                        {"code": entry, "reason": _text(rel, "resource/description")})
    for el in _all(metadata, "item"):
        if etree.QName(el).namespace == MICROCRED:
            try:
                ext = json.loads(el.text or "{}")
            except json.JSONDecodeError:
                ext = {}
    return md, ext


# ------------------------------------------------------------------ usage data


def usage_context(code: str, version: int | None) -> str:
    return f"urn:microcred:item:{code}:version:{version or 0}"


def usage_tree(statistics: list[tuple[str, dict[str, Any]]]) -> etree._Element:
    """A canonical ``usage-data`` tree: ``statistics`` is ``[(item code, statistic)]`` with a
    statistic ``{"name", "value", "std_error"?, "case_count"?, "version"?}``."""
    root = etree.Element("usage-data", glossary="https://microcred.org/qti/statistics")
    for code, stat in statistics:
        el = etree.SubElement(root, "ordinary-statistic", name=stat["name"],
                              context=usage_context(code, stat.get("version")))
        if stat.get("case_count") is not None:
            el.set("case-count", str(int(stat["case_count"])))
        if stat.get("std_error") is not None:
            el.set("std-error", repr(float(stat["std_error"])))
        etree.SubElement(el, "target-object", identifier=code)
        etree.SubElement(el, "value").text = repr(float(stat["value"]))
    return root


def read_usage(tree: etree._Element) -> dict[str, list[dict[str, Any]]]:
    """The statistics of a canonical ``usage-data`` tree, by item identifier."""
    out: dict[str, list[dict[str, Any]]] = {}
    for el in tree.iter("ordinary-statistic"):
        target = el.find("target-object")
        value = el.find("value")
        if target is None or value is None:
            continue
        try:
            stat: dict[str, Any] = {"name": el.get("name", ""), "value": float(value.text)}
            if el.get("std-error"):
                stat["std_error"] = float(el.get("std-error"))
            if el.get("case-count"):
                stat["case_count"] = int(el.get("case-count"))
        except (TypeError, ValueError):
            continue
        m = re.search(r":version:(\d+)$", el.get("context", ""))
        if m:
            stat["version"] = int(m.group(1))
        out.setdefault(target.get("identifier", ""), []).append(stat)
    return out
