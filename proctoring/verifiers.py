"""Microcred's two identity verifiers, shipped as plugins of :mod:`proctoring.hooks`.

- ``proctor``: a person compares the selfie with the photo ID. Called automatically it answers
  ``pending``; the proctor's admit or reject (``proctoring.identity.decide``) is its verdict.
- ``face_count``: exactly one face in each image passes; anything else fails with the counts, and
  the session waits for the proctor (the finding is raised as a flag for them to see).

An exam's policy names which verifiers must pass (``policy["proctoring"]["identity"]``).

:func:`finding` is the one place a verifier's result is put into words for proctors
("Automatic check: no face found in the selfie"); every page and flag uses it.
"""
from __future__ import annotations

from proctoring import hooks
from proctoring.faces import ImageUnreadable, count_faces
from proctoring.hooks import IdentityOutcome, IdentityRequest, hookimpl

#: what each image is called when telling people about it
IMAGE_NAMES = {"selfie": "the selfie", "id_document": "the photo ID"}


class ProctorVerifier:
    name = "proctor"
    label = "Proctor"

    @hookimpl
    def microcred_verify_identity(self, request: IdentityRequest) -> IdentityOutcome | None:
        if self.name not in request.required:
            return None
        return IdentityOutcome(self.name, "pending",
                               "waiting for a proctor to compare the photo with the ID")


class FaceCountVerifier:
    name = "face_count"
    label = "Automatic check"

    @hookimpl
    def microcred_verify_identity(self, request: IdentityRequest) -> IdentityOutcome | None:
        counts: dict[str, int | None] = {}
        problems = []
        for label, image in (("selfie", request.selfie), ("id_document", request.id_document)):
            try:
                counts[label] = count_faces(image).faces
            except ImageUnreadable as exc:
                counts[label] = None
                problems.append(f"{IMAGE_NAMES[label]} could not be read ({exc})")
                continue
            n = counts[label]
            if n != 1:
                problems.append(f"{'no face' if n == 0 else f'{n} faces'} found in "
                                f"{IMAGE_NAMES[label]}")
        if problems:
            return IdentityOutcome(self.name, "failed", "; ".join(problems), {"faces": counts})
        return IdentityOutcome(self.name, "passed", "exactly one face in each image",
                               {"faces": counts})


proctor_verifier = ProctorVerifier()
face_count_verifier = FaceCountVerifier()


def label(verifier: str) -> str:
    """A verifier's name for people: its plugin's ``label``, else its name in words."""
    try:
        plugin = hooks.plugin_manager().get_plugin(verifier)
    except Exception:  # noqa: BLE001 - a broken plugin set still lets the page say something
        plugin = None
    return getattr(plugin, "label", None) or verifier.replace("_", " ").capitalize()


def finding(verifier: str, reason: str) -> str:
    """One verifier's result as a proctor reads it: ``Automatic check: no face found in the
    selfie``."""
    return f"{label(verifier)}: {reason}" if reason else label(verifier)


#: a check's outcome in words
OUTCOME_WORDS = {"passed": "passed", "failed": "did not pass", "pending": "waiting",
                 "error": "could not run"}


def outcome_words(outcome: str) -> str:
    return OUTCOME_WORDS.get(outcome, outcome)
