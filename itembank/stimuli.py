"""Item sets: several items sharing one stimulus (a passage, an exhibit, a case).

A :class:`~itembank.models.Stimulus` is written here, its content sanitized like every item
field. An item joins the set by naming the stimulus (``ItemVersion.stimulus_id``, through
``itembank.authoring``). A stimulus version is edited only until a published item version uses
it; after that a change is a new version (:func:`new_stimulus_version`), which drafts then
point at, so what candidates saw stays true.

Forms keep a set's members next to each other (``itembank.forms`` places them at the first
member's place), and an attempt's item shuffle moves a set as one block
(:func:`shuffle_keeping_sets`).
"""
from __future__ import annotations

import random
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from itembank.content import sanitize_html
from itembank.models import DRAFT, ItemVersion, Stimulus
from itembank.types import ItemDefinitionError

KINDS = ("passage", "exhibit", "case")


class StimulusError(ItemDefinitionError):
    """A stimulus that cannot be written as asked."""


def _checked(kind: str, title: str, content: str) -> tuple[str, str, str]:
    if kind not in KINDS:
        raise StimulusError(f"a stimulus is a {', '.join(KINDS)}; got {kind!r}", field="kind")
    if not title.strip() or len(title) > 200:
        raise StimulusError("a stimulus needs a title of at most 200 characters", field="title")
    cleaned = sanitize_html(content, "content")
    if not cleaned.strip():
        raise StimulusError("the stimulus has no content", field="content")
    return kind, title.strip(), cleaned


def create_stimulus(session: Session, *, code: str, kind: str, title: str,
                    content: str) -> Stimulus:
    if not code.strip() or len(code) > 64:
        raise StimulusError("a stimulus needs a code of at most 64 characters", field="code")
    if session.scalar(select(Stimulus.id).where(Stimulus.code == code)) is not None:
        raise StimulusError(f"a stimulus with code {code} already exists", field="code")
    kind, title, content = _checked(kind, title, content)
    stimulus = Stimulus(code=code, version=1, kind=kind, title=title, content=content)
    session.add(stimulus)
    session.flush()
    return stimulus


def in_published_use(session: Session, stimulus: Stimulus) -> bool:
    return bool(session.scalar(select(func.count()).select_from(ItemVersion).where(
        ItemVersion.stimulus_id == stimulus.id, ItemVersion.status != DRAFT)))


def revise_stimulus(session: Session, stimulus: Stimulus, *, kind: str | None = None,
                    title: str | None = None, content: str | None = None) -> Stimulus:
    """Change a stimulus no published (or submitted) item version uses yet."""
    if in_published_use(session, stimulus):
        raise StimulusError(
            f"stimulus {stimulus.code} version {stimulus.version} is used by a published item "
            "and is never edited: make a new version of it instead", field="content")
    stimulus.kind, stimulus.title, stimulus.content = _checked(
        kind or stimulus.kind, title if title is not None else stimulus.title,
        content if content is not None else stimulus.content)
    session.flush()
    return stimulus


def new_stimulus_version(session: Session, stimulus: Stimulus) -> Stimulus:
    newest = session.scalar(select(func.max(Stimulus.version)).where(
        Stimulus.code == stimulus.code))
    copy = Stimulus(code=stimulus.code, version=(newest or 0) + 1, kind=stimulus.kind,
                    title=stimulus.title, content=stimulus.content)
    session.add(copy)
    session.flush()
    return copy


def _blocks(ids: Sequence[int], stimulus_of: dict[int, int | None]) -> list[list[int]]:
    """Consecutive runs of ``ids``: each set's members together, other items alone, in the
    order each block first appears."""
    blocks: list[list[int]] = []
    where: dict[int, list[int]] = {}
    for vid in ids:
        sid = stimulus_of.get(vid)
        if sid is None:
            blocks.append([vid])
        elif sid in where:
            where[sid].append(vid)
        else:
            where[sid] = [vid]
            blocks.append(where[sid])
    return blocks


def shuffle_keeping_sets(order: list[int], stimulus_of: dict[int, int | None],
                         rng: random.Random) -> list[int]:
    """The attempt's item shuffle: blocks (a set, or one item) in random order, a set's
    members in their form order."""
    blocks = _blocks(order, stimulus_of)
    rng.shuffle(blocks)
    return [vid for block in blocks for vid in block]
