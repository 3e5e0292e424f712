"""Checks for text an editor saves: one-line fields (subjects, titles, names) and longer text.

A CR or LF in a subject would start a header of its own; a NUL is refused by PostgreSQL and by
mail servers; the other C0 control characters have no business in an email. Tabs are allowed.
"""

from __future__ import annotations

import re

from newsletter.exceptions import InvalidInput

#: C0 control characters except TAB, and DEL: refused in one-line fields
_LINE_CONTROLS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
#: the same, but CR and LF are allowed: refused in multi-line text (an intro, a description)
_TEXT_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
SHOWN = 40  # characters of a refused value quoted back


def has_controls(value: str) -> bool:
    """Whether a one-line field holds a control character (a line break included)."""
    return bool(_LINE_CONTROLS.search(value))


def one_line(value: str, *, field: str, max_length: int, required: bool = False) -> str:
    """``value`` stripped; InvalidInput for a control character, too long, or empty if required."""
    text = value.strip()
    found = _LINE_CONTROLS.search(text)
    if found:
        what = "a line break" if found.group() in "\r\n" else "a control character"
        raise InvalidInput(f"{field} contains {what} ({found.group()!r}); it must be one line")
    if len(text) > max_length:
        raise InvalidInput(f"{field} is {len(text)} characters long; at most {max_length}")
    if required and not text:
        raise InvalidInput(f"{field} must not be empty")
    return text


def multiline(value: str, *, field: str, max_length: int = 100_000) -> str:
    """Longer text (line breaks allowed); InvalidInput for another control character."""
    found = _TEXT_CONTROLS.search(value)
    if found:
        raise InvalidInput(f"{field} contains a control character ({found.group()!r})")
    if len(value) > max_length:
        raise InvalidInput(f"{field} is {len(value)} characters long; at most {max_length}")
    return value
