"""Baking: the credential embedded in the badge image, and extracted again (Open Badges 3.0
§5.3 "Baking").

- PNG (§5.3.1): one ``iTXt`` chunk with keyword ``openbadgecredential``, uncompressed, empty
  language tag and translated keyword, whose text is the credential JSON (or the compact JWT).
  It is inserted before ``IEND``; an existing one is replaced (an image carries one credential).
- SVG (§5.3.2): an ``openbadges:credential`` element, namespace
  ``https://purl.imsglobal.org/ob/v3p0``, the first child of the root ``svg``: the JSON in a
  CDATA section, or a JWT in its ``verify`` attribute.
"""
from __future__ import annotations

import struct
import zlib

from lxml import etree

from credentials.errors import MalformedInput

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_KEYWORD = b"openbadgecredential"
SVG_NS = "http://www.w3.org/2000/svg"
OB_NS = "https://purl.imsglobal.org/ob/v3p0"
MAX_IMAGE_BYTES = 8 * 1024 * 1024


# --- PNG ------------------------------------------------------------------------------------

def _chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    if not png.startswith(PNG_SIGNATURE):
        raise MalformedInput("not a PNG image: the file does not start with the PNG signature")
    pos, out = len(PNG_SIGNATURE), []
    while pos < len(png):
        if pos + 8 > len(png):
            raise MalformedInput("broken PNG: a chunk header is cut off")
        length, ctype = struct.unpack(">I4s", png[pos:pos + 8])
        end = pos + 12 + length
        if end > len(png):
            raise MalformedInput(f"broken PNG: chunk {ctype!r} runs past the end of the file")
        data = png[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", png[pos + 8 + length:end])
        if zlib.crc32(ctype + data) & 0xFFFFFFFF != crc:
            raise MalformedInput(f"broken PNG: chunk {ctype.decode('latin-1')} has a bad CRC")
        out.append((ctype, data))
        pos = end
        if ctype == b"IEND":
            break
    if not out or out[0][0] != b"IHDR" or out[-1][0] != b"IEND":
        raise MalformedInput("broken PNG: it must start with IHDR and end with IEND")
    return out


def _chunk(ctype: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + ctype + data + struct.pack(
        ">I", zlib.crc32(ctype + data) & 0xFFFFFFFF)


def _is_credential_chunk(ctype: bytes, data: bytes) -> bool:
    return ctype == b"iTXt" and data.split(b"\0", 1)[0] == PNG_KEYWORD


def bake_png(png: bytes, credential_text: str) -> bytes:
    """Return ``png`` with ``credential_text`` (JSON or compact JWT) in an iTXt chunk."""
    chunks = [(t, d) for t, d in _chunks(png) if not _is_credential_chunk(t, d)]
    # keyword \0 compression-flag compression-method language-tag \0 translated-keyword \0 text
    itxt = PNG_KEYWORD + b"\0" + b"\0\0" + b"\0" + b"\0" + credential_text.encode("utf-8")
    body = b"".join(_chunk(t, d) for t, d in chunks[:-1])
    return PNG_SIGNATURE + body + _chunk(b"iTXt", itxt) + _chunk(b"IEND", b"")


def unbake_png(png: bytes) -> str:
    """The credential text baked into ``png``; MalformedInput if there is none."""
    found = [d for t, d in _chunks(png) if _is_credential_chunk(t, d)]
    if not found:
        raise MalformedInput("the PNG carries no Open Badges credential (no iTXt chunk "
                             "with keyword openbadgecredential)")
    if len(found) > 1:
        raise MalformedInput("the PNG carries more than one openbadgecredential chunk")
    data = found[0]
    rest = data[len(PNG_KEYWORD) + 1:]
    if len(rest) < 2:
        raise MalformedInput("broken openbadgecredential iTXt chunk")
    compressed, rest = rest[0], rest[2:]
    _lang, _, rest = rest.partition(b"\0")
    _translated, _, text = rest.partition(b"\0")
    if compressed:
        try:
            text = zlib.decompress(text)
        except zlib.error as exc:
            raise MalformedInput(f"the compressed credential chunk is broken: {exc}") from None
    try:
        return text.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedInput("the credential chunk is not UTF-8 text") from None


# --- SVG ------------------------------------------------------------------------------------

def _parse_svg(svg: bytes) -> etree._Element:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                             huge_tree=False, remove_blank_text=False)
    try:
        root = etree.fromstring(svg, parser)
    except etree.XMLSyntaxError as exc:
        raise MalformedInput(f"not an SVG image: the XML does not parse ({exc})") from None
    if root.tag != f"{{{SVG_NS}}}svg":
        raise MalformedInput(f"not an SVG image: the root element is {root.tag!r}")
    return root


def bake_svg(svg: bytes, credential_text: str) -> bytes:
    """Return ``svg`` with an ``openbadges:credential`` element as the root's first child."""
    root = _parse_svg(svg)
    for old in root.findall(f"{{{OB_NS}}}credential"):
        root.remove(old)
    nsmap = dict(root.nsmap)
    nsmap["openbadges"] = OB_NS
    new_root = etree.Element(root.tag, nsmap=nsmap, attrib=dict(root.attrib))
    new_root.text = root.text
    element = etree.SubElement(new_root, f"{{{OB_NS}}}credential")
    text = credential_text.strip()
    if text.startswith("{"):
        element.text = etree.CDATA(text)
    else:
        element.set("verify", text)
    element.tail = "\n"
    for child in list(root):
        new_root.append(child)
    return etree.tostring(new_root, xml_declaration=True, encoding="UTF-8")


def unbake_svg(svg: bytes) -> str:
    root = _parse_svg(svg)
    found = root.findall(f"{{{OB_NS}}}credential")
    if not found:
        raise MalformedInput("the SVG carries no Open Badges credential "
                             "(no openbadges:credential element)")
    element = found[0]
    if element.get("verify"):
        return element.get("verify").strip()
    text = (element.text or "").strip()
    if not text:
        raise MalformedInput("the openbadges:credential element is empty")
    return text


# --- either ---------------------------------------------------------------------------------

def image_kind(data: bytes) -> str | None:
    if data.startswith(PNG_SIGNATURE):
        return "png"
    head = data[:512].lstrip()
    if head.startswith((b"<?xml", b"<svg")) or b"<svg" in head:
        return "svg"
    return None


def unbake(data: bytes) -> str:
    """The credential text in a baked PNG or SVG."""
    if len(data) > MAX_IMAGE_BYTES:
        raise MalformedInput(f"the image is larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MB")
    kind = image_kind(data)
    if kind == "png":
        return unbake_png(data)
    if kind == "svg":
        return unbake_svg(data)
    raise MalformedInput("not a PNG or SVG image")
