"""Reading what another system sent without trusting it: XML and zip archives.

A QTI package is a zip written by a tool we do not control, so everything in it is read as
hostile until shown otherwise (OWASP XML External Entity Prevention Cheat Sheet; the zip
checks follow CWE-22 path traversal and CWE-409 decompression bombs):

- XML is parsed by lxml with entities left unresolved, no DTD loaded, no network and no
  huge-tree mode; a document that declares a DTD at all (the carrier of external entities and
  of the "billion laughs" expansion bomb) is refused before it is parsed.
- A zip member whose name is absolute, has a drive letter or a ``..`` part is refused, as are
  links; sizes are capped per member and in total, compressed and uncompressed, and a member
  is read in chunks so a header that lies about its size cannot make us read more.

Every refusal is a :class:`PackageRefused` naming the member and the reason; the importer
raises it before writing anything.
"""
from __future__ import annotations

import re
import stat
import zipfile
from dataclasses import dataclass
from io import BytesIO
from pathlib import PurePosixPath

from lxml import etree

from microcred.errors import DomainError

#: the largest upload (compressed), the largest total and largest member once uncompressed
MAX_PACKAGE_BYTES = 50 * 1024 * 1024
MAX_TOTAL_BYTES = 200 * 1024 * 1024
MAX_MEMBER_BYTES = 25 * 1024 * 1024
MAX_XML_BYTES = 5 * 1024 * 1024
MAX_MEMBERS = 20_000
#: a member expanding more than this many times its compressed size is a bomb, not content
MAX_RATIO = 200
_CHUNK = 64 * 1024
_DOCTYPE = re.compile(rb"<!DOCTYPE|<!ENTITY", re.IGNORECASE)


class PackageRefused(DomainError):
    """A package (or a file in it) that is not read at all; the message says which and why."""

    status, code = 422, "package_refused"


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False,
                           load_dtd=False, dtd_validation=False, remove_comments=True,
                           remove_pis=True)


def parse_xml(data: bytes, where: str) -> etree._Element:
    """The root element of an XML document, or :class:`PackageRefused` saying what is wrong.
    A document type declaration is refused outright: QTI needs none, and it is how external
    entities and entity-expansion bombs arrive."""
    if len(data) > MAX_XML_BYTES:
        raise PackageRefused(f"{where}: {len(data):,} bytes of XML; at most {MAX_XML_BYTES:,}",
                             member=where)
    if _DOCTYPE.search(data[:65536]) or _DOCTYPE.search(data):
        raise PackageRefused(f"{where}: declares a DTD or entities (<!DOCTYPE/<!ENTITY), "
                             "which QTI never needs; refused (external entities and entity "
                             "expansion are not read)", member=where)
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        raise PackageRefused(f"{where}: not well-formed XML: {exc}", member=where) from None
    for node in root.iter():
        if isinstance(node, etree._Entity):
            raise PackageRefused(f"{where}: uses an entity reference &{node.name};, refused",
                                 member=where)
    return root


def _safe_name(name: str) -> str:
    if not name or "\x00" in name:
        raise PackageRefused(f"zip member {name!r} has no usable name", member=name)
    unix = name.replace("\\", "/")
    path = PurePosixPath(unix)
    if unix.startswith("/") or re.match(r"^[A-Za-z]:", unix) or ".." in path.parts:
        raise PackageRefused(f"zip member {name!r} points outside the package (an absolute "
                             "path or a .. part); refused", member=name)
    return str(path)


@dataclass
class Archive:
    """The files of a checked package: path inside the package -> bytes."""

    files: dict[str, bytes]

    def read(self, path: str) -> bytes | None:
        return self.files.get(str(PurePosixPath(path)))


def open_archive(data: bytes, name: str = "package") -> Archive:
    """Every member of the zip ``data``, checked (see the module's docstring)."""
    if len(data) > MAX_PACKAGE_BYTES:
        raise PackageRefused(f"{name} is {len(data):,} bytes; a package may be at most "
                             f"{MAX_PACKAGE_BYTES:,}")
    try:
        archive = zipfile.ZipFile(BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise PackageRefused(f"{name} is not a zip archive: {exc}") from None
    if len(infos) > MAX_MEMBERS:
        raise PackageRefused(f"{name} has {len(infos):,} files; at most {MAX_MEMBERS:,}")
    files: dict[str, bytes] = {}
    total = 0
    for info in infos:
        path = _safe_name(info.filename)
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise PackageRefused(f"zip member {info.filename!r} is a symbolic link; refused",
                                 member=info.filename)
        if info.is_dir():
            continue
        if info.flag_bits & 0x1:
            raise PackageRefused(f"zip member {info.filename!r} is encrypted", member=path)
        declared = max(info.file_size, 0)
        if declared > MAX_MEMBER_BYTES:
            raise PackageRefused(f"zip member {path} is {declared:,} bytes uncompressed; at "
                                 f"most {MAX_MEMBER_BYTES:,} per file", member=path)
        body = _read_member(archive, info, path, MAX_TOTAL_BYTES - total)
        total += len(body)
        files[path] = body
    return Archive(files)


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: str,
                 room: int) -> bytes:
    """The member's bytes, read in chunks and stopped at the first limit it crosses (the
    header's sizes are the sender's claim, not a fact)."""
    limit = min(MAX_MEMBER_BYTES, room)
    ratio_cap = max(info.compress_size, 1) * MAX_RATIO + _CHUNK
    out = bytearray()
    try:
        with archive.open(info) as stream:
            while chunk := stream.read(_CHUNK):
                out += chunk
                if len(out) > limit:
                    what = ("the package's uncompressed total" if limit == room
                            else "a file's uncompressed size")
                    raise PackageRefused(f"zip member {path} goes past {what} limit "
                                         f"({limit:,} bytes); refused", member=path)
                if len(out) > ratio_cap and len(out) > 1024 * 1024:
                    raise PackageRefused(f"zip member {path} expands more than {MAX_RATIO} "
                                         "times its compressed size (a zip bomb); refused",
                                         member=path)
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as exc:
        raise PackageRefused(f"zip member {path} cannot be read: {exc}", member=path) from None
    return bytes(out)
