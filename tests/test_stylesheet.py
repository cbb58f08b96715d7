"""What the pages' markup and the stylesheets owe each other, checked in the source: every class
a page puts on a button is styled (issue 9, finding 23: ``button-primary`` was used on three pages
and styled nowhere), and every box that scrolls a wide table is a named keyboard stop (28)."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLASS_ATTR = re.compile(r'class="([^"{}]*)"')
JS_CLASS = re.compile(r'className\s*=\s*"([^"]*)"')


def _stylesheet_classes() -> set[str]:
    css = "\n".join(p.read_text() for p in (ROOT / "static").rglob("*.css"))
    return set(re.findall(r"\.([A-Za-z_][\w-]*)", css))


def _button_class_lists() -> list[tuple[str, list[str]]]:
    found = []
    for path in list((ROOT / "templates").rglob("*.html")) + list((ROOT / "static").rglob("*.js")):
        text = path.read_text()
        for match in list(CLASS_ATTR.finditer(text)) + list(JS_CLASS.finditer(text)):
            tokens = match.group(1).split()
            if "button" in tokens:
                found.append((str(path.relative_to(ROOT)), tokens))
    return found


def test_every_class_on_a_button_has_a_rule_in_a_stylesheet():
    styled = _stylesheet_classes()
    used = _button_class_lists()
    assert len(used) > 20, "the scan found the pages' buttons"
    unstyled = sorted({f"{where}: .{token}" for where, tokens in used for token in tokens
                       if token not in styled})
    assert not unstyled, "classes on buttons that no stylesheet styles:\n" + "\n".join(unstyled)


def test_every_scrolling_table_box_is_a_named_keyboard_stop():
    """A ``.table-scroll`` box scrolls when its table is wider than the screen; a keyboard user
    can scroll it only if it takes focus, and a screen reader says what it is only if it is a
    named region (axe: scrollable-region-focusable, serious). Checked in the markup, since
    whether it overflows depends on the width of the screen."""
    boxes = []
    for path in (ROOT / "templates").rglob("*.html"):
        for tag in re.findall(r"<div[^>]*\bclass=\"table-scroll\"[^>]*>", path.read_text()):
            boxes.append((str(path.relative_to(ROOT)), tag))
    assert len(boxes) > 5, "the scan found the scrolling tables"
    bad = [f"{where}: {tag}" for where, tag in boxes
           if 'tabindex="0"' not in tag or 'role="region"' not in tag
           or not re.search(r'aria-label(ledby)?="[^"]+"', tag)]
    assert not bad, "scrolling tables a keyboard cannot reach or a screen reader cannot name:\n" \
        + "\n".join(bad)
