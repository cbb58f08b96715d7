"""IMS content packages of QTI items: export a bank's item versions, import another's.

An import happens in two steps that share all their code: :func:`read_package` reads and
checks everything without a database (a hostile package is refused here, as a whole, with
:class:`~itembank.qti.safety.PackageRefused`), and :func:`import_package` writes the items it
found through the bank's authoring services inside one savepoint, each item in its own
nested savepoint so one that the bank refuses is reported as skipped without leaving half of
itself behind. With ``commit=False`` the savepoint is rolled back: the report is what the
import would do, and nothing is written (the browser's preview).
"""
from __future__ import annotations

import hashlib
import mimetypes
import posixpath
import re
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any

from lxml import etree
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from itembank.models import Item, ItemParameter, ItemVersion
from itembank.qti import metadata as md
from itembank.qti.content import EXTENSIONS, media_in, rewrite_sources
from itembank.qti.dialect import DIALECTS, QTI_NAMESPACES, Dialect, canonical_tree, spelled
from itembank.qti.reading import ItemRefused, read_item
from itembank.qti.record import ItemRecord, StimulusRecord
from itembank.qti.report import IMPORTED, SKIPPED, ImportReport, ItemOutcome
from itembank.qti.safety import Archive, PackageRefused, open_archive, parse_xml
from itembank.qti.writing import item_tree, serialize, stimulus_tree
from itembank.types import ItemDefinitionError
from microcred.errors import DomainError

MANIFEST = "imsmanifest.xml"
#: the interaction each Microcred type is written as (for qtiMetadata's interactionType)
INTERACTIONS = {"single_choice": "choice-interaction", "multiple_response": "choice-interaction",
                "true_false": "choice-interaction", "text_entry": "text-entry-interaction",
                "numeric_entry": "text-entry-interaction", "ordering": "order-interaction",
                "matching": "match-interaction", "inline_choice": "inline-choice-interaction",
                "hotspot": "select-point-interaction"}
#: scoring details and interaction fields QTI has no words for, carried in the extension
EXTRA_FIELDS = ("max_length",)


# =============================================================================== export


