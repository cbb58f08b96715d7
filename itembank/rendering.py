"""How an item looks, in one place: every page that shows an item renders it from its public
payload (``itembank.types.public_payload``: no key, no scoring rule, no rationale) through one
Jinja template per interaction, ``templates/items/interactions/<type>.html``.

- :func:`render_item`: the whole item (stimulus, stem, interaction) for the authoring preview,
  the review screens and the item-analysis page (``templates/items/item.html``);
- :func:`item_parts`: the same, in its parts, for the exam runner, which places the stimulus,
  the stem and the interaction in its own layout and receives them in its item payload;
  ``static/items/interactions.js`` reads and restores each interaction's value there.

The item editor's per-type fields are ``templates/items/editors/<type>.html``, read back by
``itembank.editors``. The Jinja filters the templates use are registered by :func:`init_app`.
"""
from __future__ import annotations

from typing import Any

from flask import Flask, render_template
from markupsafe import Markup

from itembank.content import display_html
from itembank.types import GAP_MARK, public_payload, sentence_parts


def _content(value: str) -> Markup:
    return Markup(display_html(value))


def _inline_content(value: str) -> Markup:
    return Markup(display_html(value, inline=True))


def _gap_parts(sentence: str) -> list[tuple[Markup, str | None]]:
    """The sanitized sentence split at its gap marks (split after sanitizing, so each part is
    a piece of one well-formed fragment)."""
    return [(Markup(before), gap)
            for before, gap in sentence_parts(display_html(sentence, inline=True))]


def init_app(app: Flask) -> None:
    """The filters the item templates use, and ``render_item`` / ``item_payload`` for any page
    that shows an item (``{{ render_item(item_payload(version), prefix="a1") }}``)."""
    app.jinja_env.filters["content"] = _content
    app.jinja_env.filters["inline_content"] = _inline_content
    app.jinja_env.filters["gap_parts"] = _gap_parts
    app.jinja_env.filters["gap_ids"] = lambda sentence: GAP_MARK.findall(sentence or "")
    app.jinja_env.globals["render_item"] = render_item
    app.jinja_env.globals["item_payload"] = public_payload


def _context(item: dict[str, Any], prefix: str, label: str | None,
             disabled: bool) -> dict[str, Any]:
    number = item.get("number")
    return {"item": item, "p": prefix,
            "label": label or (f"question {number}" if number else "this question"),
            "disabled": disabled}


def render_item(item: dict[str, Any], *, prefix: str, label: str | None = None,
                disabled: bool = False) -> Markup:
    """The whole item as candidates see it. ``prefix`` keeps ids unique when a page shows
    several items; ``disabled`` shows it read-only."""
    return Markup(render_template("items/item.html",
                                  **_context(item, prefix, label, disabled)))


def item_parts(item: dict[str, Any], *, prefix: str) -> dict[str, str | None]:
    """``{"stimulus", "stem", "interaction"}`` HTML of an item, for the exam runner."""
    ctx = _context(item, prefix, None, False)
    stimulus = item.get("stimulus")
    return {
        "stimulus": render_template("items/_stimulus.html", stimulus=stimulus, **ctx)
        if stimulus else None,
        "stem": str(_content(item["stem"])),
        "interaction": render_template(f"items/interactions/{item['type']}.html", **ctx),
    }
