"""Every class a page puts on a button is styled (issue 9, finding 23: ``button-primary`` was used
on three pages and styled nowhere, so their main buttons looked like every other)."""
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
