"""The audience wing: who receives the newsletters, how they come and go.

- ``subscribers``: the one way in (``admit``), an address's identity and lookup, admin add/list
- ``lifecycle``: the public sign-up, confirmation and unsubscription
- ``preference_centre``: what a subscriber's signed link shows, and saving their choices
- ``events``: the subscriber event record (consent, GDPR export)
- ``manage``: the admin API's search, create and update of subscribers
- ``confirmations``: the double opt-in email
- ``outbox``: confirmations written with the sign-up, relayed by the beat, sent once
- ``links``: signed personal link tokens (unsubscribe, preferences, confirmation)
- ``consent``: the versioned consent texts a sign-up shows
- ``abuse``: sign-up rate limits per IP and per address
- ``signup_guard``: the honeypot and the signed minimum fill time (bots, no third party)
- ``embed``: the sign-up box of article pages: the page as consent source, the latest issue
- ``suppression``: hashes of addresses that must not come back silently
- ``csv_import``: the CSV import and its report (``csv_reader``, ``csv_rows``, ``csv_writer``)
- ``csv_export``: the CSV export, which imports back
- ``bounces``: applying bounces, complaints and mailto unsubscribes (``bounce_parsing`` reads them)
- ``provider_events``: the providers' bounce webhooks (``provider_sns``, ``provider_formats``),
  verified and applied once each (``receipts``)
- ``gdpr``: export or erase everything about one subscriber

Code outside the wing imports the submodules (``from newsletter.audience import lifecycle``);
the names below are the wing's public verbs, loaded on first use so that importing one submodule
does not import them all.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from newsletter.audience.bounces import process_message
    from newsletter.audience.confirmations import send_confirmation
    from newsletter.audience.csv_export import export_csv
    from newsletter.audience.csv_import import import_csv
    from newsletter.audience.gdpr import erase_subscriber, export_subscriber
    from newsletter.audience.lifecycle import confirm, signup, unsubscribe
    from newsletter.audience.preference_centre import preferences, update_preferences
    from newsletter.audience.subscribers import (
        admission_refusals,
        admit,
        list_subscriptions,
        normalise_email,
        subscribe,
    )
    from newsletter.audience.suppression import suppress

_HOMES = {
    "admission_refusals": "subscribers",
    "admit": "subscribers",
    "list_subscriptions": "subscribers",
    "normalise_email": "subscribers",
    "subscribe": "subscribers",
    "signup": "lifecycle",
    "confirm": "lifecycle",
    "unsubscribe": "lifecycle",
    "preferences": "preference_centre",
    "update_preferences": "preference_centre",
    "send_confirmation": "confirmations",
    "import_csv": "csv_import",
    "export_csv": "csv_export",
    "process_message": "bounces",
    "export_subscriber": "gdpr",
    "erase_subscriber": "gdpr",
    "suppress": "suppression",
}

__all__ = [
    "admission_refusals",
    "admit",
    "confirm",
    "erase_subscriber",
    "export_csv",
    "export_subscriber",
    "import_csv",
    "list_subscriptions",
    "normalise_email",
    "preferences",
    "process_message",
    "send_confirmation",
    "signup",
    "subscribe",
    "suppress",
    "unsubscribe",
    "update_preferences",
]


def __getattr__(name: str) -> Any:
    """A public verb, from its submodule (imported now, on first use)."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
