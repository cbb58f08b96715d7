"""Where credentials read their settings: the running app's ``Settings`` when there is one,
else the environment (``MICROCRED_*``, read by ``microcred.environment`` as the app reads it),
so that services and the signal receiver work with and without a Flask request.

- ``MICROCRED_PUBLIC_URL``: the public base URL that badge pages, status lists and ids use.
- ``MICROCRED_DID_WEB``: ``1`` to identify issuers by ``did:web`` on that host (it must serve
  ``/.well-known/did.json`` over HTTPS); default: ``did:key`` (self-contained, no hosting).
- ``MICROCRED_CREDENTIAL_KEY``: the key-encryption key for issuer private keys; default: a
  random key generated once into the instance folder (``credential_key``).
- ``MICROCRED_ISSUER_NAME`` / ``MICROCRED_ISSUER_URL`` / ``MICROCRED_ISSUER_EMAIL``: the default
  issuer profile created on first use.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from microcred import environment


@dataclass(frozen=True)
class CredentialConfig:
    base_url: str
    instance_dir: Path
    did_web: bool = False
    issuer_name: str = "Microcred"
    issuer_url: str | None = None
    issuer_email: str | None = None

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + "/" + path.lstrip("/")


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def current() -> CredentialConfig:
    from flask import current_app, has_app_context

    settings = current_app.config.get("MICROCRED") if has_app_context() else None
    if settings is not None:  # the app's (tests give it their own base URL and folder)
        base_url, instance = settings.public_base_url, Path(settings.instance_dir)
    else:
        base_url, instance = environment.public_url(), environment.instance_dir()
    return CredentialConfig(
        base_url=base_url.rstrip("/"),
        instance_dir=instance,
        did_web=_flag("MICROCRED_DID_WEB"),
        issuer_name=os.environ.get("MICROCRED_ISSUER_NAME", "Microcred"),
        issuer_url=os.environ.get("MICROCRED_ISSUER_URL") or None,
        issuer_email=os.environ.get("MICROCRED_ISSUER_EMAIL") or None,
    )
