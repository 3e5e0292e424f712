"""Advice on what the inbox shows before the email is opened: the subject and the preheader.

Kept modest; each rule is advice, none blocks (the stored-value limits in ``qa`` do):
- subject over 70 characters: desktop inboxes cut around there (phones sooner; no length fits
  them all);
- subject with two or more words of four letters or more in capitals ("BREAKING NEWS"; one
  acronym such as NATO is normal in news), with "!!" / "?!" runs, or with no letter or digit at
  all (emoji only), or with more than two emoji: what spam filters and readers both distrust;
- preheader empty (the inbox then shows the first text of the body, "View in browser"), under
  40 characters (the snippet runs on into the body) or over 140 (cut off).
"""

from __future__ import annotations

import re

from newsletter.content.qa_findings import QAReport

SUBJECT_ADVISED = 70
PREHEADER_MIN = 40
PREHEADER_ADVISED = 140
_CAPS_WORD = re.compile(r"\b[^\W\d_a-z]{4,}\b")
_PUNCTUATION_RUN = re.compile(r"[!?]{2,}")


def is_emoji(char: str) -> bool:
    code = ord(char)
    return 0x1F000 <= code <= 0x1FAFF or 0x2600 <= code <= 0x27BF


def check_subject(report: QAReport, subject: str, *, name: str = "the subject") -> None:
    """The advice on one subject (``name``: how the findings call it, e.g. "subject B")."""
    if not subject.strip():
        return  # "no-subject" blocks already
    if len(subject) > SUBJECT_ADVISED:
        report.add(
            "subject-long",
            f"{name} is {len(subject)} characters; inboxes show about {SUBJECT_ADVISED}",
            blocking=False,
        )
    shouting = [w for w in _CAPS_WORD.findall(subject) if w.isupper()]
    if len(shouting) >= 2:
        report.add(
            "subject-capitals",
            f"{name} shouts in capitals ({' '.join(shouting[:4])})",
            blocking=False,
        )
    if _PUNCTUATION_RUN.search(subject):
        report.add("subject-punctuation", f"{name} repeats ! or ?", blocking=False)
    emoji = sum(1 for c in subject if is_emoji(c))
    if not any(c.isalnum() for c in subject):
        report.add("subject-no-words", f"{name} has no words, only symbols", blocking=False)
    elif emoji > 2:
        report.add("subject-emoji", f"{name} has {emoji} emoji", blocking=False)


def check_preheader(report: QAReport, preheader: str) -> None:
    length = len(preheader.strip())
    if not length:
        report.add(
            "no-preheader",
            "no preheader: the inbox shows the first text of the email instead",
            blocking=False,
        )
    elif length < PREHEADER_MIN:
        report.add(
            "preheader-short",
            f"the preheader is {length} characters; under {PREHEADER_MIN} the inbox snippet "
            "runs on into the email's first lines",
            blocking=False,
        )
    elif length > PREHEADER_ADVISED:
        report.add(
            "preheader-long",
            f"the preheader is {length} characters; inboxes show about {PREHEADER_ADVISED}",
            blocking=False,
        )
