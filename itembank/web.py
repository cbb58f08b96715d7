"""The item bank's web surface: stored media (``POST /api/bank/media`` to upload, ``GET
/media/<sha256>`` to serve) and the item preview the editor shows as the author types (``POST
/api/bank/preview``). The bank's list, editor and review screens (``itembank.screens``) add
their routes to this blueprint."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Response, abort, jsonify, request
from flask_login import current_user

from itembank import rendering
from itembank.content import ContentError, clean_item_content
from itembank.media import MAX_AUDIO_BYTES, MediaError, media_bytes, media_url, store_media
from itembank.models import ItemVersion
from itembank.types import ItemDefinitionError, item_type, public_payload
from microcred.inputs import json_body
from microcred.web import ApiError, body_limit, db_session, role_required

bp = Blueprint("itembank", __name__)

#: who writes item content (and so uploads media and previews drafts)
AUTHORS = ("admin", "psychometrician", "item_author")
#: the request around an upload: multipart boundaries and the form's other fields
UPLOAD_OVERHEAD = 64 * 1024


@bp.post("/api/bank/media")
@role_required(*AUTHORS)
@body_limit(MAX_AUDIO_BYTES + UPLOAD_OVERHEAD)
def upload_media():
    """Store an uploaded image or audio file (form field ``file``); its address and facts."""
    upload = request.files.get("file")
    if upload is None:
        raise ApiError(422, "invalid_media", "send the file in the form field 'file'",
                       field="file")
    session = db_session()
    try:
        media = store_media(session, upload.read(), filename=upload.filename or "")
    except MediaError as exc:
        raise ApiError(422, exc.code, exc.message, field="file") from None
    session.commit()
    return jsonify({"sha256": media.sha256, "url": media_url(media.sha256), "kind": media.kind,
                    "content_type": media.content_type, "size": media.size,
                    "width": media.width, "height": media.height}), 201


@bp.get("/media/<sha256>")
def media(sha256: str):
    """A stored file, for signed-in users: staff any, a candidate only the media of items on
    their own attempts (another's is not found: hashes cannot be probed). The bytes of an
    address never change, so it is cached for good; the headers keep a browser from reading it
    as anything but its sniffed type, or running it."""
    if not current_user.is_authenticated:
        abort(404)
    if getattr(current_user, "role", None) == "candidate":
        from assessment.delivery.reads import media_on_own_attempts

        if not media_on_own_attempts(db_session(), current_user.id, sha256):
            abort(404)
    found = media_bytes(db_session(), sha256)
    if found is None:
        abort(404)
    content_type, data = found
    response = Response(data, content_type=content_type)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "private, max-age=31536000, immutable"
    response.headers["Content-Disposition"] = "inline"
    response.set_etag(sha256)
    return response.make_conditional(request)


def preview_version(body: Any) -> ItemVersion:
    """An unsaved item version from an editor's JSON (``item_type``, ``stem``, ``interaction``,
    ``key``, ``scoring``), checked and sanitized as a save would be."""
    if not isinstance(body, dict):
        raise ApiError(422, "invalid_item", "the body must be a JSON object")
    type_name = body.get("item_type")
    if not isinstance(type_name, str):
        raise ApiError(422, "invalid_item", "item_type must name an item type", field="item_type")
    for name in ("interaction", "key", "scoring"):
        if not isinstance(body.get(name) or {}, dict):
            raise ApiError(422, "invalid_item", f"{name} must be an object", field=name)
    if not isinstance(body.get("stem") or "", str):
        raise ApiError(422, "invalid_item", "stem must be text (HTML)", field="stem")
    try:
        item_type(type_name).validate_definition(
            body.get("interaction") or {}, body.get("key") or {}, body.get("scoring") or {})
        stem, interaction, _ = clean_item_content(
            type_name, stem=body.get("stem") or "", interaction=body.get("interaction") or {})
    except (ContentError, ItemDefinitionError) as exc:
        raise ApiError(422, exc.code, exc.message, field=exc.field) from None
    return ItemVersion(item_type=type_name, stem=stem, interaction=interaction,
                       key=body.get("key") or {}, scoring=body.get("scoring") or {},
                       max_score=1.0)


@bp.post("/api/bank/preview")
@role_required(*AUTHORS)
def preview():
    """The item as candidates will see it, from the editor's unsaved fields: ``{"html"}``, or
    422 naming the field to fix."""
    version = preview_version(json_body())
    return jsonify({"html": str(rendering.render_item(public_payload(version), prefix="preview",
                                                      label="this question"))})


def init_app(app: Flask) -> None:
    """The item bank's views: these, the list, editor and review screens (``itembank.screens``,
    routes on this blueprint) and the builder's screens (``itembank.builder``)."""
    from itembank import builder, screens

    rendering.init_app(app)
    screens.add_nav_links(app)
    app.register_blueprint(bp)
    builder.init_app(app)
