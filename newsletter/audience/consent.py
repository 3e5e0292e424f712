"""The consent texts a sign-up shows, one file per version: ``templates/web/consent/<v>.txt``.

A subscription records the version its subscriber agreed to, so a text is never edited once it
has been shown: write a new file and point ``NEWSLETTER_CONSENT_TEXT_VERSION`` at it. The form
posts back the version it displayed, which is what gets recorded even if the setting changed
between the page load and the click.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import cast

from babel.support import LazyProxy

from newsletter import i18n
from newsletter.content.rendering import TEMPLATES_DIR
from newsletter.exceptions import InvalidInput
from newsletter.i18n import N_
from newsletter.models import Newsletter

CONSENT_DIR = TEMPLATES_DIR / "web" / "consent"
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")  # also the column's 32 characters


@lru_cache(maxsize=16)
def consent_text(version: str) -> str:
    """The text of ``version``; InvalidInput for an unknown one."""
    path = CONSENT_DIR / f"{version}.txt"
    if not _VERSION.fullmatch(version) or not path.is_file():
        raise InvalidInput(f"unknown consent text version {version!r}")
    return path.read_text(encoding="utf-8").strip()


#: what a tracking newsletter counts, by (clicks, opens)
_WHAT = {
    (True, True): N_("%(name)s counts which links in its emails I click and whether I open them"),
    (True, False): N_("%(name)s counts which links in its emails I click"),
    (False, True): N_("%(name)s counts whether I open its emails (an invisible image)"),
}
_NOTICE = N_(
    "%(parts)s, to learn which stories readers want. These counts are kept with my "
    "subscription for %(months)s months, then only as totals; no IP address or browser is "
    "stored with them, and they are deleted with my data on request."
)


def tracking_notice(newsletters: Iterable[Newsletter], *, retention_days: int) -> str:
    """What a sign-up page adds under the consent text when any newsletter offered counts
    clicks or opens (``Newsletter.track_clicks``/``track_opens``); "" when none does.

    The words are the page's language: the notice is worded when the page shows it (a lazy
    string, translated in the language the page is rendered in, ``i18n.use``)."""
    tracking = tuple(
        (n.name, n.track_clicks, n.track_opens)
        for n in newsletters
        if n.track_clicks or n.track_opens
    )
    if not tracking:
        return ""
    months = round(retention_days / 30.4)
    return cast(str, LazyProxy(_worded, tracking, months, enable_cache=False))


def _worded(tracking: tuple[tuple[str, bool, bool], ...], months: int) -> str:
    parts = "; ".join(
        i18n.gettext(_WHAT[(clicks, opens)]) % {"name": name} for name, clicks, opens in tracking
    )
    return i18n.gettext(_NOTICE) % {"parts": parts, "months": months}
