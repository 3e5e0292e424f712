"""Accessibility checks on the compiled email: alt text, link text, headings, contrast.

A missing ``alt`` blocks (a screen reader reads the file name, and with images off the reader
sees nothing); the rest are advice. Contrast follows WCAG 2.x AA: 4.5:1, or 3:1 for large text
(24 px, or 18.66 px bold), from inline colours and the nearest ancestor background (``style``
or ``bgcolor``); the browser defaults (black on white) where nothing is set. Hidden text (the
preheader) counts too: SpamAssassin scores low-contrast text whether it shows or not
(HTML_FONT_LOW_CONTRAST).
"""

from __future__ import annotations

import re
from collections import defaultdict

from newsletter.content.qa_findings import QAReport
from newsletter.content.qa_html import ParsedEmail, TextRun

NORMAL_RATIO = 4.5
LARGE_RATIO = 3.0
_NAMED = {
    "white": "#ffffff",
    "black": "#000000",
    "red": "#ff0000",
    "green": "#008000",
    "blue": "#0000ff",
    "gray": "#808080",
    "grey": "#808080",
    "silver": "#c0c0c0",
    "yellow": "#ffff00",
    "orange": "#ffa500",
}
_HEX = re.compile(r"#([0-9a-f]{8}|[0-9a-f]{6}|[0-9a-f]{3,4})\b")
_RGB = re.compile(r"rgba?\(\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)")
_WORD = re.compile(r"\b([a-z]+)\b")


def check_accessibility(report: QAReport, parsed: ParsedEmail) -> None:
    _check_alt(report, parsed)
    _check_link_text(report, parsed)
    _check_headings(report, parsed)
    _check_contrast(report, parsed)


def _check_alt(report: QAReport, parsed: ParsedEmail) -> None:
    for image in parsed.images:
        if image.alt is None:
            report.add(
                "img-without-alt",
                f"image {image.src[:80]!r} has no alt attribute "
                '(alt="" if it is decoration, else what it shows)',
                blocking=True,
            )


def _check_link_text(report: QAReport, parsed: ParsedEmail) -> None:
    targets: dict[str, set[str]] = defaultdict(set)
    for link in parsed.links:
        if not link.text:
            report.add(
                "empty-link-text",
                f"the link to {link.href[:80]!r} has no text (a screen reader reads the URL)",
                blocking=False,
            )
            continue
        targets[link.text.casefold()].add(link.href)
    for text, hrefs in sorted(targets.items()):
        if len(hrefs) > 1:
            report.add(
                "duplicate-link-text",
                f"{len(hrefs)} links read {text!r} but go to different pages: name each for "
                "where it leads (WCAG 2.4.4)",
                blocking=False,
            )


def _check_headings(report: QAReport, parsed: ParsedEmail) -> None:
    levels = [level for level, _ in parsed.headings]
    ones = levels.count(1)
    if ones != 1:
        report.add(
            "h1-count",
            f"the email has {ones} h1 headings; it should have exactly one (its title)",
            blocking=False,
        )
    previous = 0
    for level, text in parsed.headings:
        if previous and level > previous + 1:  # a first heading that is no h1: h1-count
            report.add(
                "heading-skip",
                f"heading h{level} {text[:60]!r} follows h{previous}: a level is skipped",
                blocking=False,
            )
        previous = level


def _check_contrast(report: QAReport, parsed: ParsedEmail) -> None:
    seen: set[tuple[str, str, float]] = set()
    for run in parsed.runs:
        fg, bg = parse_colour(run.color or "#000000"), parse_colour(run.background or "#ffffff")
        if fg is None or bg is None:
            continue
        ratio = contrast_ratio(fg, bg)
        needed = LARGE_RATIO if _large(run) else NORMAL_RATIO
        if ratio >= needed or (run.color, run.background, needed) in seen:
            continue
        seen.add((run.color, run.background, needed))
        hidden = " (hidden text)" if run.hidden else ""
        report.add(
            "low-contrast",
            f"text {run.text[:40]!r}{hidden} is {run.color or 'black'} on "
            f"{run.background or 'white'}: contrast {ratio:.2f}:1, below {needed}:1 (WCAG AA)",
            blocking=False,
        )


def _large(run: TextRun) -> bool:
    return run.size_px >= 24 or (run.bold and run.size_px >= 18.66)


def parse_colour(value: str) -> tuple[int, int, int] | None:
    """An (r, g, b) from a CSS colour (#rgb, #rrggbb, rgb(), a few names); None if unknown."""
    value = value.lower()
    found = _HEX.search(value)
    if found:
        digits = found[1]
        if len(digits) in {3, 4}:
            digits = "".join(c * 2 for c in digits[:3])
        return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)
    rgb = _RGB.search(value)
    if rgb:
        r, g, b = (min(int(x), 255) for x in rgb.groups())
        return r, g, b
    for word in _WORD.findall(value):
        if word in _NAMED:
            return parse_colour(_NAMED[word])
    return None


def _channel(value: int) -> float:
    c = value / 255
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def luminance(rgb: tuple[int, int, int]) -> float:
    r, g, b = (_channel(v) for v in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    """WCAG 2.x contrast ratio, 1 to 21."""
    light, dark = sorted((luminance(a), luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)
