"""Item content between the bank's HTML and QTI's XHTML.

The bank keeps sanitized HTML (``itembank.content``); QTI carries the same markup as XML
elements inside the item body, in the QTI namespace, with MathML in its own. Images and audio
the bank stores by hash (``/media/<sha256>``) travel as files in the package
(``media/<sha256>.<ext>``) and come back into the bank's media store on import.
"""
from __future__ import annotations

import re

import lxml.html
from lxml import etree

from itembank.qti.dialect import MATHML

MEDIA_SRC = re.compile(r"^/media/([0-9a-f]{64})$")
EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif",
              "image/webp": "webp", "audio/mpeg": "mp3", "audio/ogg": "ogg",
              "audio/wav": "wav", "audio/flac": "flac", "audio/mp4": "m4a",
              "audio/webm": "webm"}


def html_container(html: str) -> etree._Element:
    """A ``div`` (canonical, no namespace) holding ``html`` as XML nodes."""
    box = etree.Element("div")
    if not html or not html.strip():
        return box
    parsed = lxml.html.fragment_fromstring(html, create_parent="div")
    box.text = parsed.text
    for child in parsed:
        box.append(_as_xml(child))
    return box


def _as_xml(el: etree._Element, in_math: bool = False) -> etree._Element:
    if not isinstance(el.tag, str):  # a comment: dropped
        out = etree.Element("span")
        out.tail = el.tail
        return out
    name = el.tag.lower()
    in_math = in_math or name == "math"
    out = etree.Element(f"{{{MATHML}}}{name}" if in_math else name)
    for k, v in el.attrib.items():
        if ":" not in k:
            out.set(k, v)
    out.text = el.text
    out.tail = el.tail
    for child in el:
        if isinstance(child.tag, str):
            out.append(_as_xml(child, in_math))
        elif child.tail:
            _append_text(out, child.tail)
    return out


def _append_text(parent: etree._Element, text: str) -> None:
    if len(parent):
        parent[-1].tail = (parent[-1].tail or "") + text
    else:
        parent.text = (parent.text or "") + text


def append_html(parent: etree._Element, html: str) -> None:
    """Append ``html``'s nodes to ``parent`` (after what it has)."""
    box = html_container(html)
    if box.text:
        _append_text(parent, box.text)
    for child in list(box):
        parent.append(child)


def inner_html(el: etree._Element) -> str:
    """``el``'s content as HTML: namespaces dropped, QTI bookkeeping attributes removed."""
    copy = etree.fromstring(etree.tostring(el))
    for node in copy.iter():
        if not isinstance(node.tag, str):
            continue
        node.tag = etree.QName(node).localname
        node.attrib.pop("data-qti-name", None)
    etree.cleanup_namespaces(copy)
    parts = [_escape(copy.text or "")]
    for child in copy:
        if isinstance(child.tag, str):
            parts.append(lxml.html.tostring(child, encoding="unicode", with_tail=False))
        parts.append(_escape(child.tail or ""))
    return "".join(parts).strip()


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def text_of(el: etree._Element) -> str:
    return " ".join("".join(el.itertext()).split())


def media_in(root: etree._Element) -> set[str]:
    """The SHA-256s of bank media a canonical tree refers to."""
    found = set()
    for node in root.iter():
        if isinstance(node.tag, str):
            for attr in ("src", "data"):
                m = MEDIA_SRC.match(node.get(attr, ""))
                if m:
                    found.add(m.group(1))
    return found


def rewrite_sources(root: etree._Element, mapping: dict[str, str]) -> list[str]:
    """Replace each ``src``/``data`` found in ``mapping`` in place; the ones not found."""
    missing = []
    for node in root.iter():
        if not isinstance(node.tag, str):
            continue
        for attr in ("src", "data"):
            value = node.get(attr)
            if value is None:
                continue
            if value in mapping:
                node.set(attr, mapping[value])
            elif not MEDIA_SRC.match(value):
                missing.append(value)
    return missing