def _safe_file(code: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", code)[:80] or "item"


def record_of(session: Session, version: ItemVersion) -> ItemRecord:
    """The record of a stored version: its content, metadata and statistics."""
    code = session.scalar(select(Item.code).where(Item.id == version.item_id))
    rec = ItemRecord(code=code, item_type=version.item_type, stem=version.stem,
                     interaction=dict(version.interaction), key=dict(version.key),
                     scoring=dict(version.scoring), max_score=float(version.max_score),
                     rationale=version.rationale, domain_code=version.domain_code)
    rec.metadata = _metadata_of(session, version, code)
    rec.statistics = _statistics_of(session, version)
    stimulus = getattr(version, "stimulus", None)
    if stimulus is not None:
        rec.stimulus = StimulusRecord(code=stimulus.code, kind=stimulus.kind,
                                      title=stimulus.title, content=stimulus.content)
    return rec


def _person(session: Session, user_id: int | None) -> dict[str, str] | None:
    if user_id is None:
        return None
    from microcred.records import records  # people are assessment's records

    person = records().person(session, user_id)
    if person is None:
        return None
    return {"name": person.display_name or person.email, "email": person.email}


def _metadata_of(session: Session, version: ItemVersion, code: str) -> dict[str, Any]:
    from itembank.enemies import enemies_of
    from itembank.models import ItemEnemy

    data: dict[str, Any] = {"domain_code": version.domain_code, "status": version.status,
                            "version": version.version}
    for name in ("subdomain_code", "cognitive_level", "reference"):
        if getattr(version, name, ""):
            data[name] = getattr(version, name)
    if getattr(version, "keywords", None):
        data["keywords"] = list(version.keywords)
    provenance = (version.meta or {}).get("provenance", {})
    author = provenance.get("author") or _person(session, getattr(version, "author_id", None))
    if author:
        data["author"] = author
    reviewers = list(provenance.get("reviewers", []))
    reviewers += [r for r in _reviewers(session, version) if r not in reviewers]
    if reviewers:
        data["reviewers"] = reviewers
    enemies = []
    for other_id in enemies_of(session, version.item_id):
        a, b = sorted((version.item_id, other_id))
        reason = session.scalar(select(ItemEnemy.reason).where(ItemEnemy.item_id == a,
                                                               ItemEnemy.enemy_id == b)) or ""
        enemies.append({"code": session.scalar(select(Item.code).where(Item.id == other_id)),
                        "reason": reason})
    if enemies:
        data["enemies"] = sorted(enemies, key=lambda e: e["code"])
    return data


def _reviewers(session: Session, version: ItemVersion) -> list[dict[str, str]]:
    """Who signed the version off in review (bank-workflow's review notes), if any."""
    try:
        from itembank.models import ReviewNote  # type: ignore[attr-defined]
    except ImportError:
        return []
    ids = session.scalars(select(ReviewNote.author_id).where(
        ReviewNote.item_version_id == version.id, ReviewNote.verdict == "passed")
        .order_by(ReviewNote.id)).all()
    people = [_person(session, i) for i in dict.fromkeys(ids) if i is not None]
    return [p for p in people if p]


def _statistics_of(session: Session, version: ItemVersion) -> list[dict[str, Any]]:
    """The version's newest IRT parameters (with standard errors), and the classical
    statistics an earlier import brought (``meta["statistics"]``)."""
    stats: list[dict[str, Any]] = []
    newest = session.scalar(select(ItemParameter).where(
        ItemParameter.item_version_id == version.id).order_by(ItemParameter.id.desc()).limit(1))
    if newest is not None:
        ses = newest.standard_errors or {}
        for name in ("a", "b", "c"):
            value = getattr(newest, name)
            if value is None:
                continue
            stat = {"name": f"irt_{name}", "value": float(value), "version": version.version}
            if ses.get(name) is not None:
                stat["std_error"] = float(ses[name])
            stats.append(stat)
    classical = _classical(session, version)
    if not classical:  # none from responses here: what an earlier import brought
        classical = [s for s in (version.meta or {}).get("statistics", [])
                     if s.get("name") in ("p", "rpb")]
    stats += [{**stat, "version": version.version} for stat in classical]
    return stats


def _classical(session: Session, version: ItemVersion) -> list[dict[str, Any]]:
    """p (mean fraction of the points earned) and r-pb (the corrected item-total correlation:
    the item's score against the rest of the test, Henrysson, 1963) from the version's scored
    responses, read through delivery's published read API."""
    try:
        from assessment.delivery.reads import item_score_rows  # type: ignore[attr-defined]
    except ImportError:
        return []
    rows = item_score_rows(session, version.id)
    n = len(rows)
    if n < 2:
        return []
    import numpy as np

    earned = np.array([s / m if m else 0.0 for s, m, _ in rows])
    item = np.array([s for s, _, _ in rows], dtype=float)
    rest = np.array([raw - s for s, _, raw in rows], dtype=float)
    out = [{"name": "p", "value": float(earned.mean()), "case_count": n}]
    if item.std() > 0 and rest.std() > 0:
        out.append({"name": "rpb", "value": float(np.corrcoef(item, rest)[0, 1]),
                    "case_count": n})
    return out


def _extension(rec: ItemRecord) -> dict[str, Any]:
    ext: dict[str, Any] = {"item_type": rec.item_type, "scoring": rec.scoring}
    for name in EXTRA_FIELDS:
        if name in rec.interaction:
            ext[name] = rec.interaction[name]
    if rec.rationale:
        ext["rationale"] = rec.rationale
    if rec.metadata.get("reference"):
        ext["reference"] = rec.metadata["reference"]
    return ext


def _media(session: Session, sha: str) -> tuple[str, bytes] | None:
    try:
        from itembank.media import media_bytes  # type: ignore[import-not-found]
    except ImportError:
        return None
    return media_bytes(session, sha)


def export_package(session: Session, versions: Sequence[ItemVersion], dialect: Dialect | str,
                   *, progress: Callable[[int], None] | None = None) -> bytes:
    """A zip with ``imsmanifest.xml``, one item document per version, their stimuli, media
    and usage data, in ``dialect`` (``qti3`` or ``qti21``)."""
    records = (record_of(session, version) for version in versions)
    return package_records(records, dialect, lambda sha: _media(session, sha),
                           progress=progress)


def package_records(records: Iterable[ItemRecord], dialect: Dialect | str,
                    media: Callable[[str], tuple[str, bytes] | None] = lambda sha: None, *,
                    progress: Callable[[int], None] | None = None) -> bytes:
    """The package of ``records`` (see :func:`export_package`); ``media(sha256)`` gives a
    stored file's (content type, bytes)."""
    if isinstance(dialect, str):
        dialect = DIALECTS[dialect]
    files: dict[str, bytes] = {}
    resources: list[etree._Element] = []
    usage: list[tuple[str, dict[str, Any]]] = []
    stimuli: dict[str, str] = {}
    cp = dialect.cp_namespace
    for n, rec in enumerate(records, start=1):
        href = f"items/{_safe_file(rec.code)}.xml"
        stim_href = None
        if rec.stimulus is not None and dialect.is_v3:
            stim_file = f"items/stimuli/{_safe_file(rec.stimulus.code)}.xml"
            stim_href = stim_file.removeprefix("items/")
            if rec.stimulus.code not in stimuli:
                stimuli[rec.stimulus.code] = stim_file
                files[stim_file] = serialize(stimulus_tree(rec.stimulus), dialect)
                resources.append(_resource(cp, f"stimulus-{rec.stimulus.code}",
                                           dialect.stimulus_resource, stim_file, []))
        tree = item_tree(rec, dialect, stim_href)
        item_files = [href]
        mapping = {}
        for sha in sorted(media_in(tree)):
            found = media(sha)
            if found is None:
                continue
            content_type, data = found
            path = f"items/media/{sha}.{EXTENSIONS.get(content_type, 'bin')}"
            files[path] = data
            item_files.append(path)
            mapping[f"/media/{sha}"] = path.removeprefix("items/")
        rewrite_sources(tree, mapping)
        for obj in tree.iter("object"):
            obj.set("type", mimetypes.guess_type(obj.get("data", ""))[0] or "image/png")
        files[href] = serialize(tree, dialect)
        res = _resource(cp, f"item-{_safe_file(rec.code)}", dialect.item_resource, href,
                        item_files)
        if rec.stimulus is not None and dialect.is_v3:
            etree.SubElement(res, f"{{{cp}}}dependency",
                             identifierref=f"stimulus-{rec.stimulus.code}")
        meta = res.find(f"{{{cp}}}metadata")
        spelled_interaction = spelled(INTERACTIONS[rec.item_type], dialect)
        md.write_metadata(meta, rec.code, rec.title or rec.code, rec.metadata,
                          _extension(rec), spelled_interaction, dialect)
        resources.append(res)
        usage += [(rec.code, s) for s in rec.statistics]
        if progress:
            progress(n)
    if usage:
        files["usagedata.xml"] = serialize(md.usage_tree(usage), dialect)
        kind = f"imsqti_usagedata_xml{dialect.item_resource[-4:]}"
        resources.append(_resource(cp, "usagedata", kind, "usagedata.xml", ["usagedata.xml"]))
    files[MANIFEST] = _manifest(dialect, resources)
    out = BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(MANIFEST, files.pop(MANIFEST))
        for path in sorted(files):
            zf.writestr(path, files[path])
    return out.getvalue()


def _resource(cp: str, ident: str, kind: str, href: str, item_files: list[str]) -> etree._Element:
    res = etree.Element(f"{{{cp}}}resource", identifier=ident, type=kind, href=href)
    etree.SubElement(res, f"{{{cp}}}metadata")
    for path in item_files or [href]:
        etree.SubElement(res, f"{{{cp}}}file", href=path)
    return res


def _manifest(dialect: Dialect, resources: list[etree._Element]) -> bytes:
    cp = dialect.cp_namespace
    root = etree.Element(f"{{{cp}}}manifest", nsmap={None: cp, "imsmd": md.LOM},
                         identifier="MANIFEST-microcred")
    meta = etree.SubElement(root, f"{{{cp}}}metadata")
    etree.SubElement(meta, f"{{{cp}}}schema").text = "QTI Package" if dialect.is_v3 \
        else "QTIv2.1 Package"
    etree.SubElement(meta, f"{{{cp}}}schemaversion").text = "3.0.0" if dialect.is_v3 \
        else "1.0.0"
    etree.SubElement(root, f"{{{cp}}}organizations")
    box = etree.SubElement(root, f"{{{cp}}}resources")
    for res in resources:
        box.append(res)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


# =============================================================================== import


@dataclass
class Planned:
    outcome: ItemOutcome
    record: ItemRecord | None = None


@dataclass
class Plan:
    """What a package holds, read and checked, before anything is written."""

    report: ImportReport
    items: list[Planned] = field(default_factory=list)
    #: SHA-256 -> (file name, bytes) of the media the items use
    media: dict[str, tuple[str, bytes]] = field(default_factory=dict)


def _local(el: etree._Element) -> str:
    return etree.QName(el).localname


def _children(el: etree._Element, name: str) -> list[etree._Element]:
    return [c for c in el if isinstance(c.tag, str) and _local(c) == name]


def read_package(data: bytes, name: str = "package.zip") -> Plan:
    """Read a content package (or one item's XML) without writing anything. Raises
    :class:`PackageRefused` for a hostile or unreadable package."""
    report = ImportReport(source=name)
    plan = Plan(report)
    if data[:2] == b"PK":
        archive = open_archive(data, name)
    elif data.lstrip()[:1] == b"<":
        archive = Archive({posixpath.basename(name) or "item.xml": data})
    else:
        raise PackageRefused(f"{name} is neither a zip package nor an XML item")
    manifest = archive.read(MANIFEST)
    if manifest is not None:
        entries = _manifest_entries(parse_xml(manifest, MANIFEST), archive, report)
    else:
        report.notes.append("no imsmanifest.xml: every .xml file was read as an item")
        entries = [(path, None) for path in sorted(archive.files) if path.endswith(".xml")]
    # parse everything first: one hostile document refuses the package before any write
    documents = [(path, parse_xml(archive.files[path], path), meta) for path, meta in entries
                 if path in archive.files]
    versions = set()
    usage: dict[str, list[dict[str, Any]]] = {}
    for path, root, _meta in documents:
        if _local(root) in ("usageData", "qti-usage-data"):
            for code, stats in md.read_usage(canonical_tree(root)).items():
                usage.setdefault(code, []).extend(stats)
    for path, root, meta in documents:
        if _local(root) in ("usageData", "qti-usage-data"):
            continue
        if _local(root) not in ("assessmentItem", "qti-assessment-item"):
            report.notes.append(f"{path}: a {_local(root)}, not an item; not imported")
            continue
        plan.items.append(_plan_item(plan, archive, path, root, meta, usage))
        versions.add(etree.QName(root).namespace)
    report.items = [p.outcome for p in plan.items]
    report.format = ", ".join(sorted(QTI_NAMESPACES.get(v or "", "?") for v in versions))
    return plan


def _manifest_entries(manifest: etree._Element, archive: Archive, report: ImportReport
                      ) -> list[tuple[str, etree._Element | None]]:
    entries = []
    for box in _children(manifest, "resources"):
        for res in _children(box, "resource"):
            kind = res.get("type", "")
            href = res.get("href", "")
            base = res.get("{http://www.w3.org/XML/1998/namespace}base", "")
            path = posixpath.normpath(posixpath.join(base, href)) if href else ""
            meta = next(iter(_children(res, "metadata")), None)
            if kind.startswith(("imsqti_item_xml", "imsqti_usagedata")):
                if path.startswith(("../", "/")):
                    raise PackageRefused(f"resource {res.get('identifier')} points outside the "
                                         f"package ({href})")
                if path not in archive.files:
                    report.notes.append(f"resource {res.get('identifier')}: {href} is not in "
                                        "the package")
                    continue
                entries.append((path, meta))
            elif kind.startswith(("imsqti_test_xml", "imsqti_assessment")):
                report.notes.append(f"{href or res.get('identifier')}: an assessment test; "
                                    "its items are imported, the test itself is not")
    return entries


def _plan_item(plan: Plan, archive: Archive, path: str, root: etree._Element,
               meta: etree._Element | None, usage: dict[str, list[dict[str, Any]]]) -> Planned:
    ident = root.get("identifier", "") or path
    outcome = ItemOutcome(identifier=ident, where=path, status=SKIPPED)

    def media(src: str) -> str:
        return _media_url(plan, archive, path, src)

    try:
        rec = read_item(root, media)
        _apply_metadata(rec, meta)
        _attach_stimulus(rec, archive, path, root,
                         lambda href: lambda src: _media_url(plan, archive, href, src))
    except ItemRefused as exc:
        outcome.reason = str(exc)
        return Planned(outcome)
    except ItemDefinitionError as exc:
        outcome.reason = f"not a valid Microcred item: {exc.message}"
        return Planned(outcome)
    rec.statistics = usage.get(rec.code, [])
    outcome.status, outcome.item_type, outcome.notes = IMPORTED, rec.item_type, rec.notes
    return Planned(outcome, rec)


def _media_url(plan: Plan, archive: Archive, item_path: str, src: str) -> str:
    """The bank address ``src`` (relative to the item) will have once stored: media are kept
    by the SHA-256 of their bytes, so it is known before anything is written."""
    if src.startswith("/media/"):
        return src
    if re.match(r"^[a-z][a-z0-9+.-]*:", src, re.IGNORECASE):
        raise ItemRefused(f"it refers to {src}, outside the package; Microcred shows only "
                          "media stored in the bank")
    path = posixpath.normpath(posixpath.join(posixpath.dirname(item_path), src))
    if path.startswith("../") or path == "..":
        raise PackageRefused(f"{item_path}: {src} points outside the package")
    data = archive.read(path)
    if data is None:
        raise ItemRefused(f"it refers to {src}, which is not in the package")
    sha = hashlib.sha256(data).hexdigest()
    plan.media[sha] = (posixpath.basename(path), data)
    return f"/media/{sha}"


def _apply_metadata(rec: ItemRecord, meta: etree._Element | None) -> None:
    data, ext = md.read_metadata(meta)
    rec.metadata = data
    if data.get("domain_code"):
        rec.domain_code = data["domain_code"]
    if ext.get("item_type") == rec.item_type:
        if isinstance(ext.get("scoring"), dict):
            rec.scoring = ext["scoring"]
        for name in EXTRA_FIELDS:
            if name in ext:
                rec.interaction[name] = ext[name]
        rec.rationale = ext.get("rationale", "")
        if ext.get("reference"):
            rec.metadata["reference"] = ext["reference"]
    from itembank.types import item_type

    item_type(rec.item_type).validate_definition(rec.interaction, rec.key, rec.scoring)


def _attach_stimulus(rec: ItemRecord, archive: Archive, path: str, root: etree._Element,
                     media_for: Callable[[str], Callable[[str], str]]) -> None:
    """The item's ``assessment-stimulus-ref`` read into its record (media relative to the
    stimulus's own file)."""
    from itembank.qti.content import inner_html

    tree = canonical_tree(root)
    ref = tree.find("assessment-stimulus-ref")
    if ref is None:
        return
    href = posixpath.normpath(posixpath.join(posixpath.dirname(path), ref.get("href", "")))
    data = archive.read(href)
    if data is None:
        raise ItemRefused(f"its stimulus {ref.get('href')} is not in the package")
    stim = canonical_tree(parse_xml(data, href))
    body = stim.find("stimulus-body")
    if body is None:
        raise ItemRefused(f"its stimulus {href} has no stimulus body")
    inner = body.find("div")
    kind = "passage"
    if inner is not None and len(body) == 1 and "microcred-stimulus" in (inner.get("class") or ""):
        kind = next((c for c in inner.get("class", "").split() if c != "microcred-stimulus"),
                    "passage")
        body = inner
    media = media_for(href)
    for node in body.iter():
        for attr in ("src", "data"):
            if isinstance(node.tag, str) and node.get(attr):
                node.set(attr, media(node.get(attr)))
    rec.stimulus = StimulusRecord(code=ref.get("identifier") or stim.get("identifier", ""),
                                  kind=kind, title=stim.get("title") or ref.get("title", ""),
                                  content=inner_html(body))


# ------------------------------------------------------------------------- writing the bank


def import_package(session: Session, data: bytes, name: str = "package.zip", *,
                   actor: Any = None, keep_status: bool = True, commit: bool = True
                   ) -> ImportReport:
    """Import the package's items; the report says what happened to each. ``keep_status``:
    the lifecycle state the package gives (approved, pretest, retired) is kept; otherwise
    every item comes in as a draft. ``commit=False`` only reports (nothing is written)."""
    plan = read_package(data, name)
    return write_plan(session, plan, actor=actor, keep_status=keep_status, commit=commit)


def write_plan(session: Session, plan: Plan, *, actor: Any = None, keep_status: bool = True,
               commit: bool = True) -> ImportReport:
    report = plan.report
    outer = session.begin_nested()
    try:
        codes = {}
        stimuli: dict[str, Any] = {}
        for planned in plan.items:
            if planned.record is None:
                continue
            inner = session.begin_nested()
            try:
                version = _write_item(session, plan, planned.record, stimuli, actor,
                                      keep_status)
                inner.commit()
                codes[planned.record.code] = (version, planned)
            except (DomainError, ValueError, SQLAlchemyError) as exc:
                inner.rollback()
                planned.outcome.status = SKIPPED
                planned.outcome.reason = getattr(exc, "message", None) or \
                    f"the bank refused it: {str(exc).splitlines()[0]}"
        _write_enemies(session, codes)
        if commit:
            outer.commit()
            report.committed = True
        else:
            outer.rollback()
    except BaseException:
        if outer.is_active:
            outer.rollback()
        raise
    report.items = [p.outcome for p in plan.items]
    return report


def _write_item(session: Session, plan: Plan, rec: ItemRecord, stimuli: dict[str, Any],
                actor: Any, keep_status: bool) -> ItemVersion:
    from itembank import authoring
    from itembank.authoring import create_item

    if session.scalar(select(Item.id).where(Item.code == rec.code)) is not None:
        raise ItemDefinitionError(f"an item with code {rec.code} is already in the bank; "
                                  "not replaced")
    for sha in _media_used(rec):
        if sha in plan.media:
            _store_media(session, *plan.media[sha][::-1])
    fields: dict[str, Any] = {}
    meta = rec.metadata
    import inspect

    accepted = inspect.signature(create_item).parameters
    for name in ("subdomain_code", "cognitive_level", "reference", "keywords"):
        if meta.get(name) and name in accepted:
            fields[name] = meta[name]
    if "actor" in accepted:
        fields["actor"] = actor
    if rec.stimulus is not None and "stimulus_id" in accepted:
        fields["stimulus_id"] = _stimulus(session, rec.stimulus, stimuli).id
    extra_meta: dict[str, Any] = {}
    if rec.statistics:
        extra_meta["statistics"] = [s for s in rec.statistics if s["name"] in ("p", "rpb")]
    # who wrote and reviewed the item at its source: people of another system, kept as the
    # item's provenance (never turned into sign-offs in this bank's review)
    provenance = {k: meta[k] for k in ("author", "reviewers") if meta.get(k)}
    if provenance:
        extra_meta["provenance"] = provenance
    version = create_item(
        session, code=rec.code, item_type_name=rec.item_type,
        domain_code=rec.domain_code or meta.get("domain_code") or "", stem=rec.stem,
        interaction=rec.interaction, key=rec.key, scoring=rec.scoring,
        rationale=rec.rationale, max_score=rec.max_score,
        meta={k: v for k, v in extra_meta.items() if v} or None, **fields)
    if isinstance(meta.get("version"), int) and meta["version"] > 1:
        # the item's number in its source bank: history continues from there
        version.version = meta["version"]
        session.flush()
    if hasattr(authoring, "record_event"):
        authoring.record_event(session, version, action="imported", actor=actor,
                               summary=f"imported as version {version.version} from a "
                               "package (QTI or CSV)")
    _write_parameters(session, version, rec.statistics)
    if keep_status and meta.get("status"):
        _apply_status(session, version, meta["status"], actor)
    return version


def _media_used(rec: ItemRecord) -> set[str]:
    import json

    text = json.dumps([rec.stem, rec.interaction, rec.stimulus.content if rec.stimulus else ""])
    return set(re.findall(r"/media/([0-9a-f]{64})", text))


def _store_media(session: Session, data: bytes, filename: str) -> None:
    try:
        from itembank.media import store_media  # type: ignore[import-not-found]
    except ImportError:
        raise ItemDefinitionError("this bank has no media store for the item's images") \
            from None
    store_media(session, data, filename=filename)


def _stimulus(session: Session, stim: StimulusRecord, cache: dict[str, Any]) -> Any:
    if stim.code in cache:
        return cache[stim.code]
    from itembank.models import Stimulus  # type: ignore[attr-defined]
    from itembank.stimuli import create_stimulus  # type: ignore[import-not-found]

    existing = session.scalar(select(Stimulus).where(Stimulus.code == stim.code)
                              .order_by(Stimulus.version.desc()).limit(1))
    if existing is not None and existing.content == stim.content:
        cache[stim.code] = existing
    else:
        code = stim.code if existing is None else f"{stim.code}-imported"
        cache[stim.code] = create_stimulus(session, code=code, kind=stim.kind,
                                           title=stim.title or code, content=stim.content)
    return cache[stim.code]


def _write_parameters(session: Session, version: ItemVersion,
                      statistics: list[dict[str, Any]]) -> None:
    irt = {s["name"][4:]: s for s in statistics if s["name"] in ("irt_a", "irt_b", "irt_c")}
    if "a" not in irt:
        return
    model = "3PL" if "c" in irt else "2PL"
    session.add(ItemParameter(
        item_version_id=version.id, model=model, a=irt["a"]["value"],
        b=irt["b"]["value"] if "b" in irt else None,
        c=irt["c"]["value"] if "c" in irt else 0.0, thresholds=None,
        standard_errors={k: s["std_error"] for k, s in irt.items() if "std_error" in s},
        source="QTI usage data"))
    session.flush()


def _apply_status(session: Session, version: ItemVersion, status: str, actor: Any) -> None:
    """Give the imported draft the lifecycle state its package states (through
    ``publish_version``, which records in the history that it skipped review here)."""
    from itembank import authoring
    from itembank.models import STATUSES

    if status == "published":  # a bank that has one deliverable state calls it this
        status = "approved" if "approved" in STATUSES else "published"
    if status not in STATUSES or status in ("draft", "in_review"):
        return  # review happens in this bank: the item waits as a draft
    deliverable = "pretest" if status == "pretest" else (
        "approved" if "approved" in STATUSES else "published")
    try:
        authoring.publish_version(session, version, status=deliverable, actor=actor,
                                  note="imported from a QTI package, reviewed at its source")
    except TypeError:  # a bank without review stages has one published status
        authoring.publish_version(session, version)
    if status == "retired":
        version.status = "retired"
        session.flush()


def _write_enemies(session: Session, codes: dict[str, tuple[ItemVersion, Planned]]) -> None:
    from itembank.enemies import add_enemy

    for version, planned in codes.values():
        for enemy in planned.record.metadata.get("enemies", []) if planned.record else []:
            other = session.scalar(select(Item).where(Item.code == enemy["code"]))
            if other is None:
                planned.outcome.notes.append(f"enemy {enemy['code']} is not in the bank: "
                                             "not linked")
                continue
            item = session.get(Item, version.item_id)
            try:  # idempotent: a pair both items list is written once
                add_enemy(session, item, other, reason=enemy.get("reason", ""))
            except DomainError as exc:
                planned.outcome.notes.append(f"enemy {enemy['code']}: {exc.message}")



def newest_versions(session: Session, *, status: str | None = None, domain: str | None = None,
                    item_type: str | None = None, codes: Sequence[str] | None = None
                    ) -> list[ItemVersion]:
    """Each item's newest version, filtered (what an export of "the bank" means), by code."""
    from sqlalchemy import func

    newest = (select(ItemVersion.item_id, func.max(ItemVersion.version).label("v"))
              .group_by(ItemVersion.item_id).subquery())
    query = (select(ItemVersion).join(newest, (newest.c.item_id == ItemVersion.item_id)
                                      & (newest.c.v == ItemVersion.version))
             .join(Item, Item.id == ItemVersion.item_id).order_by(Item.code))
    if status:
        query = query.where(ItemVersion.status == status)
    if domain:
        query = query.where(ItemVersion.domain_code == domain)
    if item_type:
        query = query.where(ItemVersion.item_type == item_type)
    if codes is not None:
        query = query.where(Item.code.in_(list(codes)))
    return list(session.scalars(query))
