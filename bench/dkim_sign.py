"""Time one DKIM signature on a rendered issue message of about 95 KB.

Signs the same MessageTemplate message (one recipient's, with its personal unsubscribe links)
``--runs`` times each with our signer (RSA-2048, ed25519, and dual: both signatures) and with
dkimpy's own signer (RSA-2048, pure-Python key maths, the signer we had before), and prints the
median and 95th percentile per message in ms; the last line is one JSON object.

    python bench/dkim_sign.py [--runs 200] [--kb 95]

Target: well under 1 ms per message with RSA-2048.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/x.py` puts bench/ on the path, not the project
    sys.path.insert(0, str(ROOT))

import dkim  # noqa: E402

from newsletter.content.rendering import PLACEHOLDERS, CompiledIssue  # noqa: E402
from newsletter.mail.dkim import SIGNED_HEADERS, DKIMSigner, generate_key  # noqa: E402
from newsletter.mail.message import MessageTemplate, Recipient  # noqa: E402
from newsletter.models import Newsletter  # noqa: E402

DOMAIN = "news.example.org"


def message(kb: int) -> tuple[MessageTemplate, Recipient]:
    """An issue's message template and a recipient whose message is about ``kb`` KB."""
    ph = PLACEHOLDERS
    story = "Minsk, Hrodna and Brest: what happened this week, in a few sentences.  "
    paragraphs = 1
    while True:
        html = (
            f"<html><body><p>{ph['greeting']}</p>"
            + "".join(f"<p>\t{i}. {story}</p>\n" for i in range(paragraphs))
            + f'<p><a href="{ph["unsubscribe_url"]}">Unsubscribe</a></p></body></html>'
        )
        text = f"{ph['greeting']}\n\n" + "".join(f"{i}. {story}\n" for i in range(paragraphs // 4))
        newsletter = Newsletter(
            id=1,
            slug="weekly",
            name="Weekly",
            from_name="Weekly",
            from_email=f"weekly@{DOMAIN}",
            reply_to=f"editors@{DOMAIN}",
            postal_address="Example News Ltd, 12 Sample Street, Warsaw",
        )
        template = MessageTemplate(
            compiled=CompiledIssue("Weekly: Minsk & more", "", html, text),
            newsletter=newsletter,
            issue_id=7,
            secret="bench-secret",
        )
        url = f"https://{DOMAIN}/unsubscribe/tok-101"
        values = {
            "name": "Eve",
            "greeting": "Dear Eve,",
            "email": "eve@example.org",
            "unsubscribe_url": url,
            "preferences_url": f"https://{DOMAIN}/preferences/p-101",
            "view_url": f"https://{DOMAIN}/archive/weekly/7",
        }
        recipient = Recipient(101, "eve@example.org", "Eve", values, url, f"mailto:u@{DOMAIN}")
        data = template.render(recipient)[1]
        if len(data) >= kb * 1000:
            return template, recipient
        paragraphs = max(paragraphs + 1, int(paragraphs * kb * 1000 / len(data)))


def timed(sign: Callable[[bytes], bytes], data: bytes, runs: int) -> dict[str, float]:
    sign(data)  # warm-up
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        sign(data)
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return {
        "p50_ms": round(statistics.median(samples), 3),
        "p95_ms": round(samples[int(len(samples) * 0.95) - 1], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--kb", type=int, default=95)
    args = parser.parse_args()
    template, recipient = message(args.kb)
    data = template.render(recipient)[1]
    rsa_pem, ed_pem = generate_key(2048), generate_key(algorithm="ed25519")
    ours = {
        "rsa": DKIMSigner("s1", DOMAIN, rsa_pem),
        "ed25519": DKIMSigner("s2", DOMAIN, ed_pem),
        "dual": DKIMSigner("s1", DOMAIN, rsa_pem, ed25519_selector="s2", ed25519_key=ed_pem),
    }
    present = {n.lower() for n in (line.split(b":", 1)[0] for line in data.split(b"\r\n"))}
    include = [h.encode() for h in SIGNED_HEADERS if h.encode() in present]

    def dkimpy(message: bytes) -> bytes:
        return bytes(
            dkim.sign(
                message,
                b"s1",
                DOMAIN.encode(),
                rsa_pem,
                canonicalize=(b"relaxed", b"relaxed"),
                include_headers=include,
            )
        )

    results = {"message_bytes": len(data), "runs": args.runs}
    for name, signer in ours.items():
        results[name] = timed(signer.sign, data, args.runs)
    results["dkimpy_rsa"] = timed(dkimpy, data, max(args.runs // 10, 5))

    # what the worker does per message: render, then sign; the body's relaxed form made here
    # (``render`` + ``sign``) or, most of it, once per issue (``render_relaxed``)
    def render_then_sign(_: bytes) -> bytes:
        return ours["rsa"].sign(template.render(recipient)[1])

    def render_relaxed_then_sign(_: bytes) -> bytes:
        _message_id, message_bytes, relaxed = template.render_relaxed(recipient)
        return ours["rsa"].sign(message_bytes, relaxed_body_of_it=relaxed)

    results["render_sign_rsa"] = timed(render_then_sign, data, args.runs)
    results["render_relaxed_sign_rsa"] = timed(render_relaxed_then_sign, data, args.runs)
    names = ("rsa", "ed25519", "dual", "dkimpy_rsa", "render_sign_rsa", "render_relaxed_sign_rsa")
    for name in names:
        figures = results[name]
        assert isinstance(figures, dict)
        print(f"{name:>23}: {figures['p50_ms']:7.3f} ms median, {figures['p95_ms']:7.3f} ms p95")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
