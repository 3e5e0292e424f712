"""The HTTP side (FastAPI): ``create_app`` in ``app.py``, one router module per area; routes do
HTTP only and call the domain.

- ``app.py``         the factory: routers, error handlers, middleware
- ``deps.py``        settings, a database session per request, the client, the queue ports
- ``auth.py``        the admin API's bearer token
- ``errors.py``      every failure a response with a reason (JSON under ``/api``, HTML elsewhere)
- ``inputs.py``      bounded ids and pages, strictly read bodies
- ``limits.py``      ASGI middleware: the public body cap (413), NUL in the URL (400)
- ``issues.py``      ``/api/issues/{id}/...``: send controls and status (admin)
- ``subscribers.py`` ``/api/subscribers...``: search, CRUD, CSV import/export, GDPR (admin)
- ``bounces.py``     ``/api/bounces``: one DSN, ARF complaint or mailto unsubscribe (admin)
- ``webhooks.py``    ``/api/webhooks...``: outgoing webhooks (admin)
- ``signup.py``      the public sign-up: ``/subscribe`` (form) and ``/api/subscribe`` (JSON)
- ``links.py``       the personal links' pages: ``/confirm``, ``/unsubscribe`` (RFC 8058
  one-click), ``/preferences``; no login, the signed token in the link is the capability
- ``archive.py``     the public archive ``/archive``
- ``ops.py``         ``/healthz``, ``/readyz``, ``/metrics``
- ``pages.py``       the public HTML pages' Jinja2 environment (``templates/web/``)
- ``admin/``         the editor UI under ``/admin`` (signed-in editors, CSRF-protected forms)

Run it with ``newsletter serve``; OpenAPI docs at ``/docs``.
"""

from __future__ import annotations

from newsletter.api.app import create_app

__all__ = ["create_app"]
