"""The verifier's resolvers beyond the offline one.

- ``NetworkResolver``: did:web documents and status list credentials fetched over HTTP(S)
  through the guarded fetcher of ``credentials.remote`` (timeouts, size limit, public
  addresses only). ``microcred verify`` uses it.
- ``DatabaseResolver``: our issuers' did:web documents, our status lists (signed and fresh)
  and the reasons recorded for revocations and suspensions, from Microcred's database.
  Anything that is not ours goes to its ``fallback`` resolver when it has one (the CLI gives
  it the network resolver), else it is refused: the public web verifier never fetches.
"""
from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from credentials import issuers, keys, revocation
from credentials.config import CredentialConfig
from credentials.errors import KeyResolutionError, StatusListError
from credentials.models import Credential
from credentials.remote import Fetcher
from credentials.verify import Resolver


class NetworkResolver(Resolver):
    """Resolves did:web and status lists by fetching them (each URL once per resolver)."""

    def __init__(self, fetcher: Fetcher | None = None, **given: Any) -> None:
        super().__init__(**given)
        self.fetcher = fetcher or Fetcher.from_env()

    def did_document(self, did: str) -> dict[str, Any]:
        if not did.startswith("did:web:") or did in self.did_documents:
            return super().did_document(did)
        doc = self.fetcher.json(keys.did_web_url(did), https_only=True)
        if doc.get("id") != did:
            raise KeyResolutionError(f"the DID document fetched for {did} is about "
                                     f"{doc.get('id')!r}")
        self.did_documents[did] = doc
        return doc

    def status_list(self, url: str) -> dict[str, Any]:
        if url not in self.status_lists:
            self.status_lists[url] = self.fetcher.json(url)
        return self.status_lists[url]


class DatabaseResolver(Resolver):
    def __init__(self, session: Session, cfg: CredentialConfig, *,
                 fallback: Resolver | None = None) -> None:
        super().__init__()
        self.session, self.cfg, self.fallback = session, cfg, fallback
        self._pattern = re.compile(re.escape(cfg.base_url.rstrip("/"))
                                   + r"/status/(\d+)/(revocation|suspension)$")

    def did_document(self, did: str) -> dict[str, Any]:
        if did.startswith("did:web:"):
            issuer = issuers.issuer_for_did(self.session, self.cfg, did)
            if issuer is None:
                if self.fallback is not None:
                    return self.fallback.did_document(did)
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
        if self.fallback is not None and not self._pattern.match(url):
            return self.fallback.status_list(url)
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
