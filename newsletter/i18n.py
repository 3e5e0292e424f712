"""The chrome's languages: gettext catalogues (``templates/locales/<locale>.po``) through Babel.

The ``.po`` files are the source and the only copy: each is read once per process with Babel's
``pofile`` and compiled in memory (``mofile``), so a fresh clone needs no build step. The
locale a template renders in is a context variable (``use``), so one Jinja2 environment serves
every language, in threads and in async requests alike. English is the source language: its
catalogue is the message ids themselves.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime
from functools import cache
from gettext import NullTranslations
from io import BytesIO
from pathlib import Path

from babel.dates import format_date
from babel.messages import mofile, pofile
from babel.support import Translations

LOCALES_DIR = Path(__file__).resolve().parents[1] / "templates" / "locales"
#: the locales shipped; the first is the source language (and the fallback)
LOCALES = ("en", "be", "ru", "uk", "pl", "lt")
SOURCE = LOCALES[0]

_current: ContextVar[str] = ContextVar("locale", default=SOURCE)


def primary(language: str | None) -> str:
    return (language or "").split("-")[0].split("_")[0].lower()


def negotiate(language: str | None) -> str:
    """The shipped locale for a BCP 47 tag ("be-BY" -> "be"); English for any other."""
    found = primary(language)
    return found if found in LOCALES else SOURCE


def N_(message: str) -> str:  # noqa: N802 - gettext's name for a message marked, translated later
    return message


@cache
def translations(locale: str) -> NullTranslations:
    """The locale's catalogue, read from its ``.po`` and compiled in memory once."""
    if locale == SOURCE:
        return NullTranslations()
    with (LOCALES_DIR / f"{locale}.po").open("rb") as po:
        catalog = pofile.read_po(po, locale=locale)
    buffer = BytesIO()
    mofile.write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(fp=buffer)


def current() -> str:
    return _current.get()


@contextmanager
def use(language: str | None) -> Iterator[str]:
    """Render in ``language``'s locale (negotiated) inside the block."""
    token = _current.set(negotiate(language))
    try:
        yield _current.get()
    finally:
        _current.reset(token)


def gettext(message: str) -> str:
    return translations(current()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(current()).ngettext(singular, plural, n)


def long_date(value: date | datetime) -> str:
    """A date as the locale writes it ("19 października 2025" in Polish)."""
    return format_date(value, format="long", locale=current())
