"""The exceptions the credentials package raises; each message names what was wrong."""
from __future__ import annotations

from microcred.errors import DomainError


class CredentialError(DomainError):
    """Base class: a credential, key, image or status list could not be processed."""

    status, code = 422, "credential_refused"


class MalformedInput(CredentialError):
    """The input is not what was asked for (not JSON, not a credential, a broken image)."""

    status, code = 400, "malformed_input"


class ContextNotBundled(CredentialError):
    """A JSON-LD context that Microcred does not ship was requested: nothing is fetched."""


class ProofError(CredentialError):
    """A proof is missing, malformed or does not verify."""


class KeyResolutionError(CredentialError):
    """An issuer's verification method could not be resolved to a public key."""


class StatusListError(CredentialError):
    """A status list credential is missing, malformed or too short."""
