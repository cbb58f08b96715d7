"""Microcred's two identity verifiers, shipped as plugins of :mod:`proctoring.hooks`.

- ``proctor``: a person compares the selfie with the photo ID. Called automatically it answers
  ``pending``; the proctor's admit or reject (``proctoring.identity.decide``) is its verdict.
- ``face_count``: exactly one face in each image passes; anything else fails with the counts, and
  the session waits for the proctor (the finding is raised as a flag for them to see).

An exam's policy names which verifiers must pass (``policy["proctoring"]["identity"]``).
"""
from __future__ import annotations

from proctoring.faces import ImageUnreadable, count_faces
from proctoring.hooks import IdentityOutcome, IdentityRequest, hookimpl


class ProctorVerifier:
    name = "proctor"

    @hookimpl
    def microcred_verify_identity(self, request: IdentityRequest) -> IdentityOutcome | None:
        if self.name not in request.required:
            return None
        return IdentityOutcome(self.name, "pending",
                               "waiting for a proctor to compare the photo with the ID")


class FaceCountVerifier:
    name = "face_count"

    @hookimpl
    def microcred_verify_identity(self, request: IdentityRequest) -> IdentityOutcome | None:
        counts: dict[str, int | None] = {}
        problems = []
        for label, image in (("selfie", request.selfie), ("id_document", request.id_document)):
            try:
                counts[label] = count_faces(image).faces
            except ImageUnreadable as exc:
                counts[label] = None
                problems.append(f"{label.replace('_', ' ')}: {exc}")
                continue
            n = counts[label]
            if n != 1:
                problems.append(f"{label.replace('_', ' ')}: {'no face' if n == 0 else f'{n} faces'} found")
        if problems:
            return IdentityOutcome(self.name, "failed", "; ".join(problems), {"faces": counts})
        return IdentityOutcome(self.name, "passed", "exactly one face in each image",
                               {"faces": counts})


proctor_verifier = ProctorVerifier()
face_count_verifier = FaceCountVerifier()
