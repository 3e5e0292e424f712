"""The Celery configuration of an app nobody configured: from the environment's settings.

Celery imports this module the first time it reads ``app.conf`` (``config_from_object``), i.e.
when ``celery -A worker.celery_app worker|beat`` starts, not when the app module is imported.
"""

from __future__ import annotations

from newsletter.config import get_settings
from worker.celery_app import celery_conf

globals().update(celery_conf(get_settings()))
