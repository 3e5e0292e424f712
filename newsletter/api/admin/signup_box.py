"""The code the newsletter settings page offers to paste into an article template.

- ``snippet``: a plain form posting to ``<base URL>/subscribe`` that works without JavaScript:
  the newsletter, the email field, the current consent text and its version, the honeypot, and
  ``source`` with ``ARTICLE_URL`` where the template puts the article's address. Pasted once, it
  cannot carry a signed time per page view, so no minimum fill time guards it: the honeypot and
  the per-IP and per-address limits do.
- ``iframe_code``: an iframe of ``GET /embed/<slug>?source=ARTICLE_URL`` (the branded box, with
  the signed fill time); its ``referrerpolicy`` lets the box read the page's address itself
  when the template does not fill it in.
"""

from __future__ import annotations

from newsletter.api.pages import environment
from newsletter.audience.consent import consent_text, tracking_notice
from newsletter.audience.signup_guard import HONEYPOT_FIELD
from newsletter.config import Settings
from newsletter.models import Newsletter

#: what the pasted code says where the article's address goes
ARTICLE_URL = "ARTICLE_URL"


def _base(settings: Settings) -> str:
    return settings.base_url.rstrip("/")


def snippet(settings: Settings, newsletter: Newsletter) -> str:
    """The plain form to paste into an article template (no JavaScript needed)."""
    version = settings.consent_text_version
    html = (
        environment()
        .get_template("embed_snippet.html.j2")
        .render(
            action=f"{_base(settings)}/subscribe",
            newsletter=newsletter,
            honeypot=HONEYPOT_FIELD,
            article_url=ARTICLE_URL,
            consent_version=version,
            consent_paragraphs=[
                *consent_text(version).split("\n\n"),
                tracking_notice([newsletter], retention_days=settings.track_retention_days),
            ],
        )
    )
    return html.strip() + "\n"


def iframe_code(settings: Settings, newsletter: Newsletter) -> str:
    """The iframe to paste into an article template."""
    html = (
        environment()
        .get_template("embed_iframe.html.j2")
        .render(
            src=f"{_base(settings)}/embed/{newsletter.slug}",
            newsletter=newsletter,
            article_url=ARTICLE_URL,
        )
    )
    return html.strip() + "\n"
