"""Verifying a list of credentials at once: several uploaded files and pasted links, each
verified by :func:`credentials.verify.verify` (the one verifier, its steps reported as the single
verify page reports them) with the resolver the caller gives.

A link to one of this Microcred's badge pages (``<base>/badges/<id>``, or its
``credential.json``/``credential.jwt``/``badge.png``/``badge.svg`` download) is read from the
database; any other link is fetched through :class:`credentials.remote.Fetcher`, which refuses
private and loopback addresses, caps size and time (a pasted link is a stranger's choice).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from credentials.config import CredentialConfig
from credentials.errors import CredentialError
from credentials.models import Credential
from credentials.remote import Fetcher
from credentials.verify import STEPS, Report, Resolver, Step, verify

MAX_ITEMS = 20
#: The whole request: several baked images (a badge PNG is typically well under 1 MB; each
#: file is still held to the verifier's own per-input limit).
MAX_BODY_BYTES = 24 * 1024 * 1024


@dataclass
class Checked:
    #: the file name or the link, as the person gave it
    source: str
    report: Report


def _unreadable(message: str) -> Report:
    report = Report(status="invalid")
    report.steps.append(Step("format", False, message))
    report.steps += [Step(n, None, "not checked: the input could not be read") for n in STEPS[1:]]
    return report


def links_of(text: str) -> list[str]:
    """The non-empty lines of a pasted list, one link per line."""
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def _our_badge(session: Session, cfg: CredentialConfig, link: str) -> Credential | None:
    pattern = re.escape(cfg.base_url.rstrip("/")) + (
        r"/badges/([0-9a-fA-F-]{36})(?:/(?:credential\.json|credential\.jwt|badge\.png|badge\.svg))?/?$")
    match = re.match(pattern, link)
    if not match:
        return None
    return session.scalar(select(Credential).where(Credential.public_id == match.group(1)))


def _read_link(session: Session, cfg: CredentialConfig, link: str,
               fetcher: Fetcher) -> bytes | str:
    ours = _our_badge(session, cfg, link)
    if ours is not None:
        if link.endswith("credential.jwt"):
            from credentials.issuance import as_jwt

            return as_jwt(session, cfg, ours)
        return ours.document
    if link.startswith(cfg.base_url.rstrip("/") + "/badges/"):
        raise CredentialError("there is no badge at this address on this site")
    return fetcher.fetch(link)


def verify_many(session: Session, cfg: CredentialConfig, resolver: Resolver, *,
                files: list[tuple[str, bytes]], links: list[str],
                fetcher: Fetcher | None = None, **options: Any) -> list[Checked]:
    """Verify each file and each link, in the order given. Raises CredentialError when there
    is nothing to verify or more than :data:`MAX_ITEMS`."""
    if not files and not links:
        raise CredentialError("choose one or more files, or paste one or more links")
    if len(files) + len(links) > MAX_ITEMS:
        raise CredentialError(f"at most {MAX_ITEMS} credentials at once; you gave "
                              f"{len(files) + len(links)}")
    fetcher = fetcher or Fetcher.from_env()
    out = [Checked(name or "(unnamed file)", verify(data, resolver, **options))
           for name, data in files]
    for link in links:
        if not re.match(r"https?://", link):
            out.append(Checked(link, _unreadable(
                "This is not a link: paste addresses that start with https:// (one per line), "
                "or upload the files")))
            continue
        try:
            data = _read_link(session, cfg, link, fetcher)
        except CredentialError as exc:
            out.append(Checked(link, _unreadable(f"The link could not be read: {exc}")))
            continue
        out.append(Checked(link, verify(data, resolver, **options)))
    return out
