"""HTML pages of the public routes: Jinja2 templates in ``templates/web/``, always autoescaped.

Every page carries headers for pages whose URL is a secret (a signed token): no Referer leaves
with a click (it would hand the token to the next site), nothing is cached or indexed, and no
other site may frame the page (a framed one-button page invites clickjacking).
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.responses import HTMLResponse

from newsletter import i18n
from newsletter.content.rendering import TEMPLATES_DIR

PRIVATE_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
}


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        extensions=["jinja2.ext.i18n"],
        loader=FileSystemLoader(TEMPLATES_DIR / "web"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.globals["lang"] = i18n.current
    env.globals["long_date"] = _date
    return env


def _date(value: date) -> str:
    """ISO in English (as before); the locale's long date in the others."""
    return value.strftime("%Y-%m-%d") if i18n.current() == i18n.SOURCE else i18n.long_date(value)


def render(template: str, *, language: str | None = None, **context: Any) -> str:
    """``template`` in ``language`` (a reader's), else the request's (``locale.PageLocale``);
    a ``title`` or ``message`` that is a catalogue's message id is translated."""
    with i18n.use(language or i18n.current()):
        for key in ("title", "message"):
            if isinstance(context.get(key), str):
                context[key] = i18n.gettext(context[key])
        return environment().get_template(template).render(**context)


def page(
    template: str,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    base_headers: dict[str, str] = PRIVATE_HEADERS,
    language: str | None = None,
    **context: Any,
) -> HTMLResponse:
    """``template`` rendered (``render``); ``base_headers`` (the private pages' headers unless
    the page is meant to be framed, see ``embed``) with ``headers`` over them."""
    html = render(template, language=language, **context)
    return HTMLResponse(html, status_code=status, headers=base_headers | (headers or {}))
