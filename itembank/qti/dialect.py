"""The two spellings of QTI: 3.0 (``qti-choice-interaction``, ``response-identifier``) and 2.x
(``choiceInteraction``, ``responseIdentifier``).

QTI 3.0 renamed every element of 2.x to kebab case with a ``qti-`` prefix, and every attribute
to kebab case (1EdTech, QTI 3.0 ASI Information Model, 2022, "Changes from QTI 2.2"). The
reader works on one canonical spelling, the 3.0 name without its prefix (``choice-interaction``,
``max-choices``): :func:`canonical_tree` turns a document of either version into it, and the
writer builds that spelling and :func:`render` spells it for the version asked for. HTML and
MathML inside the item body are the same in both and pass through unchanged.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from lxml import etree

MATHML = "http://www.w3.org/1998/Math/MathML"
XML_NS = "http://www.w3.org/XML/1998/namespace"


@dataclass(frozen=True)
class Dialect:
    name: str
    label: str
    namespace: str
    item_resource: str
    stimulus_resource: str
    cp_namespace: str
    metadata_namespace: str
    schema_location: str
    template_base: str

    @property
    def is_v3(self) -> bool:
        return self.name == "qti3"


QTI3 = Dialect(
    "qti3", "QTI 3.0", "http://www.imsglobal.org/xsd/imsqtiasi_v3p0", "imsqti_item_xmlv3p0",
    "imsqti_stimulus_xmlv3p0", "http://www.imsglobal.org/xsd/qti/qtiv3p0/imscp_v1p1",
    "http://www.imsglobal.org/xsd/imsqti_metadata_v3p0",
    "http://www.imsglobal.org/xsd/imsqtiasi_v3p0 "
    "https://purl.imsglobal.org/spec/qti/v3p0/schema/xsd/imsqti_asiv3p0_v1p0.xsd",
    "https://purl.imsglobal.org/spec/qti/v3p0/rptemplates/")
QTI21 = Dialect(
    "qti21", "QTI 2.1", "http://www.imsglobal.org/xsd/imsqti_v2p1", "imsqti_item_xmlv2p1",
    "imsqti_stimulus_xmlv2p1", "http://www.imsglobal.org/xsd/imscp_v1p1",
    "http://www.imsglobal.org/xsd/imsqti_metadata_v2p1",
    "http://www.imsglobal.org/xsd/imsqti_v2p1 http://www.imsglobal.org/xsd/qti/qtiv2p1/"
    "imsqti_v2p1.xsd",
    "http://www.imsglobal.org/question/qti_v2p1/rptemplates/")
DIALECTS = {d.name: d for d in (QTI3, QTI21)}
#: every QTI namespace an item may come in (2.0, 2.1, 2.2, 3.0)
QTI_NAMESPACES = {
    "http://www.imsglobal.org/xsd/imsqti_v2p0": "QTI 2.0",
    "http://www.imsglobal.org/xsd/imsqti_v2p1": "QTI 2.1",
    "http://www.imsglobal.org/xsd/imsqti_v2p2": "QTI 2.2",
    "http://www.imsglobal.org/xsd/imsqtiasi_v3p0": "QTI 3.0",
}

#: the QTI elements the writer produces (canonical names); anything else it writes is HTML
QTI_ELEMENTS = frozenset(["assessment-item", "response-declaration", "outcome-declaration", "correct-response", "value", "default-value", "mapping", "map-entry", "area-mapping", "area-map-entry", "item-body", "prompt", "choice-interaction", "simple-choice", "order-interaction", "match-interaction", "simple-match-set", "simple-associable-choice", "inline-choice-interaction", "inline-choice", "text-entry-interaction", "select-point-interaction", "hotspot-interaction", "hotspot-choice", "response-processing", "response-condition", "response-if", "response-else-if", "response-else", "set-outcome-value", "match", "is-null", "map-response", "map-response-point", "variable", "correct", "base-value", "sum", "and", "equal", "string-match", "pattern-match", "assessment-stimulus", "assessment-stimulus-ref", "stimulus-body", "usage-data", "ordinary-statistic", "target-object"])

_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")


def kebab(name: str) -> str:
    """``responseIdentifier`` -> ``response-identifier``; ``qti-choice-interaction`` ->
    ``choice-interaction``."""
    name = name.removeprefix("qti-")
    return _CAMEL.sub(r"-\1", name).lower()


def camel(name: str) -> str:
    """``response-identifier`` -> ``responseIdentifier``."""
    head, *rest = name.split("-")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def spelled(canonical: str, dialect: Dialect) -> str:
    """How ``canonical`` (an interaction's name, say) is written in ``dialect``."""
    return f"qti-{canonical}" if dialect.is_v3 else camel(canonical)


def version_of(root: etree._Element) -> str:
    """The QTI version a document's namespace says ("QTI 2.2"), or "" for none known."""
    return QTI_NAMESPACES.get(etree.QName(root).namespace or "", "")


def canonical_tree(root: etree._Element) -> etree._Element:
    """A copy of ``root`` with QTI elements renamed to their canonical names (no namespace)
    and their attributes to kebab case. Each renamed element keeps its original name in
    ``data-qti-name`` so a report can name what the package said."""
    copy = etree.fromstring(etree.tostring(root))
    for el in copy.iter():
        if not isinstance(el.tag, str):
            continue
        q = etree.QName(el)
        if q.namespace == MATHML:
            el.tag = f"{{{MATHML}}}{q.localname}"
            continue
        original = q.localname
        el.tag = kebab(original)
        for name in list(el.attrib):
            aq = etree.QName(name)
            if aq.namespace == XML_NS or aq.namespace:
                continue
            new = name if name.startswith(("data-", "aria-")) else kebab(name)
            if new != name:
                el.attrib[new] = el.attrib.pop(name)
        if el.tag != original or el.tag in QTI_ELEMENTS:
            el.attrib["data-qti-name"] = original
    etree.cleanup_namespaces(copy)
    return copy


def render(root: etree._Element, dialect: Dialect) -> etree._Element:
    """The canonical tree ``root`` (as the writer built it) spelled for ``dialect``, in its
    namespace."""
    ns = dialect.namespace
    out = etree.fromstring(etree.tostring(root))
    for el in out.iter():
        if not isinstance(el.tag, str):
            continue
        q = etree.QName(el)
        if q.namespace == MATHML:
            continue
        name = q.localname
        if name in QTI_ELEMENTS:
            el.tag = f"{{{ns}}}{spelled(name, dialect)}"
            if not dialect.is_v3:
                for attr in list(el.attrib):
                    if etree.QName(attr).namespace or attr.startswith(("data-", "aria-")):
                        continue
                    new = camel(attr)
                    if new != attr:
                        el.attrib[new] = el.attrib.pop(attr)
        else:
            el.tag = f"{{{ns}}}{name}"
    final = etree.Element(out.tag, nsmap={None: ns,
                                          "xsi": "http://www.w3.org/2001/XMLSchema-instance"})
    final.attrib.update(out.attrib)
    final.set("{http://www.w3.org/2001/XMLSchema-instance}schemaLocation",
              dialect.schema_location)
    final.text = out.text
    for child in out:
        final.append(child)
    etree.cleanup_namespaces(final, top_nsmap={"m": MATHML})
    return final
