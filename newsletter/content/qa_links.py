"""Link and size checks on the compiled email.

Links (every ``href`` and image ``src``): not absolute blocks (a mail app has no page to
resolve it against); ``http://`` is advice, not a block: the issue asks for https everywhere,
but a newsroom sometimes has to link a source that has no https, and a reader's browser says
"not secure" rather than failing; a private, loopback, link-local or ``.local`` host blocks in
production (no reader can reach it) and is advice elsewhere (a developer's own machine). The
per-recipient placeholders (``__NL_X__``) are filled in per reader and not checked here.

Size: the HTML as sent, i.e. personalised for a sample reader and each link as the link
rewriter makes it (click tracking will lengthen every link; today it is the identity): advice
above the warning size, blocking above the limit (Gmail clips a message at about 102 KB and
hides the rest, the unsubscribe link with it).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from urllib.parse import urlparse

from newsletter.content.qa_findings import QAReport
from newsletter.content.qa_html import ParsedEmail
from newsletter.content.rendering import CompiledIssue, Personaliser

#: maps a link as written in the HTML to the link as sent (the future click tracking's hook)
LinkRewriter = Callable[[str], str]
_PLACEHOLDER = re.compile(r"__NL_[A-Z_]+?__")
_HREF = re.compile(r"""(href=["'])([^"']*)(["'])""")
PRIVATE_SUFFIXES = (".local", ".localhost", ".internal", ".lan", ".home.arpa")
OTHER_SCHEMES = ("mailto:", "tel:")


def identity(href: str) -> str:
    return href


def urls(parsed: ParsedEmail) -> list[str]:
    """Every link and image source, once each, in order, placeholders left out."""
    found = [link.href for link in parsed.links] + [image.src for image in parsed.images]
    return [u for u in dict.fromkeys(found) if not _PLACEHOLDER.search(u)]


def check_links(report: QAReport, parsed: ParsedEmail, *, production: bool) -> None:
    for url in urls(parsed):
        if url.startswith(OTHER_SCHEMES):
            continue
        parsed_url = urlparse(url)
        if parsed_url.scheme not in {"http", "https"} or not parsed_url.netloc:
            report.add("relative-link", f"link {url!r} is not absolute", blocking=True)
            continue
        if parsed_url.scheme == "http":
            report.add("http-link", f"link {url[:100]!r} is not https", blocking=False)
        if is_private_host(parsed_url.hostname or ""):
            where = "" if production else " (a block in production)"
            report.add(
                "private-link",
                f"link {url[:100]!r} points to a private or local address no reader can "
                f"reach{where}",
                blocking=production,
            )


def is_private_host(host: str) -> bool:
    """Loopback, private (RFC 1918, ULA), link-local or unspecified addresses; localhost and
    local-only names (.local, .localhost, .internal, .lan, .home.arpa)."""
    host = host.lower().rstrip(".").strip("[]")
    if host == "localhost" or host.endswith(PRIVATE_SUFFIXES):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_unspecified
        or address.is_reserved
    )


def sent_html(
    compiled: CompiledIssue, values: Mapping[str, str] | None, rewrite: LinkRewriter
) -> str:
    """The HTML as a sample reader gets it: personalised, every href as the rewriter sends it."""
    html = compiled.html
    if rewrite is not identity:  # the links as written (a personal link is a placeholder here)
        html = _HREF.sub(lambda m: f"{m[1]}{rewrite(m[2])}{m[3]}", html)
    return Personaliser(html, html_escape=True)(values) if values else html


def check_size(report: QAReport, size: int, *, warn: int, limit: int) -> None:
    if size > limit:
        report.add(
            "html-too-large",
            f"the HTML as sent is {size:,} bytes, over {limit:,}: Gmail clips it at about "
            "102 KB and hides the rest, the unsubscribe link with it",
            blocking=True,
        )
    elif size > warn:
        report.add(
            "html-large",
            f"the HTML as sent is {size:,} bytes, over {warn:,}: close to Gmail's clipping "
            "at about 102 KB (a relay or click tracking that lengthens links may push it over)",
            blocking=False,
        )
