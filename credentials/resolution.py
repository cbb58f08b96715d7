"""The verifier's resolver backed by Microcred's database: our issuers' did:web documents,
our status lists (signed and fresh) and the reasons recorded for revocations and suspensions.
Anything that is not ours is refused, never fetched."""
from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from credentials import issuers, revocation
from credentials.config import CredentialConfig
from credentials.errors import KeyResolutionError, StatusListError
from credentials.models import Credential
from credentials.verify import Resolver


class DatabaseResolver(Resolver):
    def __init__(self, session: Session, cfg: CredentialConfig) -> None:
        super().__init__()
        self.session, self.cfg = session, cfg
        self._pattern = re.compile(re.escape(cfg.base_url.rstrip("/"))
                                   + r"/status/(\d+)/(revocation|suspension)$")

    def did_document(self, did: str) -> dict[str, Any]:
        if did.startswith("did:web:"):
            issuer = issuers.issuer_for_did(self.session, self.cfg, did)
            if issuer is None:
                raise KeyResolutionError(f"cannot resolve {did} offline: it is not one of this "
                                         "Microcred's issuers")
            return issuers.did_web_document(self.session, self.cfg, issuer)
        return super().did_document(did)

    def _ours(self, url: str) -> tuple[int, str]:
        match = self._pattern.match(url)
        if not match:
            raise StatusListError(f"the status list {url} is not one this Microcred publishes, "
                                  "and status lists are not fetched from the network")
        return int(match.group(1)), match.group(2)

    def status_list(self, url: str) -> dict[str, Any]:
        list_id, purpose = self._ours(url)
        doc = revocation.published_list(self.session, self.cfg, list_id, purpose)
        if doc is None:
            raise StatusListError(f"there is no status list at {url}")
        return doc

    def suspension_list(self, revocation_list_url: str) -> dict[str, Any] | None:
        try:
            list_id, purpose = self._ours(revocation_list_url)
        except StatusListError:
            return None
        if purpose != "revocation":
            return None
        return revocation.published_list(self.session, self.cfg, list_id, "suspension")

    def status_reason(self, credential_id: str | None) -> str | None:
        if not credential_id:
            return None
        public_id = credential_id.rstrip("/").rsplit("/", 1)[-1]
        row = self.session.scalar(select(Credential).where(Credential.public_id == public_id))
        if row is None:
            return None
        return revocation.status_of(self.session, row).reason
