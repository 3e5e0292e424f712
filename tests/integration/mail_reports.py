"""Builders of the messages that come back to the bounce mailbox, as real MTAs write them.

- ``dsn``: an RFC 3464 delivery status notification (multipart/report; report-type=
  delivery-status) with the original's headers as text/rfc822-headers;
- ``arf``: an RFC 5965 abuse report (multipart/report; report-type=feedback-report) with the
  original message as message/rfc822;
- ``mailto_unsubscribe``: what a mail client sends for the List-Unsubscribe mailto: link;
- ``qmail``: a non-standard bounce that only flufl.bounce's heuristics understand.
"""

from __future__ import annotations

CRLF = "\r\n"


def _bytes(text: str) -> bytes:
    return text.lstrip("\n").replace("\n", CRLF).encode("utf-8")


def original_headers(recipient: str, message_id: str | None) -> str:
    mid = f"Message-ID: {message_id}\n" if message_id else ""
    return (
        "From: Belarus Weekly <weekly@news.example.org>\n"
        f"To: {recipient}\n"
        f"{mid}"
        "Subject: Belarus Weekly: talks with Kyiv\n"
        "Date: Sun, 19 Oct 2025 08:00:00 +0000\n"
    )


def dsn(
    recipient: str,
    *,
    status: str = "5.1.1",
    action: str = "failed",
    message_id: str | None = None,
    original_to: str | None = None,
) -> bytes:
    diagnostic = f"smtp; {'550' if status.startswith('5') else '452'} {status} mailbox problem"
    return _bytes(f"""
From: Mail Delivery System <MAILER-DAEMON@mx.example.net>
To: bounces@newsletter.example.org
Subject: Undelivered Mail Returned to Sender
Date: Sun, 19 Oct 2025 08:01:00 +0000
Message-ID: <20251019080100.ABC123@mx.example.net>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="=_dsn_boundary"

--=_dsn_boundary
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.example.net.
I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

--=_dsn_boundary
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net
X-Postfix-Queue-ID: ABC123
Arrival-Date: Sun, 19 Oct 2025 08:00:01 +0000

Final-Recipient: rfc822; {recipient}
Original-Recipient: rfc822;{recipient}
Action: {action}
Status: {status}
Remote-MTA: dns; mail.example.org
Diagnostic-Code: {diagnostic}

--=_dsn_boundary
Content-Type: text/rfc822-headers

{original_headers(original_to or recipient, message_id)}
--=_dsn_boundary--
""")


def arf(recipient: str, *, message_id: str | None = None, rcpt_to: bool = True) -> bytes:
    rcpt = f"Original-Rcpt-To: <{recipient}>\n" if rcpt_to else ""
    return _bytes(f"""
From: <feedback@mailbox-provider.example>
To: <abuse@newsletter.example.org>
Subject: FW: Belarus Weekly: talks with Kyiv
Date: Sun, 19 Oct 2025 09:00:00 +0000
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report;
\tboundary="part1_13d.2e68ed54_boundary"

--part1_13d.2e68ed54_boundary
Content-Type: text/plain; charset="US-ASCII"
Content-Transfer-Encoding: 7bit

This is an email abuse report for an email message received from IP
192.0.2.1 on Sun, 19 Oct 2025 08:00:00 +0000.

--part1_13d.2e68ed54_boundary
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: SomeGenerator/1.0
Version: 1
Original-Mail-From: <bounces@newsletter.example.org>
{rcpt}Arrival-Date: Sun, 19 Oct 2025 08:00:00 +0000
Source-IP: 192.0.2.1

--part1_13d.2e68ed54_boundary
Content-Type: message/rfc822
Content-Disposition: inline

{original_headers(recipient, message_id)}
This week: talks with Kyiv.

--part1_13d.2e68ed54_boundary--
""")


def mailto_unsubscribe(token: str, *, sender: str = "reader@example.org") -> bytes:
    return _bytes(f"""
From: <{sender}>
To: unsubscribe@newsletter.example.org
Subject: unsubscribe {token}
Date: Sun, 19 Oct 2025 10:00:00 +0000
Message-ID: <client-1@example.org>

""")


def qmail(recipient: str) -> bytes:
    return _bytes(f"""
From: MAILER-DAEMON@mx.example.net
To: bounces@newsletter.example.org
Subject: failure notice
Date: Sun, 19 Oct 2025 08:01:00 +0000

Hi. This is the qmail-send program at mx.example.net.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<{recipient}>:
Sorry, no mailbox here by that name. (#5.1.1)

--- Below this line is a copy of the message.

To: {recipient}
Subject: Belarus Weekly: talks with Kyiv

This week: talks with Kyiv.
""")


def plain(subject: str = "Thanks for the newsletter!") -> bytes:
    return _bytes(f"""
From: <reader@example.org>
To: editors@news.example.org
Subject: {subject}

Great issue this week.
""")


def mbox(*messages: bytes) -> bytes:
    """An mboxrd file: From_ lines, bodies' 'From ' lines quoted with '>'."""
    out = []
    for message in messages:
        out.append(b"From MAILER-DAEMON Sun Oct 19 08:01:00 2025\n")
        for line in message.replace(b"\r\n", b"\n").rstrip(b"\n").split(b"\n"):
            if line.lstrip(b">").startswith(b"From "):
                line = b">" + line
            out.append(line + b"\n")
        out.append(b"\n")
    return b"".join(out)
