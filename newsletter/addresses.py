"""Email addresses as people type them: validated and normalised, one rule for every way in."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

from newsletter.exceptions import InvalidInput


def normalise_email(email: str) -> str:
    """Validate and normalise an address (domain lower-cased); InvalidInput says why not."""
    try:
        return str(validate_email(email.strip(), check_deliverability=False).normalized)
    except EmailNotValidError as exc:
        raise InvalidInput(f"invalid email address {email!r}: {exc}") from exc
