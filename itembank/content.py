"""Item content is HTML with MathML: one sanitizer, applied on every write.

:func:`sanitize_html` is the only way content reaches the bank: every authoring service
(``itembank.authoring`` for stems, options, sentences and rationales; ``itembank.stimuli`` for
passages and exhibits) passes each HTML field through it, so what is stored is already safe to
render, and a page may mark it ``safe``. It keeps an allowlist of tags and attributes (nh3,
the Rust ``ammonia`` sanitizer), drops scripts, styles, event handlers and ``javascript:``
URLs, and refuses (rather than silently strips) what an author would want to know about:

- an ``<img>`` without alt text ("alt text is required": WCAG 1.1.1);
- an image or audio whose source is not media stored in the bank (``/media/<sha256>``): the
  exam page loads nothing from elsewhere (no tracking, nothing that changes after review).
"""
from __future__ import annotations

import functools
import re
from html.parser import HTMLParser

import nh3

from itembank.types import ItemDefinitionError, item_type

MAX_HTML_LENGTH = 100_000
MEDIA_SRC = re.compile(r"/media/[0-9a-f]{64}")

_TEXT = {"p", "br", "hr", "strong", "em", "b", "i", "u", "s", "sub", "sup", "small", "code",
         "pre", "kbd", "samp", "var", "q", "cite", "abbr", "blockquote", "span", "div",
         "h3", "h4", "h5", "h6", "ul", "ol", "li", "dl", "dt", "dd", "table", "caption", "thead",
         "tbody", "tfoot", "tr", "th", "td", "colgroup", "col", "figure", "figcaption", "a",
         "img", "audio", "source"}
# MathML Core (W3C, 2023) presentation elements, and the annotation a converter may carry
_MATHML = {"math", "mi", "mn", "mo", "ms", "mtext", "mspace", "mrow", "mfrac", "msqrt", "mroot",
           "mstyle", "merror", "mpadded", "mphantom", "menclose", "msub", "msup", "msubsup",
           "munder", "mover", "munderover", "mmultiscripts", "mprescripts", "none", "mtable",
           "mtr", "mtd", "semantics", "annotation", "annotation-xml"}
TAGS = _TEXT | _MATHML

ATTRIBUTES: dict[str, set[str]] = {
    "*": {"lang", "dir"},
    "a": {"href", "title"},
    "abbr": {"title"},
    "img": {"src", "alt", "width", "height"},
    "audio": {"src", "controls"},
    "source": {"src", "type"},
    "ol": {"start", "type", "reversed"},
    "th": {"scope", "colspan", "rowspan", "headers", "id"},
    "td": {"colspan", "rowspan", "headers"},
    "col": {"span"},
    "colgroup": {"span"},
    "math": {"display", "alttext"},
    "mi": {"mathvariant"},
    "mo": {"form", "fence", "separator", "stretchy", "symmetric", "largeop", "movablelimits",
           "lspace", "rspace", "minsize", "maxsize", "accent"},
    "mfrac": {"linethickness"},
    "mspace": {"width", "height", "depth"},
    "mpadded": {"width", "height", "depth", "lspace", "voffset"},
    "mstyle": {"displaystyle", "scriptlevel", "mathvariant"},
    "mtable": {"columnalign", "rowalign", "columnspacing", "rowspacing"},
    "mtd": {"columnspan", "rowspan", "columnalign"},
    "mover": {"accent"},
    "munder": {"accentunder"},
    "menclose": {"notation"},
    "annotation": {"encoding"},
    "annotation-xml": {"encoding"},
}


class ContentError(ItemDefinitionError):
    """Content refused on write; the message names the field and what to change."""


def _attribute(tag: str, name: str, value: str) -> str | None:
    if name == "src" and tag in {"img", "audio", "source"}:
        # refused below with a message; here it only never survives
        return value if MEDIA_SRC.fullmatch(value) else None
    return value


@functools.lru_cache(maxsize=16384)
def _clean(html: str) -> str:
    """The sanitized fragment. Cached per process by its text (a pure function of it): a
    thousand runner pages on exam day show the same stems and options, and sanitizing them
    was the largest part of each page's cost."""
    return nh3.clean(
        html, tags=TAGS, attributes=ATTRIBUTES, url_schemes={"https", "mailto"},
        clean_content_tags={"script", "style"}, link_rel="noopener noreferrer nofollow",
        attribute_filter=_attribute, strip_comments=True,
        set_tag_attribute_values={"audio": {"controls": ""}},
    )


class _Media(HTMLParser):
    """Collects the images and media sources of a fragment, to check them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in {"img", "audio", "source"}:
            self.found.append((tag, dict(attrs)))


def sanitize_html(html: str, where: str = "content") -> str:
    """``html`` made safe to store and render, or :class:`ContentError` naming ``where``.

    The result is stable: sanitizing it again returns it unchanged."""
    if not isinstance(html, str):
        raise ContentError(f"{where} must be text (HTML), got {type(html).__name__}", field=where)
    if len(html) > MAX_HTML_LENGTH:
        raise ContentError(f"{where} has {len(html)} characters; at most {MAX_HTML_LENGTH}",
                           field=where)
    cleaned = _clean(html)
    # the author's markup names the source in the message; the cleaned markup (what html5ever
    # parsed, and what is stored) is the one that must pass
    for fragment in (html, cleaned):
        _check_media(fragment, where)
    return cleaned


def _check_media(html: str, where: str) -> None:
    raw = _Media()
    raw.feed(html)
    for n, (tag, attrs) in enumerate(raw.found, 1):
        what = "image" if tag == "img" else "audio"
        src = attrs.get("src")
        if tag == "img" and not (attrs.get("alt") or "").strip():
            raise ContentError(
                f"{where}: image {n} ({src or 'no source'}) has no alt text; describe what it "
                "shows in its alt attribute (alt text is required for every image)", field=where)
        if (src is not None or tag == "img") and not MEDIA_SRC.fullmatch(src or ""):
            raise ContentError(
                f"{where}: {what} {n} comes from {(src or 'nowhere')[:80]!r}; upload it to the "
                "bank and use its /media/ address (exam pages load nothing from elsewhere)",
                field=where)


_TAG = re.compile(r"<[A-Za-z!/]")


def display_html(value: str, *, inline: bool = False) -> str:
    """Stored content ready for a page, sanitized again (cheap, and it keeps a row written
    around the services safe). A block field (a stem, a stimulus) written as plain text, with
    no tags, has its blank-line-separated paragraphs made ``<p>`` paragraphs."""
    value = value or ""
    if inline or _TAG.search(value):
        return _clean(value)
    return "".join(f"<p>{_clean(p.strip())}</p>" for p in re.split(r"\n\s*\n", value.strip())
                   if p.strip())


def clean_item_content(type_name: str, *, stem: str, interaction: dict,
                       rationale: str = "") -> tuple[str, dict, str]:
    """An item's HTML fields sanitized (its stem, rationale and the fields its type names), or
    :class:`ContentError` naming the first refused field. The one call every authoring service
    makes before it writes an item version."""
    kind = item_type(type_name)
    if not isinstance(interaction, dict):
        raise ContentError("interaction must be an object", field="interaction")
    cleaned = kind.clean_content(interaction, sanitize_html)
    return (sanitize_html(stem, "stem"), cleaned,
            sanitize_html(rationale, "rationale") if rationale else rationale)
