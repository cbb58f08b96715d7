"""The one sanitizer of item content: scripts, styles, event handlers and javascript: URLs go,
MathML stays, an image needs alt text and must come from the bank, and every authoring service
applies it (a stem, an option, a sentence, a stimulus: nothing stored half-written)."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from itembank.authoring import create_item, revise_version
from itembank.content import ContentError, display_html, sanitize_html
from itembank.models import Item, Stimulus
from itembank.stimuli import create_stimulus

IMG = "/media/" + "a" * 64
OPTIONS = {"options": [{"id": x, "text": f"Option {x}"} for x in "ABCD"]}


@pytest.mark.parametrize("dirty,gone", [
    ("<p>Hi<script>alert(1)</script></p>", "alert"),
    ('<p onclick="steal()">Hi</p>', "steal"),
    ('<a href="javascript:alert(1)">link</a>', "javascript"),
    ('<a href="JaVaScRiPt:alert(1)">link</a>', "alert"),
    (f'<img src="{IMG}" alt="x" onerror="steal()">', "steal"),
    ("<style>p { color: red }</style><p>x</p>", "color"),
    ('<p style="background:url(evil)">x</p>', "evil"),
    ('<iframe src="https://evil.example"></iframe>', "iframe"),
    ("<svg><script>alert(1)</script></svg>", "alert"),
    ('<math><mi xlink:href="javascript:alert(1)">x</mi></math>', "javascript"),
    ("<form action=/signout><button>Go</button></form>", "form"),
    ("<!-- a note --><p>x</p>", "a note"),
])
def test_dangerous_markup_is_removed(dirty, gone):
    clean = sanitize_html(dirty)
    assert gone.lower() not in clean.lower()
    assert sanitize_html(clean) == clean  # stable: sanitizing twice changes nothing


def test_mathml_tables_and_safe_links_are_kept():
    html = ('<p>Solve <math display="block"><mfrac><mrow><mi>a</mi><mo>+</mo><mn>1</mn></mrow>'
            '<msup><mi>x</mi><mn>2</mn></msup></mfrac></math></p>'
            '<table><caption>Doses</caption><tr><th scope="col">mg</th></tr><tr><td>5</td></tr></table>'
            '<a href="https://www.cms.gov/">CMS</a>')
    clean = sanitize_html(html)
    for kept in ('<math display="block">', "<mfrac>", "<msup>", "<mo>+</mo>", '<th scope="col">',
                 "<caption>Doses</caption>", 'href="https://www.cms.gov/"'):
        assert kept in clean
    assert 'rel="noopener noreferrer nofollow"' in clean


def test_an_image_needs_alt_text_and_a_bank_address():
    assert 'alt="A claim form"' in sanitize_html(f'<img src="{IMG}" alt="A claim form">')
    for bad in (f'<img src="{IMG}">', f'<img src="{IMG}" alt="  ">', f"<p><IMG SRC={IMG}></p>"):
        with pytest.raises(ContentError, match="has no alt text") as err:
            sanitize_html(bad, "stem")
        assert err.value.field == "stem"
    with pytest.raises(ContentError, match="upload it to the bank"):
        sanitize_html('<img src="https://tracker.example/p.gif" alt="x">', "stem")
    with pytest.raises(ContentError, match="upload it to the bank"):
        sanitize_html('<audio src="data:audio/mp3;base64,AAAA"></audio>', "stimulus")


def test_plain_text_is_shown_as_paragraphs_and_escaped():
    stored = sanitize_html("Is 2 < 3 & 4 > 1?\n\nSecond paragraph.")
    assert display_html(stored) == "<p>Is 2 &lt; 3 &amp; 4 &gt; 1?</p><p>Second paragraph.</p>"
    assert display_html("E11.9 & more", inline=True) == "E11.9 &amp; more"


def test_every_authoring_write_is_sanitized_and_a_refusal_stores_nothing(db):
    version = create_item(
        db, code="SAN-1", item_type_name="single_choice", domain_code="A",
        stem='<p onmouseover="x()">Which <script>bad()</script>one?</p>',
        interaction={"options": [{"id": "A", "text": '<b onclick="x()">Yes</b>'},
                                 {"id": "B", "text": "No"}]},
        key={"correct": ["A"]}, rationale='<p><a href="javascript:x()">why</a></p>')
    assert version.stem == "<p>Which one?</p>"
    assert version.interaction["options"][0]["text"] == "<b>Yes</b>"
    assert "javascript" not in version.rationale
    revise_version(db, version, interaction={"options": [
        {"id": "A", "text": "<i>Yes</i><script>x()</script>"}, {"id": "B", "text": "No"}]})
    assert version.interaction["options"][0]["text"] == "<i>Yes</i>"
    # a refused image names its field, and nothing is written
    with pytest.raises(ContentError, match=r"interaction.options\[1\].text: image 1") as err:
        create_item(db, code="SAN-2", item_type_name="single_choice", domain_code="A", stem="Q?",
                    interaction={"options": [{"id": "A", "text": "a"},
                                             {"id": "B", "text": f'<img src="{IMG}">'}]},
                    key={"correct": ["A"]})
    assert err.value.field == "interaction.options[1].text"
    assert db.scalar(select(func.count()).select_from(Item).where(Item.code == "SAN-2")) == 0
    with pytest.raises(ContentError, match="sentence"):
        create_item(db, code="SAN-3", item_type_name="inline_choice", domain_code="A", stem="Q",
                    interaction={"sentence": f'<p>[[g]] <img src="{IMG}"></p>',
                                 "gaps": [{"id": "g", "options": [{"id": "a", "text": "a"},
                                                                  {"id": "b", "text": "b"}]}]},
                    key={"correct": {"g": "a"}})
    stimulus = create_stimulus(db, code="S-1", kind="passage", title="A passage",
                               content='<p>Text<script>x()</script></p>')
    assert stimulus.content == "<p>Text</p>"
    with pytest.raises(ContentError, match="alt text"):
        create_stimulus(db, code="S-2", kind="exhibit", title="x", content=f'<img src="{IMG}">')
    assert db.scalar(select(func.count()).select_from(Stimulus)) == 1
