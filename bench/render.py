"""Compile once, personalise many: per-recipient message rate against the naive way.

Seeds a temporary SQLite database with the sample issue, then measures in one run:
  * compile: Jinja2 -> MJML -> HTML for the issue (done once per send);
  * ours: MessageTemplate.render per recipient (values filled into the compiled output, MIME
    pre-built as bytes, quoted-printable by binascii);
  * baseline: what a straightforward sender does per recipient: Personaliser + a fresh
    EmailMessage with text and HTML alternatives, serialised with email.policy.SMTP.
Prints messages/s for both, their ratio, bytes per message and peak traced memory; the last line
is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import tracemalloc
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

from newsletter import db, seeding
from newsletter.config import Settings
from newsletter.content import issues, rendering
from newsletter.content.qa import QAConfig
from newsletter.sending import prepare, recipients
from newsletter.sending.start import fill_ledger


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(database_url=f"sqlite:///{Path(tmp) / 'bench.db'}")
        db.upgrade(settings.database_url)
        with db.session_scope(settings.database_url) as session:
            seeding.seed(session)
            issue_id = seeding.draft_sample_issue(session).id
            assert issue_id is not None
            outline = issues.load_outline(session, issue_id)
            t0 = time.perf_counter()
            compiled = rendering.compile_issue(outline)
            compile_s = time.perf_counter() - t0
            fill_ledger(
                session, issue_id=issue_id, checks=QAConfig(size_warn=10**9, size_limit=10**9)
            )
        with db.session_scope(settings.database_url) as session:
            prep = prepare.prepared(session, issue_id, settings)
        people = [
            recipients.recipient(
                settings, prep, subscriber_id=i, email=f"r{i}@example.org", name=f"Reader {i}"
            )
            for i in range(args.recipients)
        ]

        t0 = time.perf_counter()
        size = sum(len(prep.template.render(p)[1]) for p in people)
        ours_s = time.perf_counter() - t0
        # memory in a separate pass: tracemalloc slows every allocation it watches
        tracemalloc.start()
        for p in people[:500]:
            prep.template.render(p)
        _, ours_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()

        html_p = rendering.Personaliser(compiled.html, html_escape=True)
        text_p = rendering.Personaliser(compiled.text, html_escape=False)
        t0 = time.perf_counter()
        for p in people:
            msg = EmailMessage(policy=SMTP)
            msg["From"], msg["To"], msg["Subject"] = "w@example.org", p.email, compiled.subject
            msg["Message-ID"] = prep.template.message_id(p.subscriber_id)
            msg["List-Unsubscribe"] = f"<{p.unsubscribe_url}>"
            msg.set_content(text_p(p.values))
            msg.add_alternative(html_p(p.values), subtype="html")
            msg.as_bytes()
        base_s = time.perf_counter() - t0

    n = args.recipients
    result = {
        "recipients": n,
        "compile_ms": round(compile_s * 1000, 1),
        "html_kb": round(compiled.html_size / 1024, 1),
        "message_kb": round(size / n / 1024, 1),
        "ours_per_s": round(n / ours_s),
        "baseline_per_s": round(n / base_s),
        "speedup": round(base_s / ours_s, 1),
        "ours_peak_mb": round(ours_peak / 2**20, 1),
    }
    print(f"compile once (Jinja2 -> MJML -> HTML): {result['compile_ms']} ms")
    print(f"HTML {result['html_kb']} KB; message on the wire {result['message_kb']} KB")
    print(f"ours:     {result['ours_per_s']:>8,} messages/s")
    print(f"baseline: {result['baseline_per_s']:>8,} messages/s (EmailMessage per recipient)")
    print(f"speed-up: {result['speedup']}x; peak traced memory {result['ours_peak_mb']} MB")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
