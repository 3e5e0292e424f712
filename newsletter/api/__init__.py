"""The HTTP API (FastAPI): ``create_app`` in ``app.py``, one router module per area.

- ``app.py``    the factory, error handlers, the list of routers
- ``deps.py``   settings, per-request database session, dispatcher
- ``auth.py``   the admin bearer-token dependency
- ``issues.py`` ``/api/issues/{id}/...``: send controls and status
- ``subscribers.py`` ``/api/subscribers...``: search, CRUD, CSV import/export, GDPR (admin)
- ``bounces.py`` ``/api/bounces``: one DSN, ARF complaint or mailto unsubscribe (admin)
- ``public.py`` public pages (``/subscribe``, ``/confirm``, ``/unsubscribe``, ``/preferences``)
  and ``/api/subscribe``; no auth, signed tokens in the links
- ``pages.py``  the HTML pages' Jinja2 environment (``templates/web/``) and headers

Run it with ``newsletter serve``; OpenAPI docs at ``/docs``.
"""

from __future__ import annotations

from newsletter.api.app import create_app

__all__ = ["create_app"]
