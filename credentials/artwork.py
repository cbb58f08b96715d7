"""The badge picture: a medallion with the achievement's name, as PNG (Pillow) and SVG.

Both are real image files; :mod:`credentials.baking` embeds a credential in either.
"""
from __future__ import annotations

import hashlib
import io
import textwrap
from xml.sax.saxutils import escape

from PIL import Image, ImageDraw, ImageFont

SIZE = 512
FONT_PATHS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf",
)


def colour_for(code: str) -> str:
    """A stable, readable hue per achievement code."""
    hue = int(hashlib.sha256(code.encode()).hexdigest()[:4], 16) % 360
    return f"hsl({hue}, 55%, 38%)"


def _rgb(code: str) -> tuple[int, int, int]:
    import colorsys

    hue = (int(hashlib.sha256(code.encode()).hexdigest()[:4], 16) % 360) / 360
    r, g, b = colorsys.hls_to_rgb(hue, 0.38, 0.55)
    return int(r * 255), int(g * 255), int(b * 255)


def _font(size: int) -> ImageFont.ImageFont:
    for path in FONT_PATHS:
        try:
            return ImageFont.truetype(path, size)
        except OSError:
            continue
    return ImageFont.load_default(size)


def _lines(name: str) -> list[str]:
    return textwrap.wrap(name, width=16)[:4] or [name[:16]]


def render_png(name: str, code: str, issuer: str = "") -> bytes:
    img = Image.new("RGBA", (SIZE, SIZE), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    colour = _rgb(code)
    draw.ellipse((8, 8, SIZE - 8, SIZE - 8), fill=(255, 255, 255, 255), outline=colour, width=16)
    draw.ellipse((48, 48, SIZE - 48, SIZE - 48), fill=colour)
    font = _font(40)
    lines = _lines(name)
    y = SIZE / 2 - len(lines) * 24
    for line in lines:
        draw.text((SIZE / 2, y), line, font=font, fill="white", anchor="mt")
        y += 48
    if issuer:
        draw.text((SIZE / 2, SIZE - 96), issuer[:28], font=_font(20), fill="white", anchor="mm")
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def render_svg(name: str, code: str, issuer: str = "") -> bytes:
    colour = colour_for(code)
    lines = _lines(name)
    y0 = SIZE / 2 - len(lines) * 24 + 34
    text = "".join(
        f'<text x="256" y="{y0 + i * 48:.0f}" text-anchor="middle" font-size="40" '
        f'font-family="DejaVu Sans, Arial, sans-serif" font-weight="bold" fill="#fff">'
        f"{escape(line)}</text>"
        for i, line in enumerate(lines)
    )
    issuer_text = (
        f'<text x="256" y="423" text-anchor="middle" font-size="20" '
        f'font-family="DejaVu Sans, Arial, sans-serif" fill="#fff">{escape(issuer[:28])}</text>'
        if issuer else ""
    )
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{SIZE}" height="{SIZE}" '
        f'viewBox="0 0 {SIZE} {SIZE}" role="img" aria-label="{escape(name, {chr(34): "&quot;"})}">'
        f"<title>{escape(name)}</title>"
        f'<circle cx="256" cy="256" r="240" fill="#fff" stroke="{colour}" stroke-width="16"/>'
        f'<circle cx="256" cy="256" r="208" fill="{colour}"/>'
        f"{text}{issuer_text}</svg>"
    )
    return svg.encode("utf-8")
