"""Item-analysis report PDFs rendered by a background job and kept in the database.

A PDF of a large exam takes tens of seconds to draw and render, too long for a request. Asking
for one (:func:`request_pdf`) stores a ``queued`` :class:`ReportPdf` row (who asked, when, the
report's scope) and queues :data:`RENDER_PDF` once that row is committed; a ``microcred worker``
renders it (:func:`assessment.psych.jobs.render_report_pdf`), writing its stage to the row as it
goes, and stores the PDF's bytes in the same row with the data range and the page count. The
PDF is kept in the database, not on a node's disk: app nodes are stateless, and any node can
serve the download.

Asking again for the same exam and scope while a PDF of it is queued or running returns that
one rather than queueing a second (the exam's row is locked while looking, so two requests at
once agree). A finished PDF is a snapshot of the data when it was rendered: asking again
afterwards renders a new one, since results may have come in.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from sqlalchemy import ForeignKey, LargeBinary, String, select
from sqlalchemy.orm import Mapped, Session, deferred, mapped_column

from assessment.exams import Exam
from assessment.psych.report import ReportScope
from microcred.db import Base, utcnow
from microcred.jobs import enqueue_after_commit

RENDER_PDF = "psych.render_report_pdf"
STATES = ("queued", "running", "finished", "failed")
ERROR_LENGTH = 1000
#: The keys of the report's scope a PDF is asked for with (the report page's query string).
SCOPE_KEYS = ("form", "since", "until", "dif", "reference", "focal")


class ReportPdf(Base):
    """One rendering of an exam's item-analysis report as PDF."""

    __tablename__ = "report_pdfs"

    id: Mapped[int] = mapped_column(primary_key=True)
    exam_id: Mapped[int] = mapped_column(ForeignKey("exams.id"), index=True)
    #: The scope as asked: ``{"form": "F1", "since": "2026-01-01", "until": ...}`` (keys given only).
    scope: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: sha256 of the exam id and the scope: the same report asked twice has the same key.
    scope_key: Mapped[str] = mapped_column(String(64), index=True)
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    requested_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    state: Mapped[str] = mapped_column(String(20), default="queued")
    #: ``{"stage": "...", "done": n, "total": m}``: what the job is doing now.
    progress: Mapped[dict[str, Any] | None]
    error: Mapped[str | None] = mapped_column(String(ERROR_LENGTH))
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]
    #: What the PDF covers, as its cover says: "2026-01-02 to 2026-03-04".
    data_range: Mapped[str | None] = mapped_column(String(100))
    n_candidates: Mapped[int | None]
    n_items: Mapped[int | None]
    n_pages: Mapped[int | None]
    size: Mapped[int | None]
    sha256: Mapped[str | None] = mapped_column(String(64))
    render_seconds: Mapped[float | None]
    #: The PDF itself (loaded only when downloaded).
    pdf: Mapped[bytes | None] = deferred(mapped_column(LargeBinary))

    @property
    def shown_scope(self) -> dict[str, str]:
        """The scope as the report page's query string has it."""
        return {k: v for k, v in (self.scope or {}).items() if k in SCOPE_KEYS}

    @property
    def done(self) -> bool:
        return self.state in ("finished", "failed")

    def filename(self, exam_code: str) -> str:
        parts = [exam_code, "item-analysis"] + [str(self.scope[k]) for k in ("form", "since", "until")
                                                if self.scope.get(k)]
        safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in "-".join(parts))
        return f"{safe}-{self.id}.pdf"

    def message(self) -> str:
        """One sentence on where the job stands (the page's live status line)."""
        progress = self.progress or {}
        if self.state == "queued":
            return "Queued: waiting for a job worker to render it."
        if self.state == "running":
            stage = progress.get("stage", "working")
            total = progress.get("total")
            if total:
                return f"Running: {stage} ({progress.get('done', 0)} of {total})."
            return f"Running: {stage}."
        if self.state == "failed":
            return f"Failed: {self.error or 'no reason was recorded'}"
        return (f"Finished: {self.n_pages} pages, {self.size / 1e6:.1f} MB, rendered in "
                f"{self.render_seconds:.0f} s.")

    def progress_dict(self) -> dict[str, Any]:
        progress = self.progress or {}
        return {"id": self.id, "state": self.state, "stage": progress.get("stage"),
                "done": progress.get("done", 0), "total": progress.get("total", 0),
                "message": self.message(), "error": self.error}


def scope_key(exam_id: int, scope: dict[str, str]) -> str:
    text = json.dumps({"exam": exam_id, **{k: scope[k] for k in sorted(scope)}}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def request_pdf(session: Session, exam: Exam, scope: dict[str, str], *,
                by_id: int | None) -> tuple[ReportPdf, bool]:
    """The PDF of ``exam``'s report over ``scope`` (already checked: a report scope the report
    page accepted): the one queued or running for the same scope if there is one (reused:
    True), else a new queued row whose job is queued when the session commits. Flushed, not
    committed."""
    scope = {k: str(scope[k]) for k in (*SCOPE_KEYS, "min_group") if scope.get(k)}
    key = scope_key(exam.id, {k: v for k, v in scope.items() if k in SCOPE_KEYS})
    # one request at a time per exam decides whether a job is running (no two queued twins)
    session.execute(select(Exam.id).where(Exam.id == exam.id).with_for_update())
    running = session.scalar(
        select(ReportPdf)
        .where(ReportPdf.scope_key == key, ReportPdf.state.in_(("queued", "running")))
        .order_by(ReportPdf.id.desc())
        .limit(1)
    )
    if running is not None:
        return running, True
    row = ReportPdf(exam_id=exam.id, scope=scope, scope_key=key, requested_by_id=by_id,
                    state="queued", progress={"stage": "waiting for a job worker"})
    session.add(row)
    session.flush()
    enqueue_after_commit(session, RENDER_PDF, row.id)
    return row, False


def report_scope(exam: Exam, scope: dict[str, Any]) -> ReportScope:
    """The :class:`ReportScope` of a stored scope (checked when it was asked for)."""
    form = None
    if scope.get("form"):
        form = next((ef.form for ef in exam.forms if ef.form.code == scope["form"]), None)
        if form is None:
            from assessment.psych.errors import AnalysisError

            raise AnalysisError(f"exam {exam.code} no longer has form {scope['form']!r}")
    day = dt.date.fromisoformat
    out = ReportScope(exam=exam, form=form,
                      since=day(scope["since"]) if scope.get("since") else None,
                      until=day(scope["until"]) if scope.get("until") else None)
    if scope.get("min_group"):
        out.min_group = int(scope["min_group"])
    if scope.get("dif"):
        out.dif_attribute = scope["dif"]
        out.dif_reference, out.dif_focal = scope.get("reference"), scope.get("focal")
    return out


def report_groups(session: Session, scope: ReportScope) -> dict[int, str] | None:
    """The DIF groups of the scope's attribute (None without one)."""
    if not scope.dif_attribute:
        return None
    from assessment.candidate_attributes import groups_of_results

    return groups_of_results(session, scope.dif_attribute, scope.exam.id)


def pdfs_of_exam(session: Session, exam_id: int, *, limit: int = 10) -> list[ReportPdf]:
    """The exam's newest PDFs (without their bytes)."""
    return list(session.scalars(
        select(ReportPdf).where(ReportPdf.exam_id == exam_id)
        .order_by(ReportPdf.id.desc()).limit(limit)
    ))
